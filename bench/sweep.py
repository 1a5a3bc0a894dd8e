"""The paper's Figure 6: hyper-parameter sweeps over alpha/beta (MAAL), delta1/delta2 (UM), mu (VRA), lambda (PA-CBAM)
and the phase-2 weights alpha1 (VRA), alpha2 (VRNL), alpha3 (UM).

One training run per setting, each through chapter 11's `Trainer` with the setting as config overrides on a preset
(the others stay at the preset's values). Results go to <out>/sweep.json after every run (a re-run skips settings whose
run directory already holds results.json) and the figure to <out>/sweep.png (`diagnostics.plot_sweep`).

  python bench/sweep.py --out runs/sweep                                  # synthetic preset, all four groups
  python bench/sweep.py --out runs/sweep_sysu --preset sysu --data_root /data/SYSU-MM01 --groups mu lambda
  python bench/sweep.py --out /tmp/sweep_tiny --tiny                      # a seconds-long proof that it runs
  python bench/sweep.py --out runs/sweep --set epochs=6 iters=20          # extra overrides for every run
  python bench/sweep.py --out runs/fig6 --groups alpha1 alpha2 alpha3 mu N --json bench/results/sweep.json   # Figure 6

Settings that differ only in phase-2 values (alpha1, alpha2, alpha3, mu, delta1/delta2) continue from one phase-1
checkpoint per seed, trained once (resuming is exact, chapter 11), so each costs only its phase 2; a group that changes
the model or phase 1 (N, alpha/beta, lambda) trains every setting from scratch. `--json` also writes the result where
the book reads it (chapter 12c draws Figure 6 from bench/results/sweep.json).

The full synthetic sweep is 20 runs of the synthetic preset (about ten minutes each on two CPU cores). This is a
benchmark, not a test.
"""
import argparse, json, sys, time
from pathlib import Path

# Figure 6 and section 4.5 of the paper: alpha fixed at 1.0 while beta moves; the UM weights around 0.6/0.4; the VRA cap;
# lambda on the paper's grid [0.001, 0.01, 0.1, 1.0, 10.0].
GRID = {
    'alpha/beta': [dict(alpha=1.0, beta=b) for b in (0.1, 0.3, 0.5, 0.9, 1.0)],
    'delta1/delta2': [dict(delta1=d, delta2=round(1 - d, 2)) for d in (0.3, 0.4, 0.5, 0.6, 0.7)],
    'mu': [dict(mu=m) for m in (1, 2, 3, 4, 5)],
    'lambda': [dict(lam=l) for l in (0.001, 0.01, 0.1, 1.0, 10.0)],
    # the phase-2 weights (M20; implementation section 0.4 / 0.5 / 0.03, hyper-parameter section 0.5 / 0.5 / 0.1)
    'alpha1': [dict(alpha1=a) for a in (0.1, 0.2, 0.4, 0.5, 0.8)],
    'alpha2': [dict(alpha2=a) for a in (0.1, 0.25, 0.5, 0.75, 1.0)],
    'alpha3': [dict(alpha3=a) for a in (0.01, 0.03, 0.1, 0.3, 1.0)],
    'N': [dict(regions=n) for n in (1, 2, 4, 8)],     # regional stripes (M2): the paper's 4 on SYSU-MM01, 6 on RegDB
}
PHASE2_KEYS = {'alpha1', 'alpha2', 'alpha3', 'mu', 'delta1', 'delta2'}   # read only from phase_2start on (M20)
# --tiny: a proof that the sweep runs end to end in about a minute on a CPU: chapter 10a's tiny() run with 2 epochs, two
# settings per group. Its numbers mean nothing.
def tiny_overrides(cfg0):
    from usl_vireid_nb.config import overrides_of, tiny
    return overrides_of(tiny(epochs=2, eval_every=2, dataset=cfg0.dataset, data_root=cfg0.data_root), cfg0)

def label(setting: dict) -> str:
    "A short name of one setting, e.g. 'beta=0.1' (keys that are constant within the group are left out by the caller)."
    return ' '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in setting.items())

def varying(settings: list) -> list:
    "For each setting, only the keys whose value changes across the group (alpha stays 1.0 in 'alpha/beta')."
    keys = [k for k in settings[0] if len({s[k] for s in settings}) > 1] or list(settings[0])
    return [{k: s[k] for k in keys} for s in settings]

def base_config(name: str, data_root=None, trial: int = 1):
    from usl_vireid_nb.config import ConfigError, PRESETS, preset
    if name != 'synthetic' and name in PRESETS and not data_root: raise SystemExit(f'preset {name!r} needs --data_root')
    try: return preset(name, data_root, trial)                 # chapter 10a's one lookup by name
    except ConfigError as e: raise SystemExit(str(e))

def phase1_checkpoint(cfg, out: Path, log) -> Path:
    "The checkpoint after cfg's phase 1 (epochs 1 .. phase2_start-1), trained once into `out` and reused."
    from usl_vireid_nb.config import apply_overrides
    from usl_vireid_nb.trainer import Trainer
    ck = out/'checkpoint.pt'
    if not (out/'results.json').is_file():
        Trainer(apply_overrides(cfg, {'epochs': cfg.phase2_start - 1}), out, log=log).fit(resume=True)   # an interrupted one continues
    return ck

def run_one(cfg, out: Path, log, start: Path | None = None) -> dict:
    """Train one setting (or reuse its results.json) and return its first-mode metrics, in percent; `start`: a phase-1
    checkpoint to continue from (the setting changes only phase-2 values)."""
    from usl_vireid_nb.trainer import Trainer
    done = out/'results.json'
    if done.is_file(): res = json.loads(done.read_text())
    else:
        if start is not None:
            import shutil
            out.mkdir(parents=True, exist_ok=True); shutil.copy2(start, out/'checkpoint.pt')
        res = Trainer(cfg, out, log=log).fit(resume=start is not None)
    mode = cfg.modes[0]
    return {**{k: float(v) for k, v in res['final'][mode].items()}, 'mode': mode,
            'untrained_Rank-1': float(res['untrained'][mode]['Rank-1']), 'time_s': float(res.get('time_s', 0.))}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True, help='output folder: one run folder per setting, sweep.json, sweep.png')
    ap.add_argument('--preset', default='synthetic', help="trainer preset: 'synthetic' (default), 'sysu', 'regdb'")
    ap.add_argument('--data_root', default=None, help='dataset root for sysu / regdb')
    ap.add_argument('--trial', type=int, default=1, help='RegDB trial')
    ap.add_argument('--groups', nargs='*', default=list(GRID), help=f'groups to sweep (default all: {list(GRID)})')
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config overrides applied to every run')
    ap.add_argument('--tiny', action='store_true', help='tiny runs, two settings per group: proves the script works')
    ap.add_argument('--quiet', action='store_true', help="do not print the trainer's per-epoch lines")
    ap.add_argument('--json', default=None, help='also write the result here (e.g. bench/results/sweep.json)')
    ap.add_argument('--every', type=int, default=1, help='every k-th setting of each group (2: both ends and the middle)')
    a = ap.parse_args(argv)
    from usl_vireid_nb.config import apply_overrides
    from usl_vireid_nb.figures import plot_sweep
    bad = [g for g in a.groups if g not in GRID]
    if bad: raise SystemExit(f'unknown group(s) {bad}; choose from {list(GRID)}')
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    from usl_vireid_nb.config import ConfigError
    cfg0 = base_config(a.preset, a.data_root, a.trial)
    try:
        if a.tiny: cfg0 = apply_overrides(cfg0, tiny_overrides(cfg0))
        cfg0 = apply_overrides(cfg0, a.set)         # rejects unknown keys with the list of valid ones
        for g in a.groups:                          # every setting must make a valid config before the first run
            for setting in GRID[g]: apply_overrides(cfg0, setting)
    except ConfigError as e: raise SystemExit(f'sweep.py: {e}')
    log = (lambda *x: None) if a.quiet else print
    from dataclasses import replace
    if a.preset == 'synthetic' and cfg0.data_root is None:      # one synthetic set for every run, not one each
        cfg0 = replace(cfg0, data_root=str(out/'data'/'synthetic'))
    sys.path.insert(0, str(Path(__file__).parent)); from _machine import command, machine
    results = {'preset': a.preset, 'tiny': a.tiny, 'overrides': a.set, 'every': a.every, 'seed': cfg0.seed, 'epochs': cfg0.epochs,
               'phase2_start': cfg0.phase2_start, 'machine': machine(), 'command': command(argv), 'groups': {}}
    t0 = time.time()
    start = None
    if any(set(st) <= PHASE2_KEYS for g in a.groups for st in GRID[g]) and 1 < cfg0.phase2_start <= cfg0.epochs:
        print('[sweep] phase 1, shared by the phase-2 settings', flush=True)
        start = phase1_checkpoint(cfg0, out/'phase1', log)
    for g in a.groups:
        settings = GRID[g][:2] if a.tiny else GRID[g][::a.every]
        results['groups'][g] = []
        for setting, shown in zip(settings, varying(GRID[g])[:2] if a.tiny else varying(GRID[g])[::a.every]):
            name = label(shown)
            cfg = apply_overrides(cfg0, setting)
            run_dir = out/g.replace('/', '_')/name.replace(' ', '_')
            shared = start if set(setting) <= PHASE2_KEYS else None
            print(f'[sweep] {g}: {name} -> {run_dir}' + (' (from the shared phase 1)' if shared else ''), flush=True)
            row = {'label': name, 'overrides': setting, 'run': str(run_dir.relative_to(out)), 'from_phase1': shared is not None,
                   **run_one(cfg, run_dir, log, shared)}
            results['groups'][g].append(row)
            print(f"[sweep] {g}: {name}: Rank-1 {row['Rank-1']:.2f} mAP {row['mAP']:.2f} ({row['time_s']:.0f} s)", flush=True)
            (out/'sweep.json').write_text(json.dumps(results, indent=1))
    results['time_s'] = time.time() - t0
    (out/'sweep.json').write_text(json.dumps(results, indent=1))
    if a.json: Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(results, indent=1) + '\n')
    fig = plot_sweep(results)
    fig.savefig(out/'sweep.png', dpi=100)
    print(f'[sweep] wrote {out/"sweep.json"} and {out/"sweep.png"} in {results["time_s"]:.0f} s')
    return results

if __name__ == '__main__':
    main()
