"""Training throughput of the full method vs the bare backbone, side by side in one process.

Measures images/s of `Trainer.train_step` (data loading from the P x K loaders, one forward of [v; c; r], every live
loss term of phase 2, the classifier step, the backbone step, the momentum updates of all memories and banks) against a
bare `ReIDViT` forward + backward + optimiser step on a batch of the same size, alternating the two in rounds so that a
change in machine load hits both alike. Prints both rates and their ratio (the goal: >= 0.85) and writes them to bench/results/train_bench.json.

    python bench/train_bench.py                         # synthetic preset, batch 4 x 8 per modality (96 images a step)
    python bench/train_bench.py --steps 10 --rounds 3 --set batch_ids=8
"""
import argparse, json, tempfile, time
from pathlib import Path

import torch

from usl_vireid_nb.config import apply_overrides, model_kwargs, synthetic
from usl_vireid_nb.trainer import Trainer, pk_loaders
from usl_vireid_nb.runtime import autocast
from _machine import command, machine


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=5, help='steps per round and side')
    ap.add_argument('--rounds', type=int, default=3, help='alternating rounds')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps per side first')
    ap.add_argument('--out', default=None, help='work folder (default: a temporary one)')
    ap.add_argument('--data_root', default=None, help='an existing synthetic set (default: generated under --out)')
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value')
    ap.add_argument('--json', default='bench/results/train_bench.json', help='where to write the result')
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp())
    cfg = apply_overrides(synthetic(progress=False, data_root=a.data_root), a.set)
    cfg = apply_overrides(cfg, {'phase2_start': 1, 'iters': (a.steps * a.rounds + a.warmup) + 1})  # every term live
    tr = Trainer(cfg, out)
    dev = tr.device
    print(f"torch threads {torch.get_num_threads()}, device {dev}, backbone '{cfg.arch_preset}' {cfg.img_h}x{cfg.img_w}, "
          f"batch {cfg.batch_ids}x{cfg.num_instances} per modality ({3 * cfg.batch_size} images a step)")
    t = time.time(); st = tr.prepare_epoch(1); print(f"prepare_epoch (extract + cluster + match): {time.time() - t:.1f}s; "
                                                    f"phase 2 live: {st.phase2 is not None}; {st.stats}")
    lds = pk_loaders(tr.views, st, cfg)
    its = [iter(l) if l is not None else None for l in (lds['v'], lds['r'])]
    n_img = sum(2 * cfg.batch_size if m == 'v' else cfg.batch_size for m in ('v', 'r') if lds[m] is not None)

    # the bare backbone: same architecture and batch size, plain forward + backward + optimiser step
    bare = type(tr.model)(**model_kwargs(cfg, pretrained=False)).to(dev)
    opt = torch.optim.Adam(bare.parameters(), lr=cfg.lr)
    x = torch.randn(n_img, 3, cfg.img_h, cfg.img_w, device=dev)
    step_no = [0]

    def method_step():
        bv = next(its[0]) if its[0] is not None else None
        br = next(its[1]) if its[1] is not None else None
        tr.train_step(st, bv, br); step_no[0] += 1

    def bare_step():                       # in the trainer's precision (cfg.amp: bf16 where the CPU has it)
        with autocast(tr.amp_dtype, dev): out = bare(x)
        out = {k: v.float() for k, v in out.items() if v is not None}
        loss = out['z'].pow(2).sum() + out['g'].pow(2).mean()
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

    def timed(fn, n):
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n): fn()
        if dev.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t

    timed(method_step, a.warmup); timed(bare_step, a.warmup)
    tm = tb = 0.
    for r in range(a.rounds):
        dm, db = timed(method_step, a.steps), timed(bare_step, a.steps)
        tm += dm; tb += db
        print(f"round {r + 1}: method {n_img * a.steps / dm:7.1f} img/s   bare backbone {n_img * a.steps / db:7.1f} img/s")
    ips_m, ips_b = n_img * a.steps * a.rounds / tm, n_img * a.steps * a.rounds / tb
    print(f"\nfull method (phase 2, all terms): {ips_m:.1f} img/s\nbare backbone fwd+bwd+step:       {ips_b:.1f} img/s\n"
          f"ratio method / bare: {ips_m / ips_b:.3f}  (goal >= 0.85)")
    res = {'method_img_per_s': ips_m, 'bare_img_per_s': ips_b, 'ratio': ips_m / ips_b, 'images_per_step': n_img,
           'amp_dtype': str(tr.amp_dtype), 'config': cfg.short(), 'steps': a.steps, 'rounds': a.rounds, 'machine': machine(),
           'command': command()}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True); Path(a.json).write_text(json.dumps(res, indent=1))
    print(f"-> {a.json}")


if __name__ == '__main__':
    main()
