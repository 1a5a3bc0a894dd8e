"""The default demo in fp32 and in bf16 autocast (`amp=off` vs `amp=auto`), side by side, seed by seed.

Runs `usl-vireid-train`'s default (the synthetic preset, chapter 13) for each seed twice, alternating fp32 and bf16 so
that a change in machine load hits both alike, and writes bench/results/amp.json: per seed the wall time of the whole
run (data generation excluded: one set is made first and shared) and the final all-search / indoor metrics, plus the
means, the bf16/fp32 time ratio (issue 17's goal: <= 0.8 on a CPU with native bf16) and the metric differences against
the seeds' spread. On a CPU without native bf16 `amp=auto` is fp32 and the script says so.

    python bench/amp_bench.py                       # seeds 0 1 2, about 20 minutes on 2 cores
    python bench/amp_bench.py --seeds 0 --set epochs=2 phase2_start=2 --out /tmp/amp   # a quick look
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from usl_vireid_nb.config import apply_overrides, synthetic
from usl_vireid_nb.runtime import amp_dtype
from usl_vireid_nb.synthetic import make_synthetic
from usl_vireid_nb.trainer import Trainer
from _machine import command, machine

METRICS = ('Rank-1', 'mAP', 'mINP')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value for every run')
    ap.add_argument('--out', default='runs/amp_bench')
    ap.add_argument('--json', default='bench/results/amp.json')
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    base = apply_overrides(synthetic(progress=False, data_root=str(out/'data')), a.set)
    make_synthetic(out/'data', n_train_ids=base.synth_train_ids, n_test_ids=base.synth_test_ids,
                   n_images=base.synth_images, seed=base.seed)
    res = {'config': base.short(), 'machine': machine(), 'bf16_dtype': str(amp_dtype(base, 'cpu')), 'runs': {},
           'command': command(argv)}
    for seed in a.seeds:
        for amp in (('off', 'auto') if seed % 2 == 0 else ('auto', 'off')):      # alternate which goes first
            cfg = apply_overrides(base, {'seed': seed, 'amp': amp})
            t = time.time()
            r = Trainer(cfg, out/f'{amp}_s{seed}', log=lambda *x: None).fit()
            row = {'seconds': time.time() - t, **{m: r['final'][m] for m in r['final']}}
            res['runs'].setdefault(amp, {})[str(seed)] = row
            print(f"seed {seed} amp={amp}: {row['seconds']:.0f}s  all R1 {row['all']['Rank-1']:.1f} mAP {row['all']['mAP']:.1f}",
                  flush=True)
    runs = res['runs']
    mean = lambda amp, f: float(np.mean([f(r) for r in runs[amp].values()]))
    std = lambda amp, f: float(np.std([f(r) for r in runs[amp].values()]))
    res['summary'] = {amp: {'seconds': mean(amp, lambda r: r['seconds']),
                            **{f'all {k}': [mean(amp, lambda r, k=k: r['all'][k]), std(amp, lambda r, k=k: r['all'][k])]
                               for k in METRICS}} for amp in runs}
    res['time_ratio_bf16_over_fp32'] = res['summary']['auto']['seconds'] / res['summary']['off']['seconds']
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res['summary'], indent=1), f"\nbf16 / fp32 wall time: {res['time_ratio_bf16_over_fp32']:.2f} -> {a.json}")


if __name__ == '__main__':
    main()
