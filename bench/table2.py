"""The paper's Table 2 for our code: parameters, GFLOPs per image, inference and training images/s of the paper preset
(`sysu(root)`: ViT-B/16 + PA-CBAM at 384x128, N = 4) and of the CPU demo preset (`synthetic()`: 64x32), side by side in
one run, with the paper's numbers beside ours (issue 14).

    python bench/table2.py                        # writes bench/results/table2.json (9 minutes at load average 1-4 on 2 cores, 19 at 8)
    python bench/table2.py --out /tmp/t2.json --reps 2 --paper-pk 2x4

What is measured, per preset:
* `params`: the backbone `ReIDViT(**model_kwargs(cfg))` split into the ViT (its visible stem included), the infrared
  stem (the paper preset's second ICS stem; 0 with one stem), PA-CBAM and the BatchNorms (BN-neck and the
  N regional BNs), with each stem's count apart, plus MAAL's modality classifier E (`ModalityClassifier(d, hidden=cfg.maal_hidden)`, chapter 07), which
  trains with the model but is not used at test time. Memories are buffers of cluster centres, not parameters.
* `gflops`: `torch.utils.flop_counter.FlopCounterMode` on the eval-mode forward of one image (a visible one: every image
  passes one stem of the two), on the `meta` device, with
  timm's explicit attention (`fused_attn=False`): the counter has no formula for the CPU's fused attention kernel and
  would silently leave q k^T and A v out. It counts matrix products and convolutions only (not norms, softmax, GELU,
  pooling), and a multiply-add as 2 FLOPs; `gmacs` is half of it (the thop / fvcore habit of many re-ID papers).
  `train_gflops`: the backbone's forward + backward of one image in train mode (losses and E left out).
* `inference`: eval-mode `model(x)` (z, what retrieval uses) on a batch of `--batch` images, fp32 and bf16 autocast,
  interleaved rep by rep so that both see the same machine load; bf16 only where the CPU computes it natively
  (avx512_bf16 or amx_bf16 in /proc/cpuinfo; torch's own answer is recorded beside it).
* `training`: `Trainer.train_step` of the full method (the trainer's own step: forward of [x_v; x_c; x_r], E's step, every
  live loss term, the backbone's step, the momentum updates of every memory and bank) on a tiny generated SYSU-layout
  tree with the preset's architecture, in phase 1 and in phase 2 (all terms), fp32 and bf16, batches drawn beforehand
  (`load_s` is the loader's time per batch, reported apart). The paper preset uses a smaller P x K than its 4 x 16
  (`--paper-pk`); images/s counts 3 x P x K images per step (v, its CA copy, r), as the trainer's log does. The trainer
  runs bf16 only on CUDA at this commit; on the CPU the step runs under an outer CPU autocast (a forward hook records the
  dtype that really ran). Random weights (`pretrained=none`): speed does not depend on them.
* CUDA: the same on the GPU when one is present (skipped otherwise).
The machine: CPU model, flags, cores, torch threads and version, and the load average before and after each section
(other processes share this machine; our own threads count in it). This is a benchmark, not a test.
"""
import argparse, contextlib, json, os, platform, statistics, sys, tempfile, time, warnings
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from usl_vireid_nb.backbone import ReIDViT, count_parameters
from usl_vireid_nb.config import apply_overrides, model_kwargs, synthetic, sysu
from usl_vireid_nb.data import Modality
from usl_vireid_nb.maal import ModalityClassifier

# From /work/shared/paper.txt, section 4.3: "We evaluate the computing time on a NVIDIA GeForce RTX 4090. Our input size
# measures 384 x 128, and our method contains approximately 91.5 million parameters, which is about 5 million more than
# the standard ViT-Base model. The model achieves 31.6 GFLOPs". Table 2's rows (FPS, the ResNet-50 and ViT-Base rows) are
# not in the text we have.
PAPER = {'params_M': 91.5, 'gflops': 31.6, 'input': [384, 128], 'gpu': 'NVIDIA GeForce RTX 4090', 'fps': None,
         'params_vs_vit_base_M': 5.0,
         'note': "paper.txt gives params, GFLOPs, input size and GPU; Table 2's FPS and its ResNet-50 / ViT-Base rows are "
                 "not in the text, and the paper names neither its FLOP counter nor whether a multiply-add counts as 1 or 2"}
FLAGS_OF_INTEREST = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16',
                     'amx_int8')


# ---------------------------------------------------------------- the machine
def cpu_info() -> tuple:
    "(CPU model name, set of flags) from /proc/cpuinfo (empty elsewhere)."
    try: text = Path('/proc/cpuinfo').read_text()
    except OSError: return platform.processor(), set()
    model = next((l.split(':', 1)[1].strip() for l in text.splitlines() if l.startswith('model name')), platform.processor())
    line = next((l for l in text.splitlines() if l.startswith(('flags', 'Features'))), '')
    return model, set(line.split(':', 1)[1].split()) if ':' in line else set()


def machine() -> dict:
    model, flags = cpu_info()
    try: torch_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception: torch_bf16 = None
    import timm
    return {'cpu': model, 'cores': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'torch': torch.__version__,
            'timm': timm.__version__, 'python': platform.python_version(),
            'cpu_capability': torch.backends.cpu.get_cpu_capability(),
            'flags': sorted(f for f in FLAGS_OF_INTEREST if f in flags),
            'bf16_native': bool(flags & {'avx512_bf16', 'amx_bf16'}),   # what decides the bf16 rows here
            'bf16_torch_mkldnn': torch_bf16,   # torch's oneDNN says yes on any AVX512-BW CPU (emulated there): not decisive
            'cuda': torch.cuda.is_available(), 'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'loadavg_start': [round(x, 2) for x in os.getloadavg()],
            'date': datetime.now(timezone.utc).isoformat(timespec='seconds')}


def load() -> list: return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- parameters and FLOPs
def params_of(cfg) -> dict:
    "Parameter counts (M and exact) of the backbone's parts and of MAAL's E for `cfg` (built on the meta device)."
    with torch.device('meta'):
        m = ReIDViT(**model_kwargs(cfg, pretrained=False))
        E = ModalityClassifier(m.dim, hidden=cfg.maal_hidden)
    n = {'vit': count_parameters(m.vit), 'stem_vis': count_parameters(m.vit.patch_embed),
         'stem_ir': count_parameters(m.patch_embed_ir) if m.patch_embed_ir is not None else 0,
         'pacbam': count_parameters(m.pacbam) if m.pacbam is not None else 0,
         'bns': count_parameters(m.bnneck) + count_parameters(m.bn_regions), 'maal_E': count_parameters(E)}
    backbone = count_parameters(m)
    assert backbone == n['vit'] + n['stem_ir'] + n['pacbam'] + n['bns'], \
        "ReIDViT holds parameters outside the ViT, the infrared stem, PA-CBAM and the BNs"
    n.update(backbone=backbone, total=backbone + n['maal_E'])
    return {**{f'{k}_M': round(v / 1e6, 4) for k, v in n.items()}, 'exact': n, 'stem': m.stem,
            'modality_stems': m.modality_stems}


def _explicit_attention(model) -> None:
    "timm's attention as q k^T and A v matmuls, which FlopCounterMode counts (the fused kernels it may not)."
    for mod in model.modules():
        if hasattr(mod, 'fused_attn'): mod.fused_attn = False


def flops_of(model_fn, img_size, train: bool = False) -> dict:
    "GFLOPs per image through the model `model_fn()` builds (meta device): total, by op, by top-level module."
    n = 2 if train else 1                                  # train-mode BatchNorm needs two images
    with torch.device('meta'):
        m = model_fn()
        x = torch.randn(n, 3, *img_size)
    _explicit_attention(m)
    m.train(train)
    fwd = (lambda x: m(x, [Modality.VIS, Modality.IR][:len(x)])) if isinstance(m, ReIDViT) else m   # one stem per image
    fc = FlopCounterMode(display=False)
    with fc:
        if train:
            o = fwd(x); o = o if isinstance(o, torch.Tensor) else sum(v.sum() for v in o.values() if v is not None)
            o.sum().backward()
        else:
            with torch.no_grad(): fwd(x)
    counts = fc.get_flop_counts()
    total = fc.get_total_flops() / n
    by_op = {str(k).replace('aten.', ''): round(v / n / 1e9, 4) for k, v in counts.get('Global', {}).items()}
    top = {k.split('.', 1)[1]: round(sum(v.values()) / n / 1e9, 4) for k, v in counts.items() if k.count('.') == 1}
    # ReIDViT calls vit.forward_features, so the counter sees the ViT's children (patch_embed, blocks), not the ViT
    vit = sum(sum(v.values()) for k, v in counts.items() if k.count('.') == 2 and k.split('.')[1] == 'vit')
    return {'gflops': round(total / 1e9, 3), 'gmacs': round(total / 2e9, 3), 'by_op': by_op, 'by_module': top,
            'vit_gflops': round(vit / n / 1e9, 4)}


def gflops_of(cfg) -> dict:
    "Forward GFLOPs per image of the eval-mode backbone, its ViT and PA-CBAM shares, and the train fwd+bwd GFLOPs."
    build = lambda: ReIDViT(**model_kwargs(cfg, pretrained=False))
    fwd = flops_of(build, (cfg.img_h, cfg.img_w))
    attn = sum(v for k, v in fwd['by_op'].items() if k == 'bmm')
    tr = flops_of(build, (cfg.img_h, cfg.img_w), train=True)
    return {**fwd, 'vit_gflops': fwd['vit_gflops'], 'pacbam_gflops': fwd['by_module'].get('pacbam', 0.),
            'attention_matmul_gflops': round(attn, 4), 'linear_conv_only_gflops': round(fwd['gflops'] - attn, 3),
            'train_gflops': tr['gflops'],
            'convention': "FlopCounterMode: matrix products and convolutions only, a multiply-add = 2 FLOPs; gmacs = "
                          "gflops / 2; linear_conv_only leaves out the attention matmuls (what thop counts)"}


def what_if() -> dict:
    "ViT-B variants a reader may suspect behind the paper's numbers (params and GFLOPs of the ViT alone, meta device)."
    import timm
    def vit(num_classes=0, **kw):
        def build(): return timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=num_classes, **kw)
        with torch.device('meta'): n = count_parameters(build())
        f = flops_of(build, kw['img_size'])
        return {'params_M': round(n / 1e6, 3), 'gflops': f['gflops'], 'gmacs': f['gmacs']}
    return {
        'vit_b16_224': {'what': 'ViT-B/16 at 224x224 (197 tokens), no head: the usual "ViT-Base"', **vit(img_size=(224, 224))},
        'vit_b16_224_head': {'what': 'ViT-B/16 at 224x224 with its 1000-class ImageNet head',
                             **vit(num_classes=1000, img_size=(224, 224))},
        'stride12_384x128': {'what': "TransReID's overlapping stride-12 patches at 384x128: a 31x10 grid, 311 tokens "
                                     "(counted as ViT-B/16 at 496x160, the same grid, patch projection and blocks)",
                             **vit(img_size=(496, 160))},
        'stride12_384x128_jpm': {'what': 'the same plus a 13th block (a TransReID-style JPM branch over all tokens)',
                                 **vit(img_size=(496, 160), depth=13)},
    }


# ---------------------------------------------------------------- speed
def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def _autocast(device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _summary(times, n_images) -> dict:
    med = statistics.median(times)
    return {'reps': len(times), 'seconds': [round(t, 4) for t in times], 'images_per_s': round(n_images / med, 3),
            'images_per_s_best': round(n_images / min(times), 3)}


def inference_speed(cfg, device, dtypes: dict, batch: int, reps: int) -> dict:
    "Eval-mode images/s of the backbone on a batch of `batch` images, each dtype in `dtypes`, interleaved rep by rep."
    torch.manual_seed(0)
    m = ReIDViT(**model_kwargs(cfg, pretrained=False)).to(device).eval()
    x = torch.randn(batch, 3, cfg.img_h, cfg.img_w, device=device)
    mods = torch.tensor([int(Modality.VIS)] * (batch // 2) + [int(Modality.IR)] * (batch - batch // 2), device=device)
    m = (lambda f: (lambda x: f(x, mods)))(m)                 # half visible, half infrared: both stems at work
    times = {k: [] for k in dtypes}
    l0 = load()
    with torch.no_grad():
        for k, dt in dtypes.items():                        # a warm-up of every path (oneDNN primitives, caches)
            with _autocast(device, dt): m(x)
        for _ in range(reps):
            for k, dt in dtypes.items():
                _sync(device); t = time.perf_counter()
                with _autocast(device, dt): m(x)
                _sync(device); times[k].append(time.perf_counter() - t)
    return {'batch': batch, **{k: _summary(v, batch) for k, v in times.items()}, 'loadavg': [l0, load()]}


class _DtypeProbe:
    "Forward hook on the first MLP layer: the dtype its output really had in the last forward."
    def __init__(self, module): self.dtype = None; module.register_forward_hook(self)
    def __call__(self, mod, inp, out): self.dtype = str(out.dtype).replace('torch.', '')


def training_speed(cfg, device, dtypes: dict, reps: int, work: Path) -> dict:
    "Trainer.train_step images/s of `cfg` in phase 1 and phase 2, each dtype, interleaved; cfg's data is a tiny tree."
    from usl_vireid_nb.trainer import Trainer, pk_loaders
    n_steps = (1 + reps) * len(dtypes)
    cfg = apply_overrides(cfg, {'iters': n_steps, 'progress': False})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                    # the tiny tree's counts vs SYSU-MM01's, k1 clipped, pretrained=none
        tr = Trainer(cfg, work/'run', device=device, log=lambda *a, **k: None)
        probe = _DtypeProbe(tr.model.vit.blocks[0].mlp.fc1)
        out = {'batch': f"{cfg.batch_ids} x {cfg.num_instances} per modality", 'images_per_step': 3 * cfg.batch_size,
               'train_images': [len(tr.views.train_v), len(tr.views.train_r)],
               'what': 'Trainer.train_step of the full method (chapter 11), batches drawn beforehand'}
        for ph, epoch in (('phase1', 1), ('phase2', cfg.phase2_start)):
            st = tr.prepare_epoch(epoch)
            if ph == 'phase2' and st.phase2 is None: raise RuntimeError("phase 2 got no clusters in one modality")
            lds = pk_loaders(tr.views, st, cfg)
            its = [iter(l) if l is not None else None for l in (lds['v'], lds['r'])]
            t = time.perf_counter()
            batches = [tuple(next(i) if i is not None else None for i in its) for _ in range(n_steps)]
            load_s = (time.perf_counter() - t) / n_steps
            order = [('warm-up', dt) for dt in dtypes.values()] + [(k, dt) for _ in range(reps) for k, dt in dtypes.items()]
            times, ran, l0 = {k: [] for k in dtypes}, {}, load()
            for (k, dt), (bv, br) in zip(order, batches):
                tr.amp_dtype, tr.scaler = dt, None          # the trainer's own autocast (CUDA; CPU on later commits) ...
                _sync(tr.device); t = time.perf_counter()
                with _autocast(tr.device, dt): tr.train_step(st, bv, br)   # ... and the device's, for the CPU here
                _sync(tr.device)
                if k != 'warm-up': times[k].append(time.perf_counter() - t); ran[k] = probe.dtype
            n = 3 * cfg.batch_size
            out[ph] = {'terms': sorted(st.terms), 'load_s': round(load_s, 4),
                       **{k: {**_summary(v, n), 'ran_as': ran[k]} for k, v in times.items()}, 'loadavg': [l0, load()]}
    return out


# ---------------------------------------------------------------- the run
def presets(work: Path, paper_pk) -> dict:
    "The two configs: the paper preset on a tiny SYSU-layout tree (random weights), and the demo preset as it is."
    from usl_vireid_nb.synthetic import make_synthetic
    root = make_synthetic(work/'sysu', n_train_ids=4, n_test_ids=2, n_images=2, seed=0)
    P, K = paper_pk
    return {'paper': {'config': "sysu(root): arch_preset='paper'",
                      'cfg': sysu(root, pretrained='none', batch_ids=P, num_instances=K, extract_batch=32)},
            'demo': {'config': "synthetic(): arch_preset='demo'",
                     'cfg': synthetic(data_root=str(work/'synthetic'), synth_train_ids=8, synth_test_ids=2, synth_images=2)}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=str(Path(__file__).resolve().parent/'results'/'table2.json'))
    ap.add_argument('--batch', type=int, default=32, help='inference batch (CPU)')
    ap.add_argument('--cuda-batch', type=int, default=128, help='inference batch (CUDA)')
    ap.add_argument('--reps', type=int, default=3, help='timed repetitions per dtype (paper preset)')
    ap.add_argument('--demo-reps', type=int, default=10, help='timed repetitions per dtype (demo preset: cheap)')
    ap.add_argument('--paper-pk', default='2x4', help='P x K of the paper preset\'s training step (the paper: 4x16)')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    ap.add_argument('--presets', default='paper,demo', help='comma list of the presets to measure (a smoke test: demo)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    paper_pk = tuple(int(s) for s in a.paper_pk.lower().split('x'))
    t_start = time.time()
    mach = machine()
    cpu = torch.device('cpu')
    dt_cpu = {'fp32': None, **({'bf16': torch.bfloat16} if mach['bf16_native'] else {})}
    res = {'command': 'python bench/table2.py ' + ' '.join(sys.argv[1:] if argv is None else argv), 'machine': mach,
           'paper': PAPER, 'what_if': what_if(), 'presets': {}}
    if not mach['bf16_native']: res['bf16_skipped'] = 'the CPU has neither avx512_bf16 nor amx_bf16'
    with tempfile.TemporaryDirectory() as tmp:
        for name, p in presets(Path(tmp), paper_pk).items():
            if name not in a.presets.split(','): continue
            cfg, t0, reps = p['cfg'], time.time(), a.demo_reps if name == 'demo' else a.reps
            print(f"[{name}] params, FLOPs ...", flush=True)
            row = {'config': p['config'], 'arch': model_kwargs(cfg)['arch'], 'img_size': [cfg.img_h, cfg.img_w],
                   'regions': cfg.regions, 'params': params_of(cfg), 'gflops': gflops_of(cfg)}
            print(f"[{name}] inference ...", flush=True)
            row['inference'] = {'cpu': inference_speed(cfg, cpu, dt_cpu, a.batch, reps)}
            print(f"[{name}] training ...", flush=True)
            row['training'] = {'cpu': training_speed(cfg, cpu, dt_cpu, reps, Path(tmp)/name/'cpu')}
            if torch.cuda.is_available():
                gpu = torch.device('cuda', 0)
                dt_gpu = {'fp32': None, 'bf16': torch.bfloat16}
                row['inference']['cuda'] = inference_speed(cfg, gpu, dt_gpu, a.cuda_batch, reps)
                row['training']['cuda'] = training_speed(cfg, gpu, dt_gpu, reps, Path(tmp)/name/'cuda')
            else: row['inference']['cuda'] = row['training']['cuda'] = 'skipped: no CUDA device'
            row['seconds'] = round(time.time() - t0, 1)
            res['presets'][name] = row
            print(f"[{name}] done in {row['seconds']:.0f} s: {row['params']['total_M']} M, {row['gflops']['gflops']} "
                  f"GFLOPs, {row['inference']['cpu']['fp32']['images_per_s']} img/s inference fp32", flush=True)
    res['machine']['loadavg_end'] = load()
    res['wall_s'] = round(time.time() - t_start, 1)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + '\n')
    print(f"wrote {out} in {res['wall_s']:.0f} s")
    return res


if __name__ == '__main__':
    main()
