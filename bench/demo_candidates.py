"""How the demo's width, schedule and batch were chosen (issue 24): candidates trained on *validation* draws of the synthetic set.

The synthetic set is drawn from the run's seed, so seeds 100 and up give other people, cameras and images than the
seeds 0, 1, 2 that `bench/demo_speed.py` reports; choosing here keeps the test seeds out of the choice. Each candidate
is a set of overrides of the demo as it was before round 1 (`BASE`: the 'demo' ViT at width 192, 12 epochs of 40
iterations, P x K = 4 x 4), trained in fp32 (`amp=off`), and scored by its Rank-1 gain over its own untrained model,
paired draw by draw with its round's incumbent (the demo when the round began). `ROUNDS` lists what each round compared
and what it chose, and why. The time each run took is recorded too, but the runs were made two at a time on one thread
each; what a candidate costs is modelled instead, after the training, on this machine: one epoch's preparation
(`Trainer.prepare_epoch`) and its training steps (`Trainer.train_step`), every candidate timed in turn, four passes
round, each keeping its median, scaled to its schedule (`cost`, and `cost_vs_incumbent` per round). `demo_speed.py`
times the chosen demo's whole run.

    python bench/demo_candidates.py                                   # every round (~2 h at 2 runs of 1 thread), then the costs
    python bench/demo_candidates.py --rounds 2 --only P_d128_i40 --seeds 100 --cost-steps 0   # one run, no cost
    python bench/demo_candidates.py --tiny --out /tmp/dc --json /tmp/dc/dc.json   # seconds: proves the script runs

Each run writes its own folder under --out; a finished run whose stored config equals the candidate's is reused.
"""
import argparse, json, time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from usl_vireid_nb.config import TrainConfig, apply_overrides, overrides_of, synthetic, tiny
from usl_vireid_nb.trainer import Trainer, pk_loaders
from _machine import command, machine

BASE = dict(embed_dim=None, num_heads=None,   # the demo before round 1: the 'demo' preset's ViT (width 192, 3 heads),
            epochs=12, phase2_start=7, iters=40, batch_ids=4, num_instances=4, eval_every=12)   # 12 x 40, 4 x 4
E10 = dict(epochs=10, phase2_start=6, eval_every=10)
D128 = dict(embed_dim=128, num_heads=4)
CANDIDATES = {
    'A_default': {},
    'B_i32_cos': dict(iters=32, lr_schedule='cosine'),
    'C_i32': dict(iters=32),
    'H_i28': dict(iters=28),
    'F_e10_i36': dict(E10, iters=36),
    'I_e10_i32': dict(E10, iters=32),
    'K_e10_i32_lr5': dict(E10, iters=32, lr=5e-4, maal_lr=5e-4),
    'L_e10_i32_8x2': dict(E10, iters=32, batch_ids=8, num_instances=2),
    'M_e10_i32_p5': dict(E10, iters=32, phase2_start=5),
    # round 2: a narrower ViT (width 128, 4 heads: cheaper steps and descriptions, `cost` in the JSON) and the images it frees
    'N_d128_e10_i32_8x2': dict(E10, iters=32, batch_ids=8, num_instances=2, **D128),
    'O_d128_i40_8x2': dict(batch_ids=8, num_instances=2, **D128),
    'P_d128_i40': dict(D128),
    'Q_d128_i48': dict(iters=48, **D128),
    'R_d96_i40': dict(embed_dim=96, num_heads=3),
    'S_d128_e14_i40': dict(epochs=14, phase2_start=8, eval_every=14, **D128),
}
# Each round: the candidates it compares, on which validation seeds, and what it chose (the first name is the round's
# incumbent, the demo when the round began). Round 2 came after issue 24's profile: the step's matrix products are
# the time, so a narrower ViT buys images.
ROUNDS = {
    '1': dict(names=['A_default', 'B_i32_cos', 'C_i32', 'H_i28', 'F_e10_i36', 'I_e10_i32', 'K_e10_i32_lr5',
                     'L_e10_i32_8x2', 'M_e10_i32_p5'], seeds=[100, 101], chosen='L_e10_i32_8x2',
              why="the fewest trained images and epochs among the candidates, its mean gain within the seeds' noise of "
                  "the best (the two validation draws alone differ by more than 10 points for every candidate)"),
    '2': dict(names=['L_e10_i32_8x2', 'N_d128_e10_i32_8x2', 'O_d128_i40_8x2', 'P_d128_i40', 'Q_d128_i48', 'R_d96_i40',
                     'S_d128_e14_i40'], seeds=[100, 101, 102, 103], chosen='P_d128_i40',
              why="the best mean gain among the candidates that cost no more than the incumbent, a tie within one point "
                  "going to the cheaper: P, Q and S are within one point of each other (Q and S train 20% and 17% more); "
                  "P is higher than the incumbent on every validation draw at less than its cost"),
}
SKIP = ('data_root', 'progress')   # keys a reused run may differ in
TINY_KEEPS = ('epochs', 'phase2_start', 'eval_every', 'iters', 'batch_ids', 'num_instances', 'embed_dim', 'num_heads', 'depth')   # --tiny keeps tiny()'s


def candidate(name: str, seed: int, out: Path, tiny_run: bool = False):
    "The config of candidate `name` for `seed`, its synthetic set drawn from the seed under `out`."
    base = apply_overrides(synthetic(progress=False, amp='off'), BASE)
    if tiny_run: base = apply_overrides(base, overrides_of(tiny(epochs=2, eval_every=2), synthetic()))
    ov = {k: v for k, v in CANDIDATES[name].items() if not (tiny_run and k in TINY_KEEPS)}
    return apply_overrides(base, {**ov, 'seed': seed, 'data_root': str(out/f'data_s{seed}')})


def run(cfg, folder: Path) -> dict:
    "Train `cfg` into `folder`, or reuse the finished run there when its config is the same; the run's results."
    res = folder/'results.json'
    if res.is_file():
        r = json.loads(res.read_text())
        stored = asdict(TrainConfig.from_json(json.dumps(r['config'])))    # a run of an older version: its fields' defaults
        if {k: v for k, v in stored.items() if k not in SKIP} == {k: v for k, v in asdict(cfg).items() if k not in SKIP}:
            return r
    return Trainer(cfg, folder, log=lambda *x: None).fit()


def modelled_costs(cfgs: dict, out: Path, steps: int, passes: int = 4) -> dict:
    """Each candidate's training time modelled from the trainer's own stages, timed on this machine: one epoch's
    preparation (`prepare_epoch`: describe, plan, build) and its training steps, scaled to its schedule. The candidates
    are timed in turn, `passes` times round (`steps` steps each time), and each keeps its median: a slow spell of a
    shared machine falls on all of them alike instead of on whichever ran then."""
    setups = {}
    for name, cfg in cfgs.items():
        tr = Trainer(cfg, out/f'cost_{name}', log=lambda *x: None)
        tr.recalibrate()
        st = tr.prepare_epoch(1)                          # the first description fills the caches: not timed
        lds = pk_loaders(tr.views, st, apply_overrides(cfg, {'iters': passes * steps + 1}))   # its batches, enough of them
        its = [iter(l) if l is not None else None for l in (lds['v'], lds['r'])]
        tr.train_step(st, *(next(i) if i is not None else None for i in its))   # warm-up
        setups[name] = (tr, st, its)                      # steps keep the batches' own epoch state
    prep, step = {n: [] for n in cfgs}, {n: [] for n in cfgs}
    for _ in range(passes):
        for name, (tr, st, its) in setups.items():
            t0 = time.perf_counter(); tr.prepare_epoch(1); prep[name].append(time.perf_counter() - t0)
            for _ in range(steps):
                bv, br = (next(i) if i is not None else None for i in its)
                t0 = time.perf_counter(); tr.train_step(st, bv, br); step[name].append(time.perf_counter() - t0)
    res = {}
    for name, cfg in cfgs.items():
        p, s = float(np.median(prep[name])), float(np.median(step[name]))
        res[name] = {'prepare_s': p, 'step_s': s, 'modelled_s': cfg.epochs * (p + cfg.iters * s), 'passes': passes,
                     'steps_per_pass': steps}
    return res


def summarise(rnd: dict, names: list, seeds: list, runs: dict, cost: dict) -> dict:
    "Mean gain per candidate on the round's seeds, paired with the round's incumbent (its first name), and the cost ratio."
    inc = rnd['names'][0]
    out = {}
    for n in names:
        g = [runs[n][str(s)]['gain'] for s in seeds]
        row = {'gain': float(np.mean(g)), 'per_seed': g, 'trained_images': runs[n][str(seeds[0])]['images_per_epoch'] *
               runs[n][str(seeds[0])]['epochs'], 'described_epochs': runs[n][str(seeds[0])]['epochs']}
        if inc in names:
            d = [a - runs[inc][str(s)]['gain'] for a, s in zip(g, seeds)]
            row.update(paired_vs_incumbent=float(np.mean(d)), higher_than_incumbent=int(sum(x > 0 for x in d)))
        if n in cost and inc in cost: row['cost_vs_incumbent'] = cost[n]['modelled_s'] / cost[inc]['modelled_s']
        out[n] = row
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', nargs='*', default=list(ROUNDS), help=f"rounds to run (default: all of {', '.join(ROUNDS)})")
    ap.add_argument('--seeds', type=int, nargs='*', default=None, help="validation seeds (default: each round's)")
    ap.add_argument('--only', nargs='*', default=None, help=f"candidates (default: each round's; all: {', '.join(CANDIDATES)})")
    ap.add_argument('--cost-steps', type=int, default=6, help="training steps timed per candidate and pass (4 passes) for its modelled cost (0: none)")
    ap.add_argument('--out', default='runs/demo_candidates')
    ap.add_argument('--json', default='bench/results/demo_candidates.json')
    ap.add_argument('--tiny', action='store_true', help="tiny() sizes: proves the script runs")
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    unknown = [n for n in (a.only or []) if n not in CANDIDATES] + [r for r in a.rounds if r not in ROUNDS]
    if unknown: ap.error(f"unknown candidate(s) or round(s) {', '.join(unknown)}; candidates: {', '.join(CANDIDATES)}; "
                         f"rounds: {', '.join(ROUNDS)}")
    plan = {}                                             # round -> (names, seeds) selected
    for r in a.rounds:
        names = [n for n in ROUNDS[r]['names'] if a.only is None or n in a.only]
        seeds = a.seeds if a.seeds is not None else ROUNDS[r]['seeds']
        if names and seeds: plan[r] = (names, seeds)
    every = list(dict.fromkeys(n for names, _ in plan.values() for n in names))
    res = {'base': BASE, 'candidates': {n: CANDIDATES[n] for n in every}, 'machine': machine(), 'command': command(argv),
           'tiny': a.tiny, 'runs': {}, 'cost': {}, 'rounds': {}}
    for names, seeds in plan.values():
        for name in names:
            for seed in seeds:
                if str(seed) in res['runs'].get(name, {}): continue
                cfg = candidate(name, seed, out, a.tiny)
                r = run(cfg, out/f'{name}_s{seed}')
                u, f = r['untrained']['all'], r['final']['all']
                res['runs'].setdefault(name, {})[str(seed)] = {
                    'untrained Rank-1': u['Rank-1'], 'Rank-1': f['Rank-1'], 'mAP': f['mAP'], 'gain': f['Rank-1'] - u['Rank-1'],
                    'seconds': r['time_s'], 'images_per_epoch': 3 * cfg.batch_size * cfg.iters, 'epochs': cfg.epochs}
                print(f"{name:<18} seed {seed}: Rank-1 {u['Rank-1']:.1f} -> {f['Rank-1']:.1f} "
                      f"(gain {f['Rank-1'] - u['Rank-1']:+.1f})", flush=True)
    if a.cost_steps > 0:                                  # side by side, after the training: on a quiet machine
        seed = next(iter(plan.values()))[1][0]
        res['cost'] = modelled_costs({n: candidate(n, seed, out, a.tiny) for n in every}, out, a.cost_steps)
        for name in every:
            print(f"{name:<18} modelled {res['cost'][name]['modelled_s']:.0f} s (step {res['cost'][name]['step_s'] * 1e3:.0f} ms, "
                  f"epoch preparation {res['cost'][name]['prepare_s']:.1f} s)", flush=True)
    for r, (names, seeds) in plan.items():
        rnd = ROUNDS[r]
        res['rounds'][r] = {'names': names, 'seeds': seeds, 'incumbent': rnd['names'][0],
                            'summary': summarise(rnd, names, seeds, res['runs'], res['cost'])}
        if rnd['chosen'] in names:
            gains = {n: s['gain'] for n, s in res['rounds'][r]['summary'].items()}
            res['rounds'][r]['chosen'] = {'name': rnd['chosen'], 'gain': gains[rnd['chosen']], 'best_gain': max(gains.values()),
                                          'why': rnd['why']}
        print(f"round {r} (seeds {', '.join(map(str, seeds))}; incumbent {rnd['names'][0]}):")
        for n, s in sorted(res['rounds'][r]['summary'].items(), key=lambda kv: -kv[1]['gain']):
            print(f"  {n:<18} gain {s['gain']:+6.1f}   paired {s.get('paired_vs_incumbent', float('nan')):+5.1f} "
                  f"({s.get('higher_than_incumbent', '-')}/{len(seeds)})   cost x{s.get('cost_vs_incumbent', float('nan')):.2f}"
                  f"   trained images {s['trained_images']:>6}")
    last = [r for r in res['rounds'] if 'chosen' in res['rounds'][r]]
    if last: res['chosen'] = res['rounds'][last[-1]]['chosen']   # the demo today: the last round's choice
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(f"-> {a.json}")


if __name__ == '__main__':
    main()
