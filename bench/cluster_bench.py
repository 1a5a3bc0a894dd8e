"""Benchmark of chapter 03 (M3 clustering): our sparse k-reciprocal Jaccard + DBSCAN against a dense re-implementation of
the reference algorithm (cluster-contrast's `compute_jaccard_distance`: Python loops, dense N x N arrays, then DBSCAN on
the dense matrix), and against faiss's exact kNN search alone (the physical floor).

Every measurement runs in a fresh child process, so its peak RSS (getrusage) belongs to it alone:
  python bench/cluster_bench.py --sizes 2000 10000 34167
Descriptors: gaussian blobs on the unit sphere (`blob_features`, d=768, 50 per identity). This is a benchmark, not a test.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time

def _rss_gb():
    "Peak resident set size of this process so far, in GB (Linux reports kB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6

def _rss_now_gb():
    "Current resident set size, in GB (Linux /proc)."
    with open('/proc/self/statm') as fh: return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e9

def _data(n, d, seed):
    from usl_vireid_nb.cluster import blob_features
    x, _ = blob_features(n, d=d, n_ids=max(1, n // 50), noise=1.0, seed=seed)
    return x

class _Timer:
    "Wall-clock and CPU (user+system, all threads) seconds of a block."
    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time(); return self
    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c

def _knn_only(x, k1):
    "faiss's exact search alone, k1 columns, the way the reference searches (IndexFlatIP on unit rows)."
    import faiss
    with _Timer() as t:
        index = faiss.IndexFlatIP(x.shape[1]); index.add(x); index.search(x, k1)
    return t

def child(impl, n, d, k1, k2, eps, min_samples, seed, labels_path, repeats=2, data_path=None):
    import numpy as np
    from sklearn.cluster import DBSCAN
    from usl_vireid_nb import cluster as C
    dbscan = lambda D: DBSCAN(eps=eps, min_samples=min_samples, metric='precomputed').fit_predict(D)
    warm = _data(300, d, seed + 1)                              # first calls pay one-off costs (threads, lazy imports)
    dbscan(C.compute_jaccard_distance(warm, k1, k2, eps)); dbscan(C._jaccard_loop(warm, k1, k2)[0])
    x = np.load(data_path) if data_path else _data(n, d, seed)  # np.load: no transient copies in the high-water mark
    res = dict(impl=impl, n=n, rss_base=_rss_now_gb(), rss_hwm_before=_rss_gb())
    if impl == 'ours':
        # ours then the kNN alone, `repeats` times; this box is shared and faiss's threads slow down badly when anything
        # else runs, so each run of ours is compared with the kNN run right after it and the median pair is reported.
        # Peak memory is read after the first run.
        pairs = []
        for rep in range(repeats):
            with _Timer() as tj: D = C.compute_jaccard_distance(x, k1=k1, k2=k2, max_dist=eps)
            if rep == 0: res['rss_jaccard'] = _rss_gb()
            with _Timer() as td: labels = dbscan(D)
            if rep == 0: res['rss_peak'] = _rss_gb(); res['nnz_per_row'] = D.nnz / n
            del D
            pairs.append((tj, td, _knn_only(x, k1)))
        pairs.sort(key=lambda p: (p[0].wall + p[1].wall) / p[2].wall)
        tj, td, tk = pairs[len(pairs) // 2]
        res.update(jaccard_s=tj.wall, dbscan_s=td.wall, cpu_s=tj.cpu + td.cpu, knn_only_s=tk.wall, knn_only_cpu_s=tk.cpu)
        res['all_pairs_s'] = [(round(a.wall + b.wall, 3), round(k.wall, 3)) for a, b, k in pairs]
    else:
        import faiss
        with _Timer() as tk:
            index = faiss.IndexFlatIP(x.shape[1]); index.add(x); _, rank = index.search(x, k1)
        with _Timer() as tj: D, _, _ = C._jaccard_loop(x, k1=k1, k2=k2, rank=rank)
        res['rss_jaccard'] = _rss_gb()
        with _Timer() as td: labels = dbscan(D)
        res['rss_peak'] = _rss_gb()
        res.update(knn_s=tk.wall, jaccard_s=tk.wall + tj.wall, dbscan_s=td.wall, cpu_s=tk.cpu + tj.cpu + td.cpu,
                   knn_cpu_s=tk.cpu)
    res['clusters'] = int(labels.max() + 1); res['outliers'] = int((labels < 0).sum())
    if labels_path: np.save(labels_path, labels)
    print(json.dumps(res))

def run_child(impl, n, args, tmp, timeout):
    lp = os.path.join(tmp, f'{impl}_{n}.npy')
    xp = os.path.join(tmp, f'x_{n}_{args.d}_{args.seed}.npy')
    if not os.path.exists(xp):   # written by a child: a child's ru_maxrss starts at its parent's, so the parent stays lean
        subprocess.run([sys.executable, os.path.abspath(__file__), '--child', 'data', '--sizes', str(n), '--d', str(args.d),
                        '--seed', str(args.seed), '--data', xp], check=True)
    cmd = [sys.executable, os.path.abspath(__file__), '--child', impl, '--sizes', str(n), '--d', str(args.d),
           '--k1', str(args.k1), '--k2', str(args.k2), '--eps', str(args.eps), '--min-samples', str(args.min_samples),
           '--seed', str(args.seed), '--labels', lp, '--repeats', str(args.repeats), '--data', xp]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(impl=impl, n=n, error=f'timed out after {timeout} s')
    if p.returncode != 0:
        return dict(impl=impl, n=n, error=f'exit {p.returncode}: {p.stderr.strip().splitlines()[-1:] }')
    res = json.loads(p.stdout.strip().splitlines()[-1]); res['labels'] = lp
    return res

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[2000, 10000, 34167])
    ap.add_argument('--d', type=int, default=768)
    ap.add_argument('--k1', type=int, default=30); ap.add_argument('--k2', type=int, default=6)
    ap.add_argument('--eps', type=float, default=0.6); ap.add_argument('--min-samples', type=int, default=4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--repeats', type=int, default=3, help='back-to-back runs of ours and of the kNN alone (median pair kept)')
    ap.add_argument('--naive-timeout', type=float, default=3600, help='seconds allowed to each dense reference run')
    ap.add_argument('--skip-naive', type=int, nargs='*', default=[], help='sizes at which the dense reference is skipped')
    ap.add_argument('--json', default=None, help='also write all results to this file')
    ap.add_argument('--naive-from', default=None, help='reuse the dense reference results of an earlier --json file')
    ap.add_argument('--labels-dir', default=None, help='keep each run\'s labels (.npy) here (default: a temporary folder)')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--labels', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--data', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == 'data':
        import numpy as np
        return np.save(args.data, _data(args.sizes[0], args.d, args.seed))
    if args.child:
        return child(args.child, args.sizes[0], args.d, args.k1, args.k2, args.eps, args.min_samples, args.seed, args.labels,
                     args.repeats, args.data)
    import numpy as np
    rows = []
    old = {}
    if args.naive_from:
        with open(args.naive_from) as fh: old = {r['n']: r['naive'] for r in json.load(fh)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.labels_dir or tmp
        os.makedirs(tmp, exist_ok=True)
        for n in args.sizes:
            ours = run_child('ours', n, args, tmp, None)
            print('ours ', json.dumps({k: v for k, v in ours.items() if k != 'labels'}), flush=True)
            naive = (dict(impl='naive', n=n, error='skipped') if n in args.skip_naive
                     else old[n] if n in old else run_child('naive', n, args, tmp, args.naive_timeout))
            print('naive', json.dumps({k: v for k, v in naive.items() if k != 'labels'}), flush=True)
            same = None
            if 'error' not in ours and 'error' not in naive and os.path.exists(naive.get('labels', '')):
                same = bool(np.array_equal(np.load(ours['labels']), np.load(naive['labels'])))
            rows.append((n, ours, naive, same))
    print('\nTimes in seconds as wall / CPU (user+system, all threads). This box is shared, so wall times of the '
          'multi-threaded kNN swing with the load; CPU times are steadier.\n')
    print('| N | kNN alone | ours (Jaccard + DBSCAN) | ours / kNN | ours - kNN | reference (dense loops) | reference - kNN | '
          'speed-up beyond kNN | peak GB: ours | peak GB: reference | same labels |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    f = lambda v, p=2: '-' if v is None else f'{v:.{p}f}'
    wc = lambda w, c, p=2: f'{f(w, p)} / {f(c, p)}'
    ratio = lambda a, b, p=2: f(a / b, p) if a is not None and b and a > 0 and b > 0 else 'n/a'
    def peak(res):   # the step's own high-water mark above its starting RSS ('<=' if an earlier one hides it)
        p = res['rss_peak'] - res['rss_base']
        return f"{'<= ' if res['rss_peak'] <= res.get('rss_hwm_before', 0) else ''}{p:.2f}"
    for n, o, r, same in rows:
        ok, rok = 'error' not in o, 'error' not in r
        tot, tot_c = (o['jaccard_s'] + o['dbscan_s'], o['cpu_s']) if ok else (None, None)
        knn, knn_c = (o['knn_only_s'], o['knn_only_cpu_s']) if ok else (None, None)
        rest, rest_c = (tot - knn, tot_c - knn_c) if ok else (None, None)
        rtot, rtot_c = (r['jaccard_s'] + r['dbscan_s'], r['cpu_s']) if rok else (None, None)
        rrest, rrest_c = (rtot - r['knn_s'], rtot_c - r['knn_cpu_s']) if rok else (None, None)
        print(f"| {n} | {wc(knn, knn_c)} | {wc(tot, tot_c) if ok else o['error']} | {ratio(tot, knn)} / {ratio(tot_c, knn_c)} | "
              f"{wc(rest, rest_c)} | {wc(rtot, rtot_c, 1) if rok else r['error']} | {wc(rrest, rrest_c, 1)} | "
              f"{ratio(rrest, rest, 0)}x / {ratio(rrest_c, rest_c, 0)}x | {peak(o) if ok else '-'} | "
              f"{peak(r) if rok else '-'} | {same if same is not None else '-'} |")
    print('\npeak GB = peak RSS (high-water mark) of the child process minus its RSS after imports, warm-up and data. "ours - kNN" subtracts faiss\'s '
          'plain search timed in the same process (so our tie handling counts as overhead); "reference - kNN" subtracts the '
          'search inside the reference run. Ours and the kNN alone: the median of --repeats back-to-back pairs.')
    if args.json:
        with open(args.json, 'w') as fh: json.dump([dict(n=n, ours=o, naive=r, same_labels=s) for n, o, r, s in rows], fh, indent=1)

if __name__ == '__main__':
    main()
