"""Table 3 of the paper, additive, on the synthetic set; plus the leave-one-out rows, METHOD revision 1, CA as mere
augmentation (the paper's headline claim) and the supervised bound. Writes bench/results/table3.json.

Rows (each over `--seeds`, per seed all-search and indoor-search Rank-1, mAP, mINP):

    untrained   the epoch-0 evaluation every run makes (BN statistics recomputed, no gradient step)
    baseline    L_base only: no PA-CBAM, no MAAL, no phase-2 module
    +pacbam     baseline + PA-CBAM (M7-M10)          +maal   baseline + MAAL (M11-M12)
    phase1      baseline + PA-CBAM + MAAL: the paper's phase 1 for the whole schedule
    +vra, +vrnl, +um, vra+vrnl, full   phase1 with those phase-2 modules from `phase2_start` (full = all three)
    -vra, -vrnl, -um                   full without one module (leave-one-out)
    full_rev1   full with every METHOD revision-1 option (config.LEGACY)
    ca_aug      full with CA as augmentation only (ca_modality=False: no Phi^c, MAAL v/r with the confusion target)
    supervised  the same backbone, data and schedule trained on the true identities (one memory): the ceiling
    +shared_intra, +ca_cross, +vrnl_epoch, +um_all, +mate, +centroids, +cosine   full with one of TokenMatcher's
                stage-2 options (chapters 08-10): intra terms on the shared memories, CA copies in the cross terms,
                neighbour sets once per epoch, UM over all links (a live infrared term), the mate rule (0.03 -> 0.12),
                normalised centroids in M13, a cosine phase-2 lr
    tokenmatcher  full with all of them (config.TOKENMATCHER): TokenMatcher's stage 2 as one row
    +joint      full with PCA_USLVIReID's joint memory (joint_memory: a third memory over M3b's joint clusters, chapter 10c)
    full_rev3   full with the options revision 3 adopts (config.REV3, the defaults since: chapter 13 says why)
    full_p1     full again, for a seed whose phase-1 checkpoint was made anew and differs from the one the `full` row
                continued from (12c's option_effects pairs each row with the `full` of the same phase-1 epochs)
    oracle_links (opt-in) full, with VRA links from the true identities: a bound on what better matching buys
    oracle_links-um (opt-in) the same without UM: whether UM helps once the links it groups over are right

Rows that differ from `phase1` only in phase-2 terms share its phase-1 checkpoint: it runs once per seed and each such
row continues from it (`Trainer.fit(resume=True)` with the row's config), which gives the same numbers as a run from
scratch because resuming is exact and phase 1 does not read the phase-2 switches. The others train from scratch.

    python bench/ablation_bench.py --preset evidence                  # every row, seeds 0 1 2 -> bench/results/table3.json
    python bench/ablation_bench.py --preset synthetic --out runs/ablation_demo --json runs/ablation_demo/table3.json
    python bench/ablation_bench.py --only full phase1 --seeds 0       # a subset (merged into an existing JSON)
    python bench/ablation_bench.py --only=full,-vra,-um --seeds 2     # rows that start with '-' go after '='
    python bench/ablation_bench.py --only=oracle_links,oracle_links-um --seeds 0   # the opt-in oracle rows
    python bench/ablation_bench.py --tiny --out /tmp/abl --json /tmp/abl/t3.json   # seconds: proves the script runs

Each run writes its own folder under --out (results.json, log.csv, curves.png); finished runs are reused (resumable).
A measurement, not a test: nothing here picks a checkpoint, every row reports its last epoch.
"""
import argparse, json, shutil, time
from pathlib import Path

import numpy as np
import torch

from usl_vireid_nb.config import LEGACY, REV3, TOKENMATCHER, apply_overrides, overrides_of, preset, synthetic, tiny

from _machine import command, machine
from usl_vireid_nb.epoch import prepare_data
from usl_vireid_nb.trainer import Trainer
from usl_vireid_nb.vra import cluster_similarity, majority_identity

NO_PHASE2 = dict(use_vra=False, use_vrnl=False, use_um=False)
ROWS = {   # row -> (overrides of the preset, shares the phase-1 checkpoint)
    'baseline': ({**NO_PHASE2, 'use_pacbam': False, 'use_maal': False}, False),
    '+pacbam': ({**NO_PHASE2, 'use_maal': False}, False),
    '+maal': ({**NO_PHASE2, 'use_pacbam': False}, False),
    'phase1': (NO_PHASE2, True),
    '+vra': ({'use_vrnl': False, 'use_um': False}, True),
    '+vrnl': ({'use_vra': False, 'use_um': False}, True),
    '+um': ({'use_vra': False, 'use_vrnl': False}, True),
    'vra+vrnl': ({'use_um': False}, True),
    'full': ({}, True),
    '-vra': ({'use_vra': False}, True),
    '-vrnl': ({'use_vrnl': False}, True),
    '-um': ({'use_um': False}, True),
    'full_rev1': (dict(LEGACY), False),
    'ca_aug': ({'ca_modality': False}, False),
    'supervised': ({'supervised': True}, False),
    # TokenMatcher's stage 2 (the phase-2 issue): each option added to the full method, then all of them as one row
    '+shared_intra': ({'shared_intra': True}, True),
    '+ca_cross': ({'ca_cross': True}, True),
    '+vrnl_epoch': ({'vrnl_sets': 'epoch'}, True),
    '+um_all': ({'um_rule': 'two_hop_all'}, True),
    '+mate': ({'um_rule': 'mate', 'alpha3_late': 0.12, 'delta1': 1.0, 'delta2': 1.0}, True),
    '+centroids': ({'centroids': 'normalised'}, True),
    '+cosine': ({'lr_schedule': 'cosine'}, True),
    '+joint': ({'joint_memory': True}, True),
    'tokenmatcher': (dict(TOKENMATCHER), True),
    'full_rev3': (dict(REV3), True),
    'full_p1': ({}, True),
    'oracle_links': ({}, True),
    'oracle_links-um': ({'use_um': False}, True),
}
OPT_IN = ('oracle_links', 'oracle_links-um')
METRICS = ('Rank-1', 'mAP', 'mINP')


def quiet(*_): pass


def oracle_similarity(true_v, true_r):
    """A cluster similarity that links clusters by the truth: S[i, j] = 1 where visible cluster i and infrared cluster j
    have the same majority identity (plus 0.01 x the real similarity to order the rest). A diagnostic bound on what
    better matching could buy, never a method: it reads the labels training must not see. Passed to the trainer as its
    `similarity` (stage 5 of chapter 11)."""
    def truth(f_v, y_v, f_r, y_r):
        mv, mr = majority_identity(np.asarray(y_v), true_v), majority_identity(np.asarray(y_r), true_r)
        return torch.as_tensor((mv[:, None] == mr[None, :]).astype(np.float32)) + 0.01 * cluster_similarity(f_v, y_v, f_r, y_r)
    return truth


def run(cfg, folder, start=None, oracle=False) -> dict:
    "results.json of `cfg` trained into `folder` (continuing from the checkpoint file `start` when given; reused if done)."
    folder = Path(folder)
    if (folder/'results.json').is_file(): return json.loads((folder/'results.json').read_text())
    if start is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(start, folder/'checkpoint.pt')
    sim = cluster_similarity
    if oracle:
        _, vis, ir = prepare_data(cfg, folder)
        sim = oracle_similarity(np.array([r.pid for r in vis]), np.array([r.pid for r in ir]))
    t = time.time()
    res = Trainer(cfg, folder, log=quiet, similarity=sim).fit(resume=start is not None)
    mode = next(iter(res['final']))                        # 'all' (SYSU-MM01's first mode) or 'v2i' (RegDB, LLCM)
    print(f"  {folder.name}: {time.time() - t:.0f}s  {mode} R1 {res['final'][mode]['Rank-1']:.1f} "
          f"mAP {res['final'][mode]['mAP']:.1f}", flush=True)
    return res


def summary(rows: dict) -> str:
    "Mean +- std over seeds per row (all-search and indoor-search)."
    head = f"{'row':<12}" + ''.join(f"{m + ' ' + k:>16}" for m in ('all', 'indoor') for k in METRICS) + '  seeds'
    lines = [head]
    for name, row in rows.items():
        runs = list(row['per_seed'].values())
        cells = [f"{np.mean([r[m][k] for r in runs]):7.2f} ±{np.std([r[m][k] for r in runs]):5.2f}"
                 for m in ('all', 'indoor') for k in METRICS]
        lines.append(f"{name:<12}" + ''.join(f"{c:>16}" for c in cells) + f"  {len(runs)}")
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--preset', default='evidence', choices=['synthetic', 'evidence'])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--only', nargs='+', action='extend', type=lambda v: v.split(','), default=None,
                    help="rows, space- or comma-separated; rows that start with '-' after '=': --only=full,-vra,-um")
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value for every run')
    ap.add_argument('--out', default='runs/table3', help='run folders')
    ap.add_argument('--json', default='bench/results/table3.json', help='the table (merged with what is there)')
    ap.add_argument('--tiny', action='store_true', help="chapter 10a's tiny() run for every row: proves the script works")
    a = ap.parse_args(argv)
    if a.only is not None:
        a.only = [r for rows in a.only for r in rows if r]
        bad = [r for r in a.only if r not in ROWS and r != 'untrained']
        if bad: ap.error(f"--only: unknown rows {bad} (choose from {', '.join(list(ROWS) + ['untrained'])})")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    base = preset(a.preset)                                  # chapter 10a's one lookup by name
    if a.tiny: base = apply_overrides(base, overrides_of(tiny(epochs=2, eval_every=2), synthetic()))
    base = apply_overrides(apply_overrides(base, a.set), {'progress': False, 'data_root': str(out/'data')})
    names = a.only or [r for r in ROWS if r not in OPT_IN]
    path = Path(a.json)
    table = json.loads(path.read_text()) if path.is_file() else {}
    same = table.get('preset') == a.preset and table.get('overrides') == a.set and table.get('tiny') == a.tiny
    table = {'preset': a.preset, 'overrides': a.set, 'tiny': a.tiny, 'config': json.loads(base.to_json()),
             'machine': machine(), 'rows': table.get('rows', {}) if same else {}, 'command': command(argv)}
    t0 = time.time()
    for seed in a.seeds:
        print(f"seed {seed}", flush=True)
        cfg = apply_overrides(base, {'seed': seed})
        start = None
        if any(ROWS[n][1] for n in names if n in ROWS) and cfg.phase2_start > 1:
            p1 = apply_overrides(cfg, {'epochs': min(cfg.phase2_start - 1, cfg.epochs)})
            r1 = run(p1, out/f'phase1-ckpt_s{seed}')
            start = out/f'phase1-ckpt_s{seed}'/'checkpoint.pt'
            unt = table['rows'].setdefault('untrained', {'overrides': {}, 'per_seed': {}})   # the method's model at epoch 0
            unt['per_seed'][str(seed)] = {m: r1['untrained'][m] for m in r1['untrained']}
        for name in names:
            if name == 'untrained': continue
            ov, shared = ROWS[name]
            res = run(apply_overrides(cfg, ov), out/f'{name}_s{seed}', start if shared else None, oracle=name.startswith('oracle_links'))
            row = table['rows'].setdefault(name, {'overrides': ov, 'per_seed': {}})
            row['per_seed'][str(seed)] = {m: res['final'][m] for m in res['final']}
            log = json.loads((out/f'{name}_s{seed}'/'log.json').read_text())       # the test curve, epoch by epoch
            row.setdefault('curves', {})[str(seed)] = [[r['epoch'], r['Rank-1'], r['mAP']] for r in log if 'Rank-1' in r]
            if start is None and str(seed) not in table['rows'].get('untrained', {}).get('per_seed', {}):
                unt = table['rows'].setdefault('untrained', {'overrides': {}, 'per_seed': {}})
                unt['per_seed'][str(seed)] = {m: res['untrained'][m] for m in res['untrained']}
            table['seconds'] = time.time() - t0
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(table, indent=1))
    order = ['untrained'] + [r for r in ROWS if r in table['rows']]
    table['rows'] = {k: table['rows'][k] for k in order if k in table['rows']}
    path.write_text(json.dumps(table, indent=1))
    print(summary(table['rows']))
    print(f"total {time.time() - t0:.0f}s -> {path}")


if __name__ == '__main__':
    main()
