"""Table 3 of the paper on the synthetic set: untrained, phase 1 only, the full method, and the full method with each of
PA-CBAM, VRA, VRNL, UM removed; Rank-1 / mAP / mINP (SYSU-style all-search and indoor), mean +- std over seeds.

A measurement, not a test. Phase 1 (epochs 1 .. phase2_start-1) is the same computation for `full`, `no_vra`,
`no_vrnl`, `no_um`, `no_phase2_terms` and `phase1_only` (their switches act in phase 2 only), so per seed it runs once and each of these
variants continues from its checkpoint (`Trainer.fit(resume=True)` with the variant's config: the same numbers as a run
from scratch, since resuming is exact). `no_pacbam` changes the model and runs from scratch; `untrained` is the epoch-0
evaluation that every run makes. `no_phase2_terms` is the control for the schedule: phase 2's learning rate with none of
VRA, VRNL, UM, so `full` against it measures the three modules, not the learning-rate drop; with `lr_phase2=1` (the
synthetic preset) it is the same computation as `phase1_only` and is left out unless named in --only.

    python bench/ablation_bench.py                                  # everything, seeds 0 1 2
    python bench/ablation_bench.py --seeds 0 --set epochs=6 phase2_start=4 iters=20 --out runs/ablation_short
    python bench/ablation_bench.py --only full phase1_only
    python bench/ablation_bench.py --only oracle_links              # the bound: VRA links from the true identities

Each variant writes its own folder under --out (results.json, log.csv, curves.png); the summary goes to
<out>/ablation.json and is printed as a table. Variants that already have results.json are reused (resumable).
"""
import argparse, json, shutil, time
from pathlib import Path

import numpy as np

import torch
from usl_vireid_nb.config import apply_overrides, synthetic
from usl_vireid_nb.trainer import Trainer, prepare_data
from usl_vireid_nb.vra import cluster_similarity, majority_identity

# variant -> overrides of the base config; SHARED variants branch off the common phase-1 checkpoint
VARIANTS = {
    'phase1_only': lambda c: {'phase2_start': c.epochs + 1},
    'full': lambda c: {},
    'no_pacbam': lambda c: {'use_pacbam': False},
    'no_vra': lambda c: {'use_vra': False},
    'no_vrnl': lambda c: {'use_vrnl': False},
    'no_um': lambda c: {'use_um': False},
    'no_phase2_terms': lambda c: {'use_vra': False, 'use_vrnl': False, 'use_um': False},  # phase 2's lr, no VRA/VRNL/UM
    'oracle_links': lambda c: {},   # full, but VRA links from the true identities (a bound, opt-in: --only oracle_links)
}
SHARED = ('phase1_only', 'full', 'no_vra', 'no_vrnl', 'no_um', 'no_phase2_terms', 'oracle_links')
OPT_IN = ('oracle_links',)
METRICS = ('Rank-1', 'mAP', 'mINP')


def quiet(*_): pass


def run_variant(cfg, folder, start=None) -> dict:
    "results.json of `cfg` in `folder`, continuing from the checkpoint file `start` when given (reused if present)."
    folder = Path(folder)
    if (folder/'results.json').is_file(): return json.loads((folder/'results.json').read_text())
    if start is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(start, folder/'checkpoint.pt')
    t = time.time()
    sim = cluster_similarity
    if folder.name.startswith('oracle_links'):
        _, vis, ir = prepare_data(cfg, folder)
        sim = oracle_similarity(np.array([r.pid for r in vis]), np.array([r.pid for r in ir]))
    tr = Trainer(cfg, folder, log=quiet, similarity=sim)
    res = tr.fit(resume=start is not None)
    print(f"  {folder.name}: {time.time() - t:.0f}s  all-search R1 {res['final']['all']['Rank-1']:.1f} "
          f"mAP {res['final']['all']['mAP']:.1f}", flush=True)
    return res


def oracle_similarity(true_v, true_r):
    """A cluster similarity that links clusters by the truth: S[i, j] = 1 where visible cluster i and infrared cluster j
    have the same majority identity (plus 0.01 x the real similarity to order the rest), so `vra_match` gets the right
    partners. A diagnostic bound on what better matching could buy, never a method: it reads the labels training must
    not see. Passed to the trainer as its `similarity` (stage 5 of chapter 11)."""
    def truth(f_v, y_v, f_r, y_r):
        mv, mr = majority_identity(np.asarray(y_v), true_v), majority_identity(np.asarray(y_r), true_r)
        return torch.as_tensor((mv[:, None] == mr[None, :]).astype(np.float32)) + 0.01 * cluster_similarity(f_v, y_v, f_r, y_r)
    return truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--only', nargs='*', default=None, choices=list(VARIANTS),
                    help='variants to run (default: all; no_phase2_terms only when lr_phase2 != 1, else it is phase1_only)')
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value for every run')
    ap.add_argument('--out', default='runs/ablation')
    ap.add_argument('--data_root', default=None, help='an existing synthetic set (default: <out>/data/synthetic)')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    base = apply_overrides(synthetic(progress=False), a.set)
    base = apply_overrides(base, {'data_root': a.data_root or str(out/'data'/'synthetic')})
    if a.only is None: a.only = [v for v in VARIANTS if v not in OPT_IN and (v != 'no_phase2_terms' or base.lr_phase2 != 1.0)]
    summary = {'settings': {'seeds': a.seeds, 'overrides': a.set, 'base': base.short()}, 'runs': {}}
    old = json.loads((out/'ablation.json').read_text()) if (out/'ablation.json').is_file() else {}
    if old.get('settings') == summary['settings']:       # same experiment: keep the variants this call does not run
        summary['runs'] = {k: v for k, v in old['runs'].items() if k not in a.only}
        summary['runs'].pop('untrained', None)
    t0 = time.time()
    for seed in a.seeds:
        print(f"seed {seed}", flush=True)
        cfg = apply_overrides(base, {'seed': seed})
        start = None
        if any(v in SHARED for v in a.only) and cfg.phase2_start > 1:
            p1 = apply_overrides(cfg, {'epochs': min(cfg.phase2_start - 1, cfg.epochs)})
            run_variant(p1, out/f'phase1_s{seed}')
            start = out/f'phase1_s{seed}'/'checkpoint.pt'
        for name in a.only:
            vcfg = apply_overrides(cfg, VARIANTS[name](cfg))
            res = run_variant(vcfg, out/f'{name}_s{seed}', start if name in SHARED else None)
            if 'untrained' not in summary['runs'] or len(summary['runs']['untrained']) <= a.seeds.index(seed):
                summary['runs'].setdefault('untrained', []).append(res['untrained'])
            summary['runs'].setdefault(name, []).append(res['final'])
            summary['seconds'] = time.time() - t0
            (out/'ablation.json').write_text(json.dumps(summary, indent=1))
    print(table(summary))
    print(f"total {time.time() - t0:.0f}s")


def table(summary) -> str:
    "Mean +- std over seeds per variant (rows) and mode x metric (columns)."
    modes = ['all', 'indoor']
    lines = [f"{'variant':<13}" + ''.join(f"{m + ' ' + k:>15}" for m in modes for k in METRICS) + '  n']
    order = ['untrained'] + [v for v in VARIANTS if v in summary['runs']]
    for name in order:
        runs = summary['runs'][name]
        cells = [f"{np.mean([r[m][k] for r in runs]):8.2f}±{np.std([r[m][k] for r in runs]):4.1f}"
                 for m in modes for k in METRICS]
        lines.append(f"{name:<13}" + ''.join(f"{c:>15}" for c in cells) + f"  {len(runs)}")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
