"""Where the main job's time goes (issue 24): one fp32 run of the default demo, and of the demo before it, stage by stage.

Stages, summed over the run (`Trainer.fit` only; the synthetic set is made before the clock):
    calibrate   BatchNorm statistics of the untrained model (once)
    evaluate    the test protocol (the untrained model, then on the preset's schedule)
    describe    every training image's descriptors, each epoch (chapter 10c's epoch_state records it)
    plan        pseudo-labels, links, local clusters, neighbour tables (its parts as plan.*), then build
    step        the training steps (`Trainer.train_step`: forward, losses, backward, optimiser, momentum updates)
    load        the P x K batches (decode cache, random transforms): an epoch's loop time minus its steps
    other       what is left of the wall time (logs, checkpoints)
A subclass of the trainer times `train_step`, `evaluate` and `recalibrate` around the trainer's own methods, and a
callback reads each epoch's `EpochState.seconds`; nothing of the epoch is composed here.

    python bench/demo_profile.py                                   # default and previous, seed 0 (~7 min on 2 cores)
    python bench/demo_profile.py --tiny --json /tmp/dp.json        # seconds: proves the script runs
"""
import argparse, json, time
from collections import defaultdict
from pathlib import Path

from usl_vireid_nb.config import PRE_REV3, apply_overrides, overrides_of, synthetic, tiny
from usl_vireid_nb.epoch import MEMO_BYTES
from usl_vireid_nb.synthetic import make_synthetic
from usl_vireid_nb.trainer import Callback, Trainer
from _machine import command, machine
from demo_speed import PREVIOUS


class TimedTrainer(Trainer):
    "The trainer, with the wall time of its steps, evaluations and BN calibration added up in `self.t`."
    def __init__(self, *a, **kw):
        self.t = defaultdict(float); super().__init__(*a, **kw)
    def _timed(self, key, f, *a, **kw):
        t0 = time.perf_counter(); r = f(*a, **kw); self.t[key] += time.perf_counter() - t0; return r
    def train_step(self, *a, **kw): return self._timed('step', super().train_step, *a, **kw)
    def evaluate(self, *a, **kw): return self._timed('evaluate', super().evaluate, *a, **kw)
    def recalibrate(self, *a, **kw): return self._timed('calibrate', super().recalibrate, *a, **kw)


class EpochSeconds(Callback):
    "Adds up each epoch's preparation times (EpochState.seconds) and the time from its first step to its end."
    order = 5                                   # before the evaluation (10) and the checkpoint (20) of after_epoch
    def __init__(self, t): self.t, self.t0 = t, None
    def before_epoch(self, ev):
        for k, v in ev.state.seconds.items(): self.t[k] += v
        self.t0 = time.perf_counter()
    def after_epoch(self, ev): self.t['loop'] += time.perf_counter() - self.t0


def profile(cfg, out: Path, memo_bytes: int) -> dict:
    "Stage seconds of one `fit` of `cfg`, their shares of its wall time, and the run's final Rank-1."
    tr = TimedTrainer(cfg, out, log=lambda *x: None, memo_bytes=memo_bytes)
    tr.callbacks = sorted([*tr.callbacks, EpochSeconds(tr.t)], key=lambda cb: cb.order)
    t0 = time.perf_counter(); r = tr.fit(); wall = time.perf_counter() - t0
    t = dict(tr.t)
    t['load'] = t.pop('loop') - t['step']                 # the loop's time outside the steps: its batches
    top = ('calibrate', 'evaluate', 'describe', 'plan', 'build', 'step', 'load')
    t['other'] = wall - sum(t.get(k, 0.) for k in top)
    return {'wall_s': wall, 'seconds': t, 'share': {k: t.get(k, 0.) / wall for k in (*top, 'other')},
            'epochs': cfg.epochs, 'iters': cfg.iters, 'images_per_step': 3 * cfg.batch_size,
            'Rank-1': r['final']['all']['Rank-1'], 'untrained Rank-1': r['untrained']['all']['Rank-1']}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='runs/demo_profile')
    ap.add_argument('--json', default='bench/results/demo_profile.json')
    ap.add_argument('--tiny', action='store_true', help="tiny() sizes: proves the script runs")
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    default = synthetic(progress=False, amp='off', seed=a.seed, data_root=str(out/'data'))
    if a.tiny: default = apply_overrides(default, overrides_of(tiny(epochs=2, eval_every=2), synthetic()))
    previous = apply_overrides(default, {**PREVIOUS, **PRE_REV3, **({'epochs': 2, 'eval_every': 1} if a.tiny else {})})
    make_synthetic(out/'data', n_train_ids=default.synth_train_ids, n_test_ids=default.synth_test_ids,
                   n_images=default.synth_images, seed=a.seed)
    res = {'machine': machine(), 'command': command(argv), 'tiny': a.tiny, 'default': default.short(), 'runs': {}}
    for name, cfg, memo in (('default', default, MEMO_BYTES), ('previous', previous, 0)):
        res['runs'][name] = profile(cfg, out/name, memo)
        p = res['runs'][name]
        print(f"{name}: {p['wall_s']:.0f} s  " + '  '.join(f"{k} {v:.0%}" for k, v in p['share'].items()), flush=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(f"-> {a.json}")


if __name__ == '__main__':
    main()
