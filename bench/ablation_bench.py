"""Table 3 of the paper on the synthetic set: untrained, phase 1 only, the full method, and the full method with each of
PA-CBAM, VRA, VRNL, UM removed; Rank-1 / mAP / mINP (SYSU-style all-search and indoor), mean over seeds.

A measurement, not a test. The full setting (3 seeds x 7 variants x the default 12-epoch schedule) takes hours on two CPU
cores; shorten it with overrides and fewer seeds:

    python bench/ablation_bench.py                                  # everything, 3 seeds
    python bench/ablation_bench.py --seeds 0 --set epochs=6 phase2_start=4 iters=20 --out runs/ablation_short
    python bench/ablation_bench.py --only full no_vra

Each run is a `Trainer` in its own folder under --out (results.json, log.csv, curves.png); the summary goes to
<out>/ablation.json and is printed as a table. Runs that already have results.json are reused (resumable).
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from usl_vireid_nb.trainer import Trainer, apply_overrides, synthetic

VARIANTS = {
    'untrained': lambda c: {'epochs': 0},
    'phase1_only': lambda c: {'phase2_start': c.epochs + 1},
    'full': lambda c: {},
    'no_pacbam': lambda c: {'use_pacbam': False},
    'no_vra': lambda c: {'use_vra': False},
    'no_vrnl': lambda c: {'use_vrnl': False},
    'no_um': lambda c: {'use_um': False},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--only', nargs='*', default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value for every run')
    ap.add_argument('--out', default='runs/ablation')
    ap.add_argument('--data_root', default=None, help='an existing synthetic set (default: <out>/data/synthetic)')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    base = apply_overrides(synthetic(progress=False), a.set)
    base = apply_overrides(base, {'data_root': a.data_root or str(out/'data'/'synthetic')})
    summary = {'settings': {'seeds': a.seeds, 'overrides': a.set, 'base': base.short()}, 'runs': {}}
    for name in a.only:
        for seed in a.seeds:
            cfg = apply_overrides(base, {**VARIANTS[name](base), 'seed': seed})
            run = out/f'{name}_s{seed}'
            if (run/'results.json').is_file(): res = json.loads((run/'results.json').read_text())
            else:
                t = time.time()
                res = Trainer(cfg, run, log=lambda *x: None).fit()
                print(f"{name} seed {seed}: {time.time() - t:.0f}s", flush=True)
            summary['runs'].setdefault(name, []).append(res['final'])
            (out/'ablation.json').write_text(json.dumps(summary, indent=1))
    print(table(summary))


def table(summary) -> str:
    modes = ['all', 'indoor']
    lines = [f"{'variant':<13}" + ''.join(f"{m + ' ' + k:>14}" for m in modes for k in ('Rank-1', 'mAP', 'mINP')) + '  n']
    for name, runs in summary['runs'].items():
        cells = []
        for m in modes:
            for k in ('Rank-1', 'mAP', 'mINP'):
                v = [r[m][k] for r in runs]
                cells.append(f"{np.mean(v):8.2f}±{np.std(v):4.1f}")
        lines.append(f"{name:<13}" + ''.join(f"{c:>14}" for c in cells) + f"  {len(runs)}")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
