"""Benchmark of chapter 03 (M3 / M3b clustering) against the exact kNN product it cannot avoid.

For each (N, d) a fresh child process loads the same descriptors and alternates, `--repeats` times:
  * the kNN product alone: torch `x_block @ x.T` + `topk(k1)` over row blocks of `--block` rows (the floor: every
    k-reciprocal method needs each row's exact k1 nearest neighbours);
  * ours: `cluster(x)` = `compute_jaccard_distance(x, 30, 6, max_dist=0.6)` + DBSCAN on the sparse result (what the
    trainer runs), with the time of its own kNN step (`_knn`: search + tie handling) read apart;
  * optionally the dense `compute_jaccard_distance(x)` (N x N float32, `--dense-max`) and the M3b joint distance
    (`compute_modal_invariant_jaccard_distance`, k1=40, k2=32, half the rows visible, half infrared; `--joint-d`) with
    its own kNN product (k1 = 40) beside it.
The ratio ours / kNN product is taken pair by pair (each run of ours against the kNN run just before it) and the median
pair is reported (and the ratio of CPU seconds, all threads, which a busy machine disturbs less). Peak memory: a thread samples the RSS every 2 ms; each step's peak above the RSS when it started.
Descriptors: gaussian blobs on the unit sphere (`blob_features`, 50 per identity, seed 0). Results go to
`bench/results/cluster_bench.json` with the machine (CPU model and flags from /proc/cpuinfo, threads, torch version)
and the load average around each run. This is a benchmark, not a test:
  python bench/cluster_bench.py                     # N = 10,000 and 34,167; d = 768 and 3,840 (~10 min on 2 cores)
"""
import argparse, datetime, json, os, platform, subprocess, sys, tempfile, threading, time
from pathlib import Path

def _rss_gb():
    "Current resident set size in GB (Linux /proc)."
    with open('/proc/self/statm') as fh: return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e9

class _Peak:
    "Peak RSS above the starting RSS of a block, by a thread sampling every `dt` seconds; also wall and CPU seconds."
    def __init__(self, dt=0.002): self.dt = dt
    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_gb()); time.sleep(self.dt)
    def __enter__(self):
        self.base = self.peak = _rss_gb(); self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True); self._t.start()
        self.w, self.c = time.perf_counter(), time.process_time(); return self
    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c
        self._stop.set(); self._t.join(); self.peak = max(self.peak, _rss_gb()); self.gb = self.peak - self.base

def knn_product(x, k, block):
    "The floor: each row's k largest inner products by torch matmul + topk, `block` rows at a time."
    import torch
    t = torch.from_numpy(x)
    return [torch.topk(t[a:a + block] @ t.T, k, dim=1) for a in range(0, len(t), block)]

def _step(fn):
    "Run `fn` under `_Peak`: (result, dict of wall/cpu seconds and peak GB)."
    with _Peak() as p: out = fn()
    return out, dict(wall_s=round(p.wall, 4), cpu_s=round(p.cpu, 4), peak_gb=round(p.gb, 4))

def child(a):
    import numpy as np, torch
    from usl_vireid_nb import cluster as C
    x = np.load(a.data)
    n, d = x.shape
    C.cluster(x[:600]); knn_product(x[:600], a.k1, a.block)     # one-off costs (thread pools, lazy imports)
    knn_time = []
    _knn = C._knn
    def timed_knn(*args, **kw):                                 # ours' own kNN step, read apart
        t = time.perf_counter(); out = _knn(*args, **kw); knn_time.append(time.perf_counter() - t); return out
    C._knn = timed_knn
    res = dict(n=n, d=d, load_before=os.getloadavg(), torch_threads=torch.get_num_threads(), pairs=[])
    for rep in range(a.repeats):
        _, k = _step(lambda: knn_product(x, a.k1, a.block))
        labels, o = _step(lambda: C.cluster(x, eps=a.eps, min_samples=a.min_samples, k1=a.k1, k2=a.k2))
        o['own_knn_s'] = round(knn_time.pop(), 4)
        res['pairs'].append(dict(knn_product=k, ours=o, ratio=round(o['wall_s'] / k['wall_s'], 3),
                                 cpu_ratio=round(o['cpu_s'] / k['cpu_s'], 3)))
    res['clusters'], res['outliers'] = int(labels.max() + 1), int((labels < 0).sum())
    if n <= a.dense_max:
        _, k = _step(lambda: knn_product(x, a.k1, a.block))
        _, o = _step(lambda: C.compute_jaccard_distance(x, a.k1, a.k2)); o['own_knn_s'] = round(knn_time.pop(), 4)
        res['dense'] = dict(knn_product=k, ours=o, ratio=round(o['wall_s'] / k['wall_s'], 3))
    if d in a.joint_d:
        mod = np.arange(n) % 2                                  # half visible, half infrared
        _, k = _step(lambda: knn_product(x, 40, a.block))
        _, o = _step(lambda: C.compute_modal_invariant_jaccard_distance(x, mod, 40, 32, max_dist=a.eps))
        o['own_knn_s'] = round(knn_time.pop(), 4)
        res['joint'] = dict(knn_product=k, ours=o, ratio=round(o['wall_s'] / k['wall_s'], 3), k1=40, k2=32)
    res['load_after'] = os.getloadavg()
    med = sorted(res['pairs'], key=lambda p: p['ratio'])[len(res['pairs']) // 2]
    res['median'] = med
    print(json.dumps(res))

def cpu_info():
    "CPU model, flags (from /proc/cpuinfo) and the cores this process may use."
    info = dict(machine=platform.machine(), cores=len(os.sched_getaffinity(0)))
    try:
        lines = Path('/proc/cpuinfo').read_text().splitlines()
        get = lambda key: next((l.split(':', 1)[1].strip() for l in lines if l.startswith(key)), None)
        info.update(model=get('model name'), vendor=get('vendor_id'), family=get('cpu family'), model_id=get('model'),
                    flags=sorted((get('flags') or '').split()))
        info['simd'] = [f for f in info['flags'] if f.startswith(('avx', 'fma', 'amx', 'sse4'))]
    except OSError: pass
    return info

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[10000, 34167])
    ap.add_argument('--dims', type=int, nargs='+', default=[768, 3840], help='3840 = (N+1) * 768 with N = 4 regions')
    ap.add_argument('--k1', type=int, default=30); ap.add_argument('--k2', type=int, default=6)
    ap.add_argument('--eps', type=float, default=0.6); ap.add_argument('--min-samples', type=int, default=4)
    ap.add_argument('--repeats', type=int, default=3, help='alternating (kNN product, ours) pairs; the median is kept')
    ap.add_argument('--block', type=int, default=1024, help='row block of the plain kNN product')
    ap.add_argument('--dense-max', type=int, default=10000, help='also time the dense N x N output up to this N')
    ap.add_argument('--joint-d', type=int, nargs='*', default=[768], help='dims at which M3b (joint) is timed too')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', default=str(Path(__file__).parent / 'results' / 'cluster_bench.json'))
    ap.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--data', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a)
    import numpy as np, torch, scipy, sklearn
    from usl_vireid_nb.cluster import blob_features
    t0, runs = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for d in a.dims:
            for n in a.sizes:
                path = os.path.join(tmp, f'x_{n}_{d}.npy')
                np.save(path, blob_features(n, d=d, n_ids=max(1, n // 50), noise=1.0, seed=a.seed)[0])
                argv = [sys.executable, os.path.abspath(__file__), '--child', '--data', path]
                for key in ('k1', 'k2', 'eps', 'min_samples', 'repeats', 'block', 'dense_max'):
                    argv += [f"--{key.replace('_', '-')}", str(getattr(a, key))]
                argv += ['--joint-d', *map(str, a.joint_d)]
                p = subprocess.run(argv, capture_output=True, text=True)
                os.remove(path)
                if p.returncode: sys.exit(f'child failed for N={n}, d={d}:\n{p.stderr}')
                r = json.loads(p.stdout.strip().splitlines()[-1]); runs.append(r)
                m = r['median']
                print(f"N={n:>6} d={d:>5} | kNN product {m['knn_product']['wall_s']:7.2f} s | ours {m['ours']['wall_s']:7.2f} s "
                      f"(own kNN {m['ours']['own_knn_s']:.2f}) | ratio {m['ratio']:.2f} (all {[p['ratio'] for p in r['pairs']]}; "
                      f"CPU {m['cpu_ratio']:.2f}) | "
                      f"peak GB kNN {m['knn_product']['peak_gb']:.2f} ours {m['ours']['peak_gb']:.2f} | "
                      f"load {r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}"
                      + (f" | dense {r['dense']['ratio']:.2f}x" if 'dense' in r else '')
                      + (f" | joint {r['joint']['ratio']:.2f}x" if 'joint' in r else ''), flush=True)
    out = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'), cpu=cpu_info(),
               torch=torch.__version__, numpy=np.__version__, scipy=scipy.__version__, sklearn=sklearn.__version__,
               python=platform.python_version(), torch_threads=torch.get_num_threads(),
               omp_num_threads=os.environ.get('OMP_NUM_THREADS'), args={k: v for k, v in vars(a).items() if k not in ('child', 'data', 'json')},
               total_s=round(time.perf_counter() - t0, 1), runs=runs)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1) + '\n')
    print('wrote', a.json)

if __name__ == '__main__':
    main()
