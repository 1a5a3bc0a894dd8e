"""Which M3b prior the trainer defaults to (METHOD M3b: "keep the variant that gives the higher matching precision on the
synthetic set"): the matching precision of M14's links (all links, and pass 1) with no prior, with `'boost'` and with
`'restrict'` (chapter 10c's `plan_epoch` with each `joint_prior`, on the checkpoint's own labels), on the training states after the
synthetic preset's phase 1 (6 epochs), one per seed. Writes bench/results/joint_prior.json.

    python bench/joint_prior_bench.py                     # seeds 0 1 2, about 5 minutes on 2 cores
"""
import argparse, json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from usl_vireid_nb.analysis import state_from_checkpoint
from usl_vireid_nb.config import apply_overrides, synthetic
from usl_vireid_nb.epoch import Descriptors, plan_epoch
from usl_vireid_nb.trainer import Trainer
from usl_vireid_nb.vra import matching_precision
from _machine import command, machine


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value')
    ap.add_argument('--out', default='runs/joint_prior')
    ap.add_argument('--json', default='bench/results/joint_prior.json')
    a = ap.parse_args(argv)
    out, res = Path(a.out), {'machine': machine(), 'seeds': {},
                             'command': command(argv)}
    for seed in a.seeds:
        cfg = apply_overrides(synthetic(seed=seed, epochs=6, progress=False, data_root=str(out/'data')), a.set)
        run = out/f'phase1_s{seed}'
        if not (run/'results.json').is_file(): Trainer(cfg, run, log=lambda *x: None).fit()
        st = state_from_checkpoint(run/'checkpoint.pt')
        # the state's descriptors are already what clustering and matching see (camera-centred, the CA view for matching)
        d = Descriptors(st.z_v, st.match_v, st.z_r, np.zeros(len(st.y_v), np.int64), np.zeros(len(st.y_r), np.int64),
                        st.true_v, st.true_r)
        row, prec = {}, lambda L: matching_precision(L, st.y_v, st.true_v, st.y_r, st.true_r)
        for name in ('none', 'boost', 'restrict'):
            c = replace(cfg, joint_prior=name, cam_norm=False, phase2_start=1, camera_refine=False)
            plan = plan_epoch(d, c, 1, labels=(st.y_v, st.y_r))
            if plan.prior is not None: row.update(evidence_pairs=int((plan.prior > 0).sum()), cluster_pairs=int(plan.prior.numel()))
            row[name] = {'links': len(plan.links), 'precision': prec(plan.links),
                         'precision_pass1': prec(plan.links[plan.passes == 1])}
        res['seeds'][str(seed)] = row
        print(seed, json.dumps(row), flush=True)
    res['mean'] = {k: {m: float(np.mean([r[k][m] for r in res['seeds'].values()])) for m in ('precision', 'precision_pass1')}
                   for k in ('none', 'boost', 'restrict')}
    res['best'] = max(res['mean'], key=lambda k: res['mean'][k]['precision'])
    Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res['mean'], indent=1), '\nbest:', res['best'], '->', a.json)


if __name__ == '__main__':
    main()
