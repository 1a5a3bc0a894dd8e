"""Distribution of M9's RMS channel-map distance d_ij = sqrt(||M_c^i - M_c^j||^2 / C + eps) for an untrained backbone, to
choose R_id's margin m from measurement (METHOD M9 rev 2).

The demo backbone (`ReIDViT(**backbone_preset('demo'), img_size=(64, 32), regions=4)`, chapter 06) sees the synthetic
training set (`make_synthetic(root, n_train_ids=48, n_test_ids=48, n_images=4, seed=0)` in a temporary folder, images through
`test_transform(64, 32)`) in the batches R_id sees in training: P x K = 4 identities x 8 images per modality, one forward of
[visible; infrared] in train mode (batch statistics), pairs within each modality's half. Every identity is in one batch per
seed. Reported: quantiles of d over same-identity and different-identity pairs (true identities), per seed and modality and
pooled, and R_id at the start under the rev-1 form (squared distance, m = 0.05) and under the RMS form with the suggested m.

    python bench/rid_margin.py                      # seeds 0 1 2, writes bench/results/rid_margin.json
    python bench/rid_margin.py --preset paper --train_ids 16 --num_instances 16   # -> bench/results/rid_margin_paper.json
    python bench/rid_margin.py --seeds 0 --out /tmp/rid.json --quantile 0.95

`--preset paper` measures the paper preset's own backbone (ViT-B/16 at 384x128 with its two ICS stems, visible images
through the visible stem, infrared through the infrared one) in P x K = 4 x 16 batches, from random weights unless
`--pretrained FILE` names the weights the run will start from: the JSON's `setup` records the backbone, its input size,
its stems and its weights, so a margin is never borrowed from another model.

The suggestion: m = the `--quantile` (default 0.9) quantile of the pooled different-identity distances, rounded to 0.01.
This is a benchmark, not a test.
"""
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def pk_batches(pids, batch_ids, num_instances, rng):
    "Index batches of `batch_ids` identities x up to `num_instances` of their images (no repeats), each identity once."
    pids = np.asarray(pids)
    ids = rng.permutation(np.unique(pids))
    out = []
    for s in range(0, len(ids) - batch_ids + 1, batch_ids):
        idx = [rng.choice(np.flatnonzero(pids == p), min(num_instances, int((pids == p).sum())), replace=False)
               for p in ids[s:s + batch_ids]]
        out.append(np.concatenate(idx))
    return out


def quantiles(v):
    "{'n', 'mean', 'q0.01', ...} of a 1-D array."
    return {'n': int(len(v)), 'mean': float(np.mean(v)), **{f'q{q:g}': float(np.quantile(v, q)) for q in QUANTILES}}


def measure(root, seed, preset, batch_ids, num_instances, img_size=(64, 32), pretrained=None):
    "Per modality: arrays of same/diff RMS distances and per-batch R_id (rev 1 squared m=0.05; RMS for margins later)."
    from usl_vireid_nb.backbone import ReIDViT, backbone_preset
    from usl_vireid_nb.data import read_sysu, load_image, Modality
    from usl_vireid_nb.augment import test_transform
    from usl_vireid_nb.pacbam import rid_pair_distances
    torch.manual_seed(seed)
    model = ReIDViT(**{**backbone_preset(preset), 'img_size': img_size, 'regions': 4}, pretrained=pretrained).train()
    tf, rng = test_transform(*img_size), np.random.default_rng(seed)
    recs = read_sysu(root, 'train')
    by_mod = {m: [r for r in recs if r.modality == m] for m in (Modality.VIS, Modality.IR)}
    batches = {m: pk_batches([r.pid for r in rs], batch_ids, num_instances, rng) for m, rs in by_mod.items()}
    res = {m.name.lower(): {'same': [], 'diff': [], 'mc': []} for m in by_mod}
    for bv, br in zip(batches[Modality.VIS], batches[Modality.IR]):
        imgs = [by_mod[Modality.VIS][i] for i in bv] + [by_mod[Modality.IR][i] for i in br]
        x = torch.stack([tf(load_image(r.img_path)) for r in imgs])
        mods = torch.tensor([int(Modality.VIS)] * len(bv) + [int(Modality.IR)] * len(br))   # each image through its stem
        with torch.no_grad(): mc = model(x, mods)['mc'].float()                 # (B_v + B_r, C), as the trainer sees it
        for name, sl in (('vis', slice(0, len(bv))), ('ir', slice(len(bv), None))):
            y = torch.tensor([r.pid for r in imgs[sl]])
            s, d = (t.numpy() for t in rid_pair_distances(mc[sl].double(), y))   # i < j, within the modality
            res[name]['same'].append(s); res[name]['diff'].append(d); res[name]['mc'].append((mc[sl], y))
    return {k: {'same': np.concatenate(v['same']), 'diff': np.concatenate(v['diff']), 'batches': v['mc']}
            for k, v in res.items()}, model


def rid_at_start(batches, margin, distance):
    "Mean over batches of identity_regulariser and of the share of different-identity pairs inside the margin."
    from usl_vireid_nb.pacbam import identity_regulariser, channel_map_distance
    r, act = [], []
    for mc, y in batches:
        r.append(float(identity_regulariser(mc, y, margin=margin, distance=distance)))
        d = channel_map_distance(mc, distance)
        act.append(float((d[y[:, None] != y[None, :]] < margin).float().mean()))
    return {'R_id': float(np.mean(r)), 'share_of_diff_pairs_inside_margin': float(np.mean(act))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='model initialisation seeds')
    ap.add_argument('--preset', default='demo', help="backbone preset: 'demo', 'paper' (its own 384x128 input), 'test' (smoke)")
    ap.add_argument('--pretrained', default=None, help='weights file the measured backbone starts from (default: random)')
    ap.add_argument('--train_ids', type=int, default=48, help='training identities of the generated synthetic set')
    ap.add_argument('--threads', type=int, default=1, help='torch threads')
    ap.add_argument('--quantile', type=float, default=0.9, help='quantile of different-identity d suggested as m')
    ap.add_argument('--batch_ids', type=int, default=4, help='P identities per batch (the synthetic preset: 4)')
    ap.add_argument('--num_instances', type=int, default=8, help='K images per identity (the synthetic preset: 8)')
    ap.add_argument('--data_root', default=None, help='an existing synthetic set (default: generated in a temporary folder)')
    ap.add_argument('--out', default=None, help='JSON to write (default: bench/results/rid_margin.json, '
                                                 'rid_margin_paper.json for --preset paper)')
    a = ap.parse_args(argv)
    from usl_vireid_nb.backbone import backbone_preset
    a.out = a.out or str(Path(__file__).parent / 'results' / ('rid_margin_paper.json' if a.preset == 'paper' else 'rid_margin.json'))
    img_size = tuple(backbone_preset(a.preset)['img_size']) if a.preset == 'paper' else (64, 32)
    from usl_vireid_nb.synthetic import make_synthetic
    from usl_vireid_nb.pacbam import RID_EPS, RID_MARGIN
    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(a.data_root or tmp, n_train_ids=a.train_ids, n_test_ids=48, n_images=4, seed=0)
        runs = {s: measure(root, s, a.preset, a.batch_ids, a.num_instances, img_size, a.pretrained) for s in a.seeds}
    model = next(iter(runs.values()))[1]
    dim = model.dim
    pooled = {k: np.concatenate([r[0][mod][k] for r in runs.values() for mod in ('vis', 'ir')]) for k in ('same', 'diff')}
    suggested = float(np.round(np.quantile(pooled['diff'], a.quantile), 2))
    every_batch = [b for r in runs.values() for mod in ('vis', 'ir') for b in r[0][mod]['batches']]
    out = {
        'what': 'RMS channel-map distance d_ij = sqrt(||M_c^i - M_c^j||^2 / C + eps) of an untrained backbone, '
                'within-modality pairs of P x K training batches (train mode), true identities',
        'command': 'python bench/rid_margin.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
        'setup': {'preset': a.preset, 'arch': model.arch, 'img_size': list(img_size), 'regions': 4, 'channels_C': dim,
                  'stem': model.stem, 'modality_stems': model.modality_stems,
                  'weights': a.pretrained or 'random initialisation (no weights file here)', 'eps': RID_EPS,
                  'batch': f'{a.batch_ids} ids x {a.num_instances} images per modality', 'seeds': a.seeds,
                  'synthetic': dict(n_train_ids=a.train_ids, n_test_ids=48, n_images=4, seed=0)},
        'pooled': {k: quantiles(v) for k, v in pooled.items()},
        'per_seed': {str(s): {mod: {k: quantiles(r[0][mod][k]) for k in ('same', 'diff')} for mod in ('vis', 'ir')}
                     for s, r in runs.items()},
        'suggested_margin': suggested,
        'suggestion_rule': f'the {a.quantile:g} quantile of the pooled different-identity d, rounded to 0.01',
        'at_start': {'rev1_squared_m0.05': rid_at_start(every_batch, 0.05, 'squared'),
                     f'rms_m{suggested:g}': rid_at_start(every_batch, suggested, 'rms'),
                     **({} if RID_MARGIN['rms'] == suggested else    # the library's default, when it differs
                        {f"rms_default_m{RID_MARGIN['rms']:g}": rid_at_start(every_batch, RID_MARGIN['rms'], 'rms')})},
        'machine': {'torch': torch.__version__, 'threads': a.threads, 'python': platform.python_version(),
                    'loadavg_before': [round(x, 2) for x in load0], 'loadavg_after': [round(x, 2) for x in os.getloadavg()]},
        'seconds': round(time.time() - t0, 1),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    p = out['pooled']
    print(f"d same-id: median {p['same']['q0.5']:.4f} (q0.1 {p['same']['q0.1']:.4f}, q0.9 {p['same']['q0.9']:.4f}); "
          f"diff-id: median {p['diff']['q0.5']:.4f} (q0.1 {p['diff']['q0.1']:.4f}, q0.9 {p['diff']['q0.9']:.4f})")
    print(f"suggested margin {suggested:g}; R_id at start: {json.dumps(out['at_start'])}")
    print(f"wrote {a.out} in {out['seconds']} s")


if __name__ == '__main__':
    main()
