"""Which M3b prior the trainer defaults to (METHOD M3b: "keep the variant that gives the higher matching precision on the
synthetic set"): the matching precision of M14's links (all links, and pass 1) with no prior, with `'boost'` and with
`'restrict'` (chapter 11's `prior_similarity` over `joint_evidence`), on the training states after the synthetic
preset's phase 1 (6 epochs), one per seed. Writes bench/results/joint_prior.json.

    python bench/joint_prior_bench.py                     # seeds 0 1 2, about 5 minutes on 2 cores
"""
import argparse, json
from pathlib import Path

import numpy as np
import torch

from usl_vireid_nb.analysis import state_from_checkpoint
from usl_vireid_nb.config import apply_overrides, synthetic
from usl_vireid_nb.trainer import Trainer, joint_evidence, prior_similarity
from usl_vireid_nb.vra import cluster_similarity, matching_precision, vra_match
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
        P = joint_evidence(st.z_v, st.z_r, st.y_v, st.y_r, cfg)
        row = {'evidence_pairs': int((P > 0).sum()), 'cluster_pairs': int(P.numel())}
        for name, sim in (('none', cluster_similarity), ('boost', prior_similarity(cluster_similarity, P, 'boost', cfg.joint_boost)),
                          ('restrict', prior_similarity(cluster_similarity, P, 'restrict'))):
            links, passes = vra_match(sim(st.match_v, torch.as_tensor(st.y_v), st.z_r, torch.as_tensor(st.y_r)), mu=cfg.mu,
                                      pass2=cfg.vra_pass2, return_pass=True)
            prec = lambda L: matching_precision(L, st.y_v, st.true_v, st.y_r, st.true_r)
            row[name] = {'links': len(links), 'precision': prec(links), 'precision_pass1': prec(links[passes == 1])}
        res['seeds'][str(seed)] = row
        print(seed, json.dumps(row), flush=True)
    res['mean'] = {k: {m: float(np.mean([r[k][m] for r in res['seeds'].values()])) for m in ('precision', 'precision_pass1')}
                   for k in ('none', 'boost', 'restrict')}
    res['best'] = max(res['mean'], key=lambda k: res['mean'][k]['precision'])
    Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res['mean'], indent=1), '\nbest:', res['best'], '->', a.json)


if __name__ == '__main__':
    main()
