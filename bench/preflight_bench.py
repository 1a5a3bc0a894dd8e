"""Benchmark of chapter 00's `preflight` (issue 16): decode every image of a SYSU-MM01-sized training set once, in parallel.

Writes a temporary tree in SYSU-MM01's raw layout with the training split's size (395 identities, 22,258 visible images in
cameras 1, 2, 4, 5 and 11,909 infrared ones in cameras 3, 6), reads it with `read_sysu`, cuts three files short (so the
check must find them), and times `preflight(..., skip_bad=True)`:
  python bench/preflight_bench.py --json bench/results/preflight.json
Images: SYSU-MM01's are person boxes of a few hundred pixels whose exact size distribution is not published, so each
image's height is drawn uniformly from --vis-height (visible) or --ir-height (infrared) and its width as height x
--aspect; the content is a person of chapter 00a's renderer, upscaled (bicubic) with Gaussian sensor noise, so the JPEGs
have the entropy of a camera image rather than of a flat drawing; infrared images are stored as 3-channel JPEGs with equal
channels. JPEG quality --quality (95: OpenCV's `imwrite` default; higher than PIL's 75, so larger files and slower entropy
decoding: the conservative choice). The files are read back from the page cache (they were just written; dropping the
cache would need root and would hit every other process on this shared machine), so this measures decoding, not the disk.

Also measured: a comparison of backends and worker counts on a --compare subset (two interleaved rounds, since the load
of this shared machine moves), and whether Pillow's JPEG decoder releases the GIL (`gil_check`). Not a test.
"""
import argparse, json, os, platform, shutil, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, features

N_IDS, N_VIS, N_IR = 395, 22258, 11909
VIS_CAMS, IR_CAMS = (1, 2, 4, 5), (3, 6)

def _layout(n_ids, n_vis, n_ir):
    "[(pid, camid, k, is_ir)] of every image: identity j % n_ids, cameras in turn, so every identity is in every camera."
    jobs = [(1 + j % n_ids, VIS_CAMS[(j // n_ids) % 4], j, False) for j in range(n_vis)]
    return jobs + [(1 + j % n_ids, IR_CAMS[(j // n_ids) % 2], j, True) for j in range(n_ir)]

def _base_images(n, seed):
    "n renders (128 x 64) of chapter 00a's people, visible and infrared alternating."
    from usl_vireid_nb.synthetic import _identity_attributes, render_people
    attrs = [_identity_attributes(np.random.default_rng([seed, p])) for p in range(n)]
    cams = [(VIS_CAMS + IR_CAMS)[i % 6] for i in range(n)]
    return render_people(attrs, cams, np.random.default_rng([seed, 1]))

def _write_chunk(args):
    "Write the images of one chunk of jobs (deterministic per chunk); returns their total bytes."
    root, jobs, base, a = args
    rng, total = np.random.default_rng([a['seed'], 7, jobs[0][2], int(jobs[0][3])]), 0
    for pid, cam, k, is_ir in jobs:
        lo, hi = a['ir_height'] if is_ir else a['vis_height']
        h = int(rng.integers(lo, hi + 1)); w = max(16, int(h * rng.uniform(*a['aspect'])))
        src = base[(2 * (k % (len(base) // 2))) + int(is_ir)]
        im = np.asarray(Image.fromarray(src).resize((w, h), Image.BICUBIC), np.float32)
        im = im + rng.standard_normal((h, w, 1 if is_ir else 3), dtype=np.float32) * a['noise']
        p = Path(root)/f'cam{cam}'/f'{pid:04d}'/f'{k:05d}.jpg'
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(np.broadcast_to(im, (h, w, 3)), 0, 255).astype(np.uint8)).save(p, quality=a['quality'])
        total += p.stat().st_size
    return total

def make_tree(root, a, workers):
    "The SYSU-MM01-sized training tree under `root`, written by `workers` processes; returns (seconds, bytes)."
    t0 = time.perf_counter()
    jobs = _layout(a['n_ids'], a['n_vis'], a['n_ir'])
    base = _base_images(64, a['seed'])
    chunks = [(str(root), jobs[i:i + 500], base, a) for i in range(0, len(jobs), 500)]
    with ProcessPoolExecutor(workers) as ex: total = sum(ex.map(_write_chunk, chunks))
    (root/'exp').mkdir(exist_ok=True)
    (root/'exp'/'train_id.txt').write_text(','.join(str(p) for p in range(1, a['n_ids'] + 1)) + '\n')
    (root/'exp'/'val_id.txt').write_text('\n')
    return time.perf_counter() - t0, total

def gil_check(path):
    """Does Pillow's decoder for `path` release the GIL? `ImageFile.load` calls the C decoder inside `ImagingSectionEnter`
    (Py_BEGIN_ALLOW_THREADS) exactly when the decoder does not pull from the file itself (`pulls_fd` False): see Pillow's
    src/decode.c, `_decode`."""
    with Image.open(path) as im:
        codec, _, _, args = im.tile[0]
        dec = Image._getdecoder(im.mode, codec, args, im.decoderconfig)
        return dict(format=im.format, codec=codec, pulls_fd=bool(dec.pulls_fd), releases_gil=not dec.pulls_fd)

def _cpu():
    "CPU model, core counts and load averages."
    model = next((ln.split(':', 1)[1].strip() for ln in open('/proc/cpuinfo') if ln.startswith('model name')), platform.processor())
    return dict(model=model, cpu_count=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n-ids', type=int, default=N_IDS); ap.add_argument('--n-vis', type=int, default=N_VIS)
    ap.add_argument('--n-ir', type=int, default=N_IR)
    ap.add_argument('--vis-height', type=int, nargs=2, default=[200, 500], help='visible image heights, uniform (pixels)')
    ap.add_argument('--ir-height', type=int, nargs=2, default=[200, 450], help='infrared image heights, uniform (pixels)')
    ap.add_argument('--aspect', type=float, nargs=2, default=[0.35, 0.55], help='width / height, uniform')
    ap.add_argument('--quality', type=int, default=95); ap.add_argument('--noise', type=float, default=3.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--compare', type=int, default=6000, help='images in the backend comparison (0: skip it)')
    ap.add_argument('--workers', type=int, default=None, help="preflight's workers in the main run (default: preflight's own)")
    ap.add_argument('--root', default=None, help='write the tree here and keep it (default: a temporary folder, removed)')
    ap.add_argument('--json', default=None, help='write the results to this file')
    a = ap.parse_args()
    from usl_vireid_nb.data import _default_workers, preflight, read_sysu
    gen = dict(n_ids=a.n_ids, n_vis=a.n_vis, n_ir=a.n_ir, vis_height=a.vis_height, ir_height=a.ir_height, aspect=a.aspect,
               quality=a.quality, noise=a.noise, seed=a.seed)
    root = Path(a.root or tempfile.mkdtemp(prefix='preflight_bench_'))
    res = dict(cpu=_cpu(), python=platform.python_version(), pillow=Image.__version__,
               libjpeg_turbo=bool(features.check_feature('libjpeg_turbo')), images=gen, load_at_start=os.getloadavg())
    try:
        gen_s, nbytes = make_tree(root, gen, res['cpu']['usable_cores'])
        t0 = time.perf_counter(); recs = read_sysu(root, 'train'); read_s = time.perf_counter() - t0
        assert len(recs) == a.n_vis + a.n_ir, len(recs)
        for r in recs[5::len(recs) // 3][:3]:                                # three files cut short: the check must find them
            p = Path(r.img_path); p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])
        res.update(generate_s=gen_s, mean_file_kB=nbytes / len(recs) / 1e3, total_MB=nbytes / 1e6, read_sysu_s=read_s)
        print(f"tree: {len(recs)} images, {res['mean_file_kB']:.1f} kB each, written in {gen_s:.0f} s", flush=True)
        res['gil'] = gil_check(recs[0].img_path)
        print('GIL', json.dumps(res['gil']), flush=True)
        if a.compare:
            sub = recs[:: max(1, len(recs) // a.compare)][:a.compare]
            runs = [('serial', 1), ('thread', 1), ('thread', 2), ('thread', 4), ('thread', 8), ('process', 2), ('process', 4)]
            res['compare'] = []
            for rnd in range(2):                                             # two interleaved rounds: the load moves
                for backend, w in runs:
                    _, rep = _quiet(preflight, sub, w, backend)
                    res['compare'].append(dict(round=rnd, backend=backend, workers=w, images=len(sub), seconds=rep['seconds'],
                                               images_per_s=rep['images_per_s'], load=os.getloadavg()[0]))
                    print(f"  {backend:7s} x{w}: {rep['images_per_s']:6.0f} images/s", flush=True)
        res['main'] = []
        for backend in ('thread', 'process'):
            w = a.workers or (_default_workers() if backend == 'thread' else res['cpu']['usable_cores'])
            load0 = os.getloadavg()
            good, rep = _quiet(preflight, recs, w, backend)
            assert rep['n_bad'] == 3 and len(good) == len(recs) - 3, rep['n_bad']
            res['main'].append(dict(backend=backend, workers=w, images=len(recs), seconds=rep['seconds'],
                                    images_per_s=rep['images_per_s'], n_bad=rep['n_bad'], load_before=load0,
                                    load_after=os.getloadavg()))
            print(f"preflight {backend} x{w}: {len(recs)} images in {rep['seconds']:.1f} s "
                  f"({rep['images_per_s']:.0f}/s), found {rep['n_bad']} bad; load {load0[0]:.2f}", flush=True)
        best = res['main'][0]
        res.update(time_s=best['seconds'], images_per_s=best['images_per_s'], workers=best['workers'],
                   backend=best['backend'], goal_s=30, meets_goal=best['seconds'] <= 30, load_at_end=os.getloadavg(),
                   command='python bench/preflight_bench.py ' + ' '.join(sys.argv[1:]))
    finally:
        if not a.root: shutil.rmtree(root, ignore_errors=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + '\n')
    return res

def _quiet(preflight, recs, workers, backend):
    "preflight(recs, skip_bad=True) without its one warning about the three cut files."
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return preflight(recs, workers=workers, backend=backend, skip_bad=True)

if __name__ == '__main__':
    main()
