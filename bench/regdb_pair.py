"""RegDB, the paper's setting against TokenMatcher's recipe, on the synthetic set read through the RegDB reader.

The paper gives one setting for both of its data sets; TokenMatcher trains RegDB differently (chapter 10a's
`REGDB_TOKENMATCHER`: DBSCAN eps 0.2, memory momentum 0.8, neighbour weight 0.1, mate weight 0.01, its stage-2 options,
and one small learning rate over 35 + 35 epochs of 100 iterations). Both rows here run at the evidence scale of
chapter 13 (the demo backbone from scratch, 12 epochs of 40 iterations, Adam 3.5e-4): the learning rate and the epoch
counts of TokenMatcher's recipe belong to fine-tuning a pretrained ViT-B and are left out; every other key of the recipe
is applied. The data: `make_synthetic(..., regdb=True)` (one visible and one infrared camera, ten images per identity
and modality, as RegDB), trial 1, visible-to-infrared and infrared-to-visible.

    python bench/regdb_pair.py                                 # seeds 0 1 2 -> bench/results/regdb_pair.json
    python bench/regdb_pair.py --tiny --out /tmp/rp --json /tmp/rp/rp.json   # seconds: proves the script runs

Each run writes its own folder under --out (finished runs are reused). A measurement, not a test: every row reports its
last epoch, nothing is chosen on the test split.
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from usl_vireid_nb.config import PRE_REV3, REGDB_TOKENMATCHER, TrainConfig, apply_overrides, evidence, overrides_of, regdb, tiny
from usl_vireid_nb.synthetic import make_synthetic
from _machine import command, machine
from ablation_bench import run

SCALE_KEYS = ('lr', 'lr_phase2', 'epochs', 'phase2_start', 'iters')   # TokenMatcher's fine-tuning schedule: not transferred
DATA_KEYS = ('dataset', 'data_root', 'trial', 'eval_trials', 'regions', 'synth_train_ids', 'synth_test_ids', 'synth_images')
ROWS = {'paper': {}, 'tokenmatcher': {k: v for k, v in REGDB_TOKENMATCHER.items() if k not in SCALE_KEYS}}
METRICS = ('Rank-1', 'mAP', 'mINP')


def base_config(root, tiny_run: bool = False) -> TrainConfig:
    "The RegDB preset (trial 1, N = 6) with the evidence preset's schedule and sizes (or tiny()'s) and today's phase-2 forms."
    scale = tiny(epochs=2, eval_every=2) if tiny_run else evidence()
    skip = DATA_KEYS + tuple(PRE_REV3)               # the evidence preset pins Table 3's phase-2 forms: today's defaults here
    ov = [o for o in overrides_of(scale, TrainConfig()) if not o.startswith(tuple(k + '=' for k in skip))]
    extra = ['regions=4'] if tiny_run else []             # test_vit has 4 patch rows: too few for RegDB's N = 6
    return apply_overrides(regdb(root, trial=1), ov + extra + ['progress=false'])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--out', default='runs/regdb_pair')
    ap.add_argument('--json', default='bench/results/regdb_pair.json')
    ap.add_argument('--tiny', action='store_true', help="tiny() sizes: proves the script runs")
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    n_ids, n_test, n_img = (6, 4, 4) if a.tiny else (200, 48, 10)
    res = {'rows': {k: {'overrides': v, 'per_seed': {}, 'curves': {}} for k, v in ROWS.items()}, 'untrained': {},
           'machine': machine(), 'command': command(argv), 'tiny': a.tiny,
           'data': {'train_ids': n_ids, 'test_ids': n_test, 'images_per_id_and_modality': n_img, 'trial': 1}}
    t0 = time.time()
    for seed in a.seeds:
        root = make_synthetic(out/f'data_s{seed}', n_train_ids=n_ids, n_test_ids=n_test, n_images=1, seed=seed,
                              regdb=True, regdb_images=n_img)/'RegDB'
        base = apply_overrides(base_config(root, a.tiny), {'seed': seed})
        res['config'] = base.short()
        for name, ov in ROWS.items():
            r = run(apply_overrides(base, ov), out/f'{name}_s{seed}')
            res['rows'][name]['per_seed'][str(seed)] = {m: r['final'][m] for m in r['final']}
            log = json.loads((out/f'{name}_s{seed}'/'log.json').read_text())
            res['rows'][name]['curves'][str(seed)] = [[e['epoch'], e['Rank-1'], e['mAP']] for e in log if 'Rank-1' in e]
            res['untrained'].setdefault(name, {})[str(seed)] = r['untrained']
            res['seconds'] = time.time() - t0
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(res, indent=1))
    for name, row in res['rows'].items():
        for mode in ('v2i', 'i2v'):
            v = [s[mode]['Rank-1'] for s in row['per_seed'].values()]
            print(f"{name:<13} {mode} Rank-1 {np.mean(v):6.2f} ± {np.std(v):5.2f}  ({len(v)} seeds)")
    print(f"total {time.time() - t0:.0f}s -> {a.json}")


if __name__ == '__main__':
    main()
