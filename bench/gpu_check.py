"""One script for a CUDA machine (issue 17), about 8 minutes: is everything the GPU path needs there, and how fast is it?

    python bench/gpu_check.py                      # writes bench/results/gpu_check.json; exit 1 if a check failed
    python bench/gpu_check.py --cpu-smoke          # the same code at toy sizes on the CPU (test backbone, gloo): a dry run

Checks, in this order (each one's failure is recorded and the others still run; --budget seconds in all):
  ddp            a one-process NCCL start in a child process: init_process_group (world size 1 from env vars),
                 an all_reduce, destroy_process_group
  faiss_knn      faiss-gpu kNN (GpuIndexFlatIP through index_cpu_to_all_gpus, guarded by faiss.get_num_gpus() > 0)
                 against faiss's CPU IndexFlatIP on 20,000 x 768 unit rows (k = 31): neighbour agreement, similarity error
  torch_knn      the torch CUDA path (fp32 matmul + topk, TF32 off) against the same CPU result; TF32's agreement too
  train_steps    20 training steps of the paper preset: ViT-B/16 at 384 x 128, 4 x 16 per modality, three streams
                 (v, c, r: 192 images a step), bf16 autocast and channels_last (the config's amp / channels_last), every
                 phase-2 term live. Built from the trainer's own pieces: `Trainer(sysu(root, pretrained='none', ...))` on a
                 generated tiny SYSU-layout tree (`make_synthetic`), then chapter 10c's `describe`, `plan_epoch` (with
                 the true labels handed in) and `build_epoch`, `pk_loaders` and `Trainer.train_step`.
                 Pseudo-labels are the tree's true identities (a random-weight ViT-B clusters nothing useful), so the step
                 is the paper's full phase-2 step. Reports images/s with the data loaders and on one fixed batch (the
                 GPU alone), and torch.cuda.max_memory_allocated
  extraction     images/s of `describe` on the tree, and of the bare eval forward on batches of 128
  scale_stages   bench/scale_bench.py's stages at SYSU-MM01 scale with device='cuda' (clustering still runs its sparse
                 Jaccard on the CPU; its kNN goes to faiss-gpu)
Never downloads anything: the ViT starts from random weights (pretrained='none'), the data are generated. Without a CUDA
device it prints "no CUDA device: nothing to check", writes nothing and exits 0.
"""
from __future__ import annotations
import argparse, datetime, importlib.util, json, os, platform, socket, subprocess, sys, tempfile, time, traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
NO_CUDA = "no CUDA device: nothing to check"
SIZES = dict(      # full (a CUDA machine) and smoke (--cpu-smoke: the same code on toy sizes)
    full=dict(knn_n=20000, knn_d=768, knn_k=31, steps=20, warmup=3, batch_ids=4, num_instances=16, arch='paper',
              img=(384, 128), ids=16, images=4, extract_batches=10, extract_batch=128, scale='full', workers=8),
    smoke=dict(knn_n=2000, knn_d=64, knn_k=31, steps=2, warmup=1, batch_ids=2, num_instances=4, arch='test',
               img=(64, 32), ids=6, images=2, extract_batches=2, extract_batch=16, scale='small', workers=0))


def _scale_bench():
    "bench/scale_bench.py as a module (it is a script beside this one, not part of the package)."
    spec = importlib.util.spec_from_file_location('scale_bench', HERE/'scale_bench.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _sync(dev):
    import torch
    if torch.device(dev).type == 'cuda': torch.cuda.synchronize(dev)

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ checks
def check_ddp(sz, dev, smoke, state=None):
    "A one-process process group in a child (a hung NCCL start cannot stop this process): init, all_reduce, destroy."
    env = {**os.environ, 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(_free_port()), 'RANK': '0', 'WORLD_SIZE': '1',
           'LOCAL_RANK': '0'}
    t = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, '--ddp-child', 'gloo' if smoke else 'nccl'], env=env,
                       capture_output=True, text=True, timeout=180)
    line = next((l for l in p.stdout.splitlines() if l.startswith('{')), None)
    res = json.loads(line) if line else {'ok': False}
    res.update(wall_s=time.perf_counter() - t, returncode=p.returncode)
    if p.returncode != 0 or not res['ok']: res['stderr_tail'] = p.stderr[-2000:]
    res['ok'] = bool(res['ok']) and p.returncode == 0
    return res

def ddp_child(backend: str):
    import torch, torch.distributed as dist
    cuda = backend == 'nccl'
    if cuda: torch.cuda.set_device(0)
    t = time.perf_counter()
    dist.init_process_group(backend=backend)
    x = torch.full((4,), 3.0, device='cuda' if cuda else 'cpu')
    dist.all_reduce(x)
    ok = bool((x == 3.0).all()) and dist.get_world_size() == 1 and dist.get_rank() == 0
    if cuda: torch.cuda.synchronize()
    dist.destroy_process_group()
    print(json.dumps({'ok': ok, 'backend': backend, 'init_allreduce_destroy_s': time.perf_counter() - t,
                      'nccl_version': '.'.join(map(str, torch.cuda.nccl.version())) if cuda else None}))

def _cpu_knn(x, k):
    import faiss
    index = faiss.IndexFlatIP(x.shape[1]); index.add(x)
    t = time.perf_counter(); S, I = index.search(x, k)
    return S, I, time.perf_counter() - t

def _agreement(I_ref, S_ref, I, S) -> dict:
    "Share of the reference's k neighbours found, per row averaged; largest |similarity| difference, row by row sorted."
    import numpy as np
    k = I_ref.shape[1]
    hits = np.mean([len(np.intersect1d(a, b, assume_unique=True)) / k for a, b in zip(I_ref, I)])
    return {'recall': float(hits), 'max_sim_err': float(np.abs(np.sort(S_ref, 1) - np.sort(S, 1)).max())}

def check_faiss(sz, dev, smoke, ref):
    import faiss
    from usl_vireid_nb.cluster import blob_features
    x, _ = blob_features(sz['knn_n'], d=sz['knn_d'], seed=0)
    S0, I0, t_cpu = _cpu_knn(x, sz['knn_k'])
    ref.update(x=x, S=S0, I=I0)
    res = {'n': len(x), 'd': x.shape[1], 'k': sz['knn_k'], 'cpu_s': t_cpu, 'faiss_gpus': faiss.get_num_gpus(),
           'faiss': faiss.__version__}
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(x.shape[1])); index.add(x)
        index.search(x[:256], sz['knn_k'])                                          # warm-up
        t = time.perf_counter(); S, I = index.search(x, sz['knn_k']); res['gpu_s'] = time.perf_counter() - t
        res.update(_agreement(I0, S0, I, S))
        res['ok'] = res['recall'] >= 0.999 and res['max_sim_err'] <= 1e-4
    else:
        res['ok'] = smoke                                      # a CUDA machine whose faiss sees no GPU: that is a failure
        res['note'] = 'faiss.get_num_gpus() == 0: GPU index not tried'
    return res

def check_torch_knn(sz, dev, smoke, ref):
    import torch
    if 'x' not in ref: check_faiss(sz, dev, smoke, ref)
    xt = torch.from_numpy(ref['x']).to(dev)
    res, tf32 = {}, torch.backends.cuda.matmul.allow_tf32
    try:
        for name, allow in (('fp32', False), ('tf32', True)):
            torch.backends.cuda.matmul.allow_tf32 = allow
            torch.topk(xt[:256] @ xt.T, sz['knn_k'], dim=1)                         # warm-up
            _sync(dev); t = time.perf_counter()
            S, I = [], []
            for s in range(0, len(xt), 8192):                                        # 8192 x N blocks of the product
                v, i = torch.topk(xt[s:s + 8192] @ xt.T, sz['knn_k'], dim=1)
                S.append(v); I.append(i)
            S, I = torch.cat(S).cpu().numpy(), torch.cat(I).cpu().numpy()
            _sync(dev); res[f'{name}_s'] = time.perf_counter() - t
            res.update({f'{name}_{k}': v for k, v in _agreement(ref['I'], ref['S'], I, S).items()})
    finally: torch.backends.cuda.matmul.allow_tf32 = tf32
    res['ok'] = res['fp32_recall'] >= 0.999 and res['fp32_max_sim_err'] <= 1e-4
    return res

def _trainer_setup(sz, dev, smoke, work):
    "A Trainer of the paper preset on a generated SYSU-layout tree, and its phase-2 EpochState from the true identities."
    import numpy as np, torch
    from usl_vireid_nb.config import live_terms, sysu
    from usl_vireid_nb.synthetic import make_synthetic
    from usl_vireid_nb.epoch import build_epoch, describe, plan_epoch
    from usl_vireid_nb.trainer import Trainer
    root = make_synthetic(Path(work)/'sysu', n_train_ids=sz['ids'], n_test_ids=2, n_images=sz['images'], seed=0)
    kw = dict(pretrained='none', phase2_start=1, epochs=1, iters=sz['steps'] + sz['warmup'], batch_ids=sz['batch_ids'],
              num_instances=sz['num_instances'], num_workers=sz['workers'], extract_batch=sz['extract_batch'],
              progress=False)
    if smoke: kw.update(arch_preset='test', img_h=sz['img'][0], img_w=sz['img'][1], maal_hidden=16, rho_intra=4, rho_inter=4)
    cfg = sysu(root, **kw)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                        # the tree is not SYSU-MM01's size; ViT-B from random weights
        tr = Trainer(cfg, Path(work)/'run', device=dev)
    v = tr.views
    describe(tr.model, v, cfg, dev, tr.amp_dtype)                               # warm-up (kernels, decoded-image cache)
    _sync(dev); t = time.perf_counter()
    d = describe(tr.model, v, cfg, dev, tr.amp_dtype)
    _sync(dev); ext_s = time.perf_counter() - t
    y_v = np.unique(v.true_v, return_inverse=True)[1].astype(np.int64)           # the true identities as pseudo-labels
    y_r = np.unique(v.true_r, return_inverse=True)[1].astype(np.int64)
    plan = plan_epoch(d, cfg, cfg.phase2_start, labels=(y_v, y_r))               # the trainer's plan, the truth's labels
    st = build_epoch(d, plan, cfg, dev)
    links = plan.links
    n_ext = 2 * len(v.extract_v) + len(v.extract_r)
    return tr, st, {'extract_views_images': n_ext, 'extract_views_s': ext_s, 'extract_views_img_per_s': n_ext / ext_s,
                    'train_images': [len(v.extract_v), len(v.extract_r)], 'links': len(links)}

def check_train(sz, dev, smoke, state):
    import torch
    from usl_vireid_nb.trainer import STEP_STATS, pk_loaders
    work = tempfile.mkdtemp(prefix='gpu_check_')
    tr, st, info = _trainer_setup(sz, dev, smoke, work)
    state.update(tr=tr, st=st, info=info)
    c = tr.cfg
    lds = pk_loaders(tr.views, st, c, pin_memory=tr.cuda)
    its = [iter(lds['v']), iter(lds['r'])]
    n_img = 3 * c.batch_size
    batches = []
    for _ in range(sz['warmup']):
        bv, br = next(its[0]), next(its[1]); batches.append((bv, br)); tr.train_step(st, bv, br)
    if tr.cuda: torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev); t = time.perf_counter()
    for _ in range(sz['steps']): L = tr.train_step(st, next(its[0]), next(its[1]))
    _sync(dev); loaders_s = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated(dev) / 1e9 if tr.cuda else None
    bv, br = batches[-1]
    _sync(dev); t = time.perf_counter()
    for _ in range(sz['steps']): tr.train_step(st, bv, br)
    _sync(dev); fixed_s = time.perf_counter() - t
    import math
    finite = all(math.isfinite(v) for v in L.values())
    return {'backbone': c.arch_preset, 'img': [c.img_h, c.img_w], 'batch': f"{c.batch_ids} x {c.num_instances} per modality",
            'images_per_step': n_img, 'steps': sz['steps'], 'amp_dtype': str(tr.amp_dtype),
            'channels_last': bool(tr.cuda and c.channels_last), 'terms': sorted(k for k in L if k not in ('total', *STEP_STATS)),
            'img_per_s_with_loaders': n_img * sz['steps'] / loaders_s, 'img_per_s_fixed_batch': n_img * sz['steps'] / fixed_s,
            'step_s_fixed_batch': fixed_s / sz['steps'], 'peak_gb': peak, 'num_workers': c.num_workers,
            'last_losses': L, 'ok': finite and set(st.terms) - {'cls'} <= set(L)}

def check_extraction(sz, dev, smoke, state):
    import torch
    from usl_vireid_nb.runtime import autocast
    if 'tr' not in state: raise RuntimeError('needs the trainer of train_steps, which failed')
    tr, info = state['tr'], dict(state['info'])
    m = tr.model.eval()
    x = torch.randn(sz['extract_batch'], 3, tr.cfg.img_h, tr.cfg.img_w, device=dev)
    if tr.cuda and tr.cfg.channels_last: x = x.contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), autocast(tr.amp_dtype):
            m(x); _sync(dev); t = time.perf_counter()
            for _ in range(sz['extract_batches']): m(x)
            _sync(dev); s = time.perf_counter() - t
    finally: m.train()
    info.update(forward_batch=sz['extract_batch'], forward_img_per_s=sz['extract_batch'] * sz['extract_batches'] / s,
                ok=True)
    return info

def check_scale(sz, dev, smoke, state):
    sb = _scale_bench()
    sizes = sb.SMALL_SIZES if sz['scale'] == 'small' else sb.SYSU_SIZES
    t = time.perf_counter(); data = sb.sysu_like(**sizes); gen_s = time.perf_counter() - t
    breakdown = smoke or state.get('left', 0) > 300           # the breakdown runs clustering twice more: only with time
    rows = sb.run_stages(data, dev, breakdown=breakdown, reps=5, log=lambda s: print('   ', s, flush=True))
    tot = sb.totals(rows, sb.bench_config().iters)
    return {**sizes, 'generate_s': gen_s, 'breakdown': breakdown, 'stages': rows, 'totals': tot, 'ok': True}

CHECKS = [('ddp', check_ddp, 30), ('faiss_knn', check_faiss, 30), ('torch_knn', check_torch_knn, 20),
          ('train_steps', check_train, 120), ('extraction', check_extraction, 10), ('scale_stages', check_scale, 150)]
# name, function, seconds it needs at least (a check is skipped when less of --budget is left)


def environment(dev) -> dict:
    import torch, numpy, faiss
    env = {'python': platform.python_version(), 'torch': torch.__version__, 'numpy': numpy.__version__,
           'faiss': faiss.__version__, 'faiss_gpus': faiss.get_num_gpus(), 'cpu_count': os.cpu_count(),
           'torch_threads': torch.get_num_threads(), 'host': platform.node(), 'load_average': os.getloadavg()}
    if torch.device(dev).type == 'cuda':
        p = torch.cuda.get_device_properties(dev)
        env.update(gpu=p.name, gpu_memory_gb=p.total_memory / 1e9, capability=f"{p.major}.{p.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported(),
                   gpu_count=torch.cuda.device_count())
        try:
            env['driver'] = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired): env['driver'] = None
    return env

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--json', default=None, help='where the results go (default on CUDA: bench/results/gpu_check.json; '
                                                 'with --cpu-smoke: nowhere)')
    ap.add_argument('--budget', type=float, default=480, help='seconds for all checks (a check is skipped when too little is left)')
    ap.add_argument('--only', nargs='*', default=None, help='run only these checks')
    ap.add_argument('--cpu-smoke', action='store_true', help='toy sizes on the CPU: a dry run of the code, not a check')
    ap.add_argument('--ddp-child', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.ddp_child: ddp_child(a.ddp_child); return 0
    os.environ.setdefault('HF_HUB_OFFLINE', '1')                 # belt and braces: nothing here downloads
    import torch
    if not a.cpu_smoke and not torch.cuda.is_available():
        print(NO_CUDA); return 0
    dev = 'cpu' if a.cpu_smoke else f'cuda:{torch.cuda.current_device()}'
    sz = SIZES['smoke' if a.cpu_smoke else 'full']
    t0 = time.time()
    res = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
           'command': ' '.join(['python', 'bench/gpu_check.py', *(argv if argv is not None else sys.argv[1:])]),
           'mode': 'cpu smoke (toy sizes)' if a.cpu_smoke else 'cuda', 'environment': environment(dev), 'checks': {}}
    state, ref = {}, {}
    for name, fn, need in CHECKS:
        if a.only is not None and name not in a.only: continue
        left = a.budget - (time.time() - t0)
        if left < need and not a.cpu_smoke:
            res['checks'][name] = {'ok': False, 'skipped': f'{left:.0f} s of the budget left, needs {need} s'}
            print(f"{name}: skipped ({left:.0f} s left)"); continue
        print(f"{name} ...", flush=True)
        t, state['left'] = time.time(), left
        try: r = fn(sz, dev, a.cpu_smoke, ref if name in ('faiss_knn', 'torch_knn') else state)
        except Exception as e:
            r = {'ok': False, 'error': f"{type(e).__name__}: {e}", 'traceback': traceback.format_exc()[-3000:]}
        r['check_s'] = time.time() - t
        res['checks'][name] = r
        brief = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                 if k not in ('stages', 'traceback', 'last_losses', 'totals')}
        print(f"{name}: {'ok' if r['ok'] else 'FAILED'} {json.dumps(brief, default=str)}", flush=True)
        if name == 'scale_stages' and 'totals' in r:
            print(_scale_bench().table(r['stages'], r['totals']))
    res['wall_s'] = time.time() - t0
    res['ok'] = all(r['ok'] for r in res['checks'].values())
    path = a.json or (None if a.cpu_smoke else HERE/'results'/'gpu_check.json')
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(res, indent=1, default=str) + '\n')
    print(f"{'all checks passed' if res['ok'] else 'SOME CHECKS FAILED'} in {res['wall_s']:.0f} s"
          + (f"; wrote {path}" if path else ''))
    return 0 if res['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
