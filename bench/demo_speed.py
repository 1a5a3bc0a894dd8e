"""The main job's speed (issue 24): the default demo against the demo it replaced, side by side, seed by seed.

`usl-vireid-train --out runs/demo` trains `config.synthetic()`. This script trains it and the previous demo (`PREVIOUS`:
the same preset with the schedule it had before) for each seed, alternating which goes first so that a change in the
machine's load hits both alike, in fp32 (`amp=off`: what every CPU without native bf16 runs) and, on a CPU with native
bf16, the default once more with `amp=auto`. It writes bench/results/demo_speed.json: per run the wall time of the
training (`Trainer.fit`: the untrained model's evaluation, the epochs, the final evaluation; the seed's synthetic set
is made before any clock starts and shared by the seed's runs), the untrained and final Rank-1, mAP, mINP and
the gain; per preset the means; the fp32 time ratio previous / default measured in this run; the CPU's features
(detected, never assumed); and, labelled as a projection, the default's fp32 time on the slower CPU where the previous
demo was timed (`SLOW_CPU`), from that measurement and this run's ratio.

    python bench/demo_speed.py                          # seeds 0 1 2, about 20 minutes on 2 cores
    python bench/demo_speed.py --seeds 0 --set epochs=2 phase2_start=2 --out /tmp/ds   # a quick look
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from usl_vireid_nb.config import PRE_REV3, apply_overrides, synthetic
from usl_vireid_nb.epoch import MEMO_BYTES
from usl_vireid_nb.runtime import cpu_flags, cpu_has_bf16
from usl_vireid_nb.synthetic import make_synthetic
from usl_vireid_nb.trainer import Trainer
from _machine import command, machine

METRICS = ('Rank-1', 'mAP', 'mINP')
# the demo before issue 24: the 'demo' backbone preset's width (192, 3 heads), 12 epochs (6 + 6) of 40 iterations with
# P x K = 4 x 8 per modality, evaluated after epochs 4, 8 and 12, and revision 2's phase-2 forms (config.PRE_REV3); it
# runs without the kept test-time views
PREVIOUS = dict(embed_dim=None, num_heads=None, epochs=12, phase2_start=7, iters=40, batch_ids=4, num_instances=8, eval_every=4)
# where the previous demo was timed on a CPU without bf16: issue 24's measurement (a fresh clone, a quiet machine)
SLOW_CPU = {'cpu': 'AMD EPYC, Zen 1 (AVX2, no AVX-512, no native bf16), 2 cores', 'previous_demo_s': 645,
            'source': 'issue 24 (the README main job timed from a fresh clone: 645 s of training)'}
FEATURES = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'fma')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value for every run')
    ap.add_argument('--previous', nargs='*', default=None, help='the previous demo as overrides of the default '
                    f'(default: {" ".join(f"{k}={v}" for k, v in PREVIOUS.items())} and revision 2\'s phase-2 forms)')
    ap.add_argument('--out', default='runs/demo_speed')
    ap.add_argument('--json', default='bench/results/demo_speed.json')
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    default = apply_overrides(synthetic(progress=False), a.set)
    prev_ov = a.previous if a.previous is not None else {**PREVIOUS, **PRE_REV3}
    previous = apply_overrides(default, prev_ov)
    flags = cpu_flags()
    bf16 = cpu_has_bf16(flags)
    res = {'default': default.short(), 'previous_overrides': prev_ov, 'machine': machine(),
           'previous_code': ("run without the kept test-time views (chapter 10c, memo_bytes=0), as it ran; its evaluations "
                             "share encoded test images across modes as today's do, a saving it did not have then, so the "
                             "measured ratio errs low"),
           'cpu_features': {f: f in flags for f in FEATURES}, 'native_bf16': bf16, 'runs': {}, 'command': command(argv)}
    kinds = [('previous', previous, 'off'), ('default', default, 'off')] + ([('default_bf16', default, 'auto')] if bf16 else [])
    for seed in a.seeds:
        data = out/f'data_s{seed}'                    # the synthetic set is drawn from the seed: made before any clock
        make_synthetic(data, n_train_ids=default.synth_train_ids, n_test_ids=default.synth_test_ids,
                       n_images=default.synth_images, seed=seed)
        order = kinds if seed % 2 == 0 else [kinds[1], kinds[0], *kinds[2:]]
        for name, cfg, amp in order:
            cfg = apply_overrides(cfg, {'seed': seed, 'amp': amp, 'data_root': str(data)})
            # the previous demo as it ran: no test-time views kept between epochs (10c's MEMO_BYTES came with this issue)
            tr = Trainer(cfg, out/f'{name}_s{seed}', log=lambda *x: None, memo_bytes=0 if name == 'previous' else MEMO_BYTES)
            t = time.time()
            r = tr.fit()
            row = {'seconds': time.time() - t, 'untrained': r['untrained']['all'], **{m: r['final'][m] for m in r['final']}}
            row['gain_rank1'] = row['all']['Rank-1'] - row['untrained']['Rank-1']
            res['runs'].setdefault(name, {})[str(seed)] = row
            print(f"seed {seed} {name}: {row['seconds']:.0f}s  all R1 {row['untrained']['Rank-1']:.1f} -> "
                  f"{row['all']['Rank-1']:.1f} (gain {row['gain_rank1']:+.1f}) mAP {row['all']['mAP']:.1f}", flush=True)
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(res, indent=1))
    runs = res['runs']
    mean = lambda k, f: float(np.mean([f(r) for r in runs[k].values()]))
    res['summary'] = {k: {'seconds': mean(k, lambda r: r['seconds']), 'gain_rank1': mean(k, lambda r: r['gain_rank1']),
                          'gain_rank1_min': float(min(r['gain_rank1'] for r in runs[k].values())),
                          **{f'all {m}': mean(k, lambda r, m=m: r['all'][m]) for m in METRICS}} for k in runs}
    ratio = res['summary']['previous']['seconds'] / res['summary']['default']['seconds']
    res['speedup_fp32_previous_over_default'] = ratio
    res['projection'] = {**SLOW_CPU, 'default_demo_s_projected': SLOW_CPU['previous_demo_s'] / ratio,
                         'how': 'previous_demo_s / speedup_fp32_previous_over_default (this run\'s fp32 ratio)'}
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res['summary'], indent=1))
    print(f"fp32 speed-up of the default over the previous demo: {ratio:.2f}x; projected on the slow CPU: "
          f"{res['projection']['default_demo_s_projected']:.0f} s -> {a.json}")


if __name__ == '__main__':
    main()
