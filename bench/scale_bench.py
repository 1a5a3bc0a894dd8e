"""SYSU-MM01-scale timings of the non-backbone stages of one epoch (issue 17): each stage of chapter 11's trainer on
22,258 visible + 11,909 infrared descriptors of (N+1) x 768 = 3,840 dimensions (the `sysu` preset: ViT-B/16, N = 4),
with its wall time, CPU time and peak memory. Goal on this CPU: <= 60 s per epoch and <= 4 GB.

    python bench/scale_bench.py --json bench/results/scale_bench.json    # full scale, one child process per stage
    python bench/scale_bench.py --small --json /tmp/scale_small.json      # 1/20 of the images, one process: seconds

Stages: chapter 10c's *plan* and *build*, the functions `Trainer.prepare_epoch` calls (phase 2, every term live),
then one training step's share (chapter 10d's functions):
  plan           `plan_epoch` on the generated descriptors: pseudo-labels (M3), the joint prior when the config asks for it
                 (M3b), links (M13-M14), local clusters (M17 rev 2); its own `seconds` give the breakdown per decision
  build          `build_epoch`: memories (M4), cross labels + shared memories (M14-M15), UM groups (M19), instance banks (M16)
  step           per training step: `vrnl_masks` for 64 + 64 queries against the banks, `step_losses` (+ backward
                 into z) and `momentum_updates`; the epoch pays it cfg.iters (200) times
Not here: the backbone (extraction and the ViT's forward/backward; see gpu_check.py and train_bench.py).

Memory: at full scale each stage runs in a fresh child process (this parent imports neither numpy nor torch, so a
child's high-water mark starts small). The child loads its inputs, resets the kernel's RSS high-water mark
(/proc/self/clear_refs, where allowed), runs the stage once and reads `resource.getrusage(RUSAGE_SELF).ru_maxrss`:
`peak_gb` is the child's peak during the stage (its inputs included), `delta_gb` what the stage added to the RSS it
started from. tracemalloc would miss faiss's and BLAS's allocations. With --small (one process) the memory columns only
show growth of the high-water mark. On CUDA (`run_stages(..., device='cuda')`, used by gpu_check.py) the memory columns
are torch.cuda.max_memory_allocated above the memory allocated before the stage.

The descriptors are generated (`sysu_like`), "clustered like real ones"; the choices are documented at `KNOBS`.
This is a benchmark, not a test.
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYSU_SIZES = dict(n_v=22258, n_r=11909, n_ids=395)   # SYSU-MM01's training split
SMALL_SIZES = dict(n_v=1113, n_r=595, n_ids=20)       # 1/20 of it, the same density per identity and camera
VIS_CAMS, IR_CAMS = (1, 2, 4, 5), (3, 6)              # SYSU-MM01's cameras: 1, 2 indoor, 4, 5 outdoor; 3 indoor IR, 6 outdoor IR
GOAL_S, GOAL_GB = 60.0, 4.0
MARK = 'SCALE_BENCH_RESULT '

# How the descriptors are made, and why (tuned at 1/8 and 1/4 scale; the run's own figures are in the JSON under
# data.quality). Each region space n of z (the global one and N = 4 stripes, 768 dims each) is
#   u_n = q * (a_n c_id,n + w_ic t_id,cam,n + w_trk r_track,n) + w_mod m_modality,n + w_cam b_cam,n + noise * s_n e_n,
# every term a random unit vector, then z = concat(u_n / |u_n|) / sqrt(N + 1), as the backbone's M2 descriptor.
# Targets: reported runs on SYSU-MM01 log a few hundred clusters per modality for its 395 identities (more visible ones:
# four cameras split people), 5-30 % outliers; descriptors of one person closer than of two (cosine ~0.4 vs ~0.2).
KNOBS = dict(
    w_mod=0.6,      # one mean per modality: unrelated images sit at cosine ~0.23, the same identity at ~0.41
    w_cam=0.3,      # a per-camera offset every image of the camera shares (style, light)
    w_ic=0.12,      # identity x camera appearance (viewpoint, clothes under that light): splits some identities by camera
    w_trk=0.2,      # SYSU-MM01's images come as tracks: 1-3 tracks per identity and camera share a term (near-duplicates)
    n_tracks=3,
    noise=0.9,      # per-image noise ...
    noise_shared=0.9,  # ... 90 % of it common to an image's N+1 region spaces (blur, pose, crop affect every stripe); with
                       # independent noise per stripe M16's intersection of the spaces was empty for every query
    p_bad=0.15,     # a share of bad crops (occlusion, misdetection) keep only q ~ U(0, q_bad) of their identity: the
    q_bad=0.1,      # ... outliers (in 768 dimensions isotropic noise alone barely moves neighbour ranks: no outliers)
    qa=4.0, qb=1.5, # the other images keep q ~ Beta(4, 1.5) of it (mean 0.73)
    family=4,       # identities come in look-alike families of ~4 (similar clothes) that share part of their centre ...
    region_family=(0.6, 0.6, 0.7, 0.75, 0.8),  # ... more so lower down (trousers, shoes look alike): merges, hard negatives
    region_id=(1.0, 0.9, 1.0, 0.8, 0.6),       # identity strength per region space (global, head ... feet)
    region_noise=(1.0, 1.0, 1.0, 1.1, 1.2),    # noise per region space (the lower stripes are occluded more often)
    ir_share=0.85,  # infrared keeps 85 % of the visible identity centre (colour is lost), the rest is its own (family-shared)
    ca_share=0.9,   # the CA view (one channel of the visible image) keeps more of it
)
# With these, at 1/8 scale (cfg.sysu's eps 0.6, min_samples 4, k1 30, k2 6): visible 1.47 clusters per identity, 7 %
# outliers, ARI 0.78, purity 0.92; infrared 1.06 per identity, 10 % outliers, ARI 0.86, purity 0.92. Not matched to real
# descriptors: M16's reliable neighbours (kappa 0.9, every region space agreeing) are few, 0.2 intra-modal ones per
# query and almost no inter-modal ones; since `neighbour_loss` only scores queries that have one, the step also times
# the loss with a neighbour for every query (`vrnl_loss_every_query_s`), the upper bound.


def sysu_like(n_v: int = 22258, n_r: int = 11909, n_ids: int = 395, regions: int = 4, dim: int = 768, seed: int = 0,
              **knobs) -> dict:
    """Descriptors laid out like SYSU-MM01's training split: each identity in 2-4 visible and 1-2 infrared cameras, uneven
    counts per camera (multinomial with Gamma(4) weights), 1-3 tracks per identity and camera. Returns numpy arrays
    z_v (n_v, D), z_c (n_v, D) (the CA view of the same images), z_r (n_r, D), D = (regions+1)*dim, float32 unit rows;
    cam_v, cam_r (SYSU camera ids), true_v, true_r (identities, only for the quality figures)."""
    import numpy as np
    k = {**KNOBS, **knobs}
    P, rng = regions + 1, np.random.default_rng(seed)
    per_region = lambda key: np.resize(np.asarray(k[key], np.float32), P)[:, None]   # (P, 1), cycled for other N
    def unit(*shape):
        x = rng.standard_normal(shape, dtype=np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)
    n_fam = max(1, n_ids // k['family'])
    fam = rng.integers(0, n_fam, n_ids)
    f = per_region('region_family')
    ident = np.sqrt(1 - f) * unit(n_ids, P, dim) + np.sqrt(f) * unit(n_fam, P, dim)[fam]      # (ids, P, dim)
    own_ir = np.sqrt(1 - f) * unit(n_ids, P, dim) + np.sqrt(f) * unit(n_fam, P, dim)[fam]
    centre = {'v': ident, 'r': np.sqrt(k['ir_share']) * ident + np.sqrt(1 - k['ir_share']) * own_ir,
              'c': np.sqrt(k['ca_share']) * ident + np.sqrt(1 - k['ca_share']) * own_ir}
    mean_v, mean_r = unit(P, dim), unit(P, dim)
    mods = {'v': mean_v, 'r': mean_r, 'c': (mean_v + mean_r) / np.linalg.norm(mean_v + mean_r, axis=-1, keepdims=True)}
    cams = VIS_CAMS + IR_CAMS
    cam_off = dict(zip(cams, unit(len(cams), P, dim)))
    a_id, a_noise = per_region('region_id'), per_region('region_noise')

    def layout(n, cams_m, lo):
        present = np.zeros((n_ids, len(cams_m)), bool)
        for i in range(n_ids): present[i, rng.choice(len(cams_m), rng.integers(lo, len(cams_m) + 1), replace=False)] = True
        w = np.where(present, rng.gamma(4.0, size=present.shape), 0).ravel()
        counts = rng.multinomial(n, w / w.sum())
        pid = np.repeat(np.repeat(np.arange(n_ids), len(cams_m)), counts)
        return pid, np.repeat(np.tile(np.array(cams_m), n_ids), counts)

    def draw(pid, cam, m, shared=None):
        "Descriptors of images (pid, cam) in modality m; `shared` = the latent of the images a CA view copies."
        n = len(pid)
        if shared is None:
            _, cell = np.unique(pid * 10 + cam, return_inverse=True)
            _, trk = np.unique(cell * k['n_tracks'] + rng.integers(0, k['n_tracks'], n), return_inverse=True)
            q = np.where(rng.random(n) < k['p_bad'], rng.uniform(0, k['q_bad'], n), rng.beta(k['qa'], k['qb'], n))
            shared = dict(q=q.astype(np.float32)[:, None, None], T=unit(cell.max() + 1, P, dim), cell=cell,
                          R=unit(trk.max() + 1, P, dim), trk=trk)
        out = np.empty((n, P * dim), np.float32)
        for s in range(0, n, 2048):                                  # in chunks: a few (2048, P, dim) temporaries
            sl = slice(s, s + 2048)
            u = (shared['q'][sl] * (a_id * centre[m][pid[sl]] + k['w_ic'] * shared['T'][shared['cell'][sl]]
                                    + k['w_trk'] * shared['R'][shared['trk'][sl]])
                 + k['w_mod'] * mods[m] + k['w_cam'] * np.stack([cam_off[c] for c in cam[sl]])
                 + k['noise'] * a_noise * (np.sqrt(k['noise_shared']) * unit(len(pid[sl]), 1, dim)
                                           + np.sqrt(1 - k['noise_shared']) * unit(len(pid[sl]), P, dim)))
            u /= np.linalg.norm(u, axis=-1, keepdims=True) * np.sqrt(P)
            out[sl] = u.reshape(len(u), P * dim)
        return out, shared

    pid_v, cam_v = layout(n_v, VIS_CAMS, 2)
    pid_r, cam_r = layout(n_r, IR_CAMS, 1)
    z_v, lat = draw(pid_v, cam_v, 'v')
    z_c, _ = draw(pid_v, cam_v, 'c', lat)
    z_r, _ = draw(pid_r, cam_r, 'r')
    return dict(z_v=z_v, z_c=z_c, z_r=z_r, cam_v=cam_v.astype(np.int64), cam_r=cam_r.astype(np.int64),
                true_v=pid_v.astype(np.int64), true_r=pid_r.astype(np.int64))


# ------------------------------------------------------------------------------------------------ the stages
OVERRIDES: list = []   # --set key=value: config overrides (e.g. vrnl_sets=epoch), passed on to every child process

def bench_config():
    "The paper preset (`config.sysu`): eps 0.6, min_samples 4, k1 30, k2 6, mu 3, rho 10, 4 x 16 per modality, 200 iters."
    from usl_vireid_nb.config import apply_overrides, sysu
    return apply_overrides(sysu('(not read: descriptors are generated)', pretrained='none'), OVERRIDES)

NB_KEYS = ('nb_vv', 'nb_rr', 'nb_vr', 'nb_rv')   # vrnl_sets='epoch': the plan's neighbour tables, saved between stages

def _quality(y, true, cams):
    "Clusters, outliers, ARI, purity (um.pseudo_label_quality) and the share of clusters that hold one camera only."
    import numpy as np
    from usl_vireid_nb.um import pseudo_label_quality
    q = pseudo_label_quality(y, true)
    ks = y[y >= 0]
    single = np.mean([len(np.unique(cams[y == k])) == 1 for k in np.unique(ks)]) if len(ks) else float('nan')
    return {'clusters': q['n_clusters'], 'clusters_per_id': q['n_clusters'] / q['n_ids'], 'outliers': q['outlier_frac'],
            'ARI': q['ARI'], 'purity': q['purity'], 'single_camera_clusters': float(single)}

def _descriptors(ctx):
    "Chapter 10c's `Descriptors` of the generated data (what *describe* would hand over)."
    from usl_vireid_nb.epoch import Descriptors
    return Descriptors(ctx['z_v'], ctx['z_c'], ctx['z_r'], ctx['cam_v'], ctx['cam_r'], ctx['true_v'], ctx['true_r'])

def _plan(ctx, cfg):
    "The `EpochPlan` held in `ctx` (saved by the plan stage)."
    from usl_vireid_nb.config import live_terms
    from usl_vireid_nb.epoch import EpochPlan
    e = cfg.phase2_start
    import torch
    nb = {k[3:]: torch.as_tensor(ctx[k]) for k in NB_KEYS if ctx.get(k) is not None} or None
    return EpochPlan(e, live_terms(cfg, e), ctx['y_v'], ctx['y_r'], ctx.get('links'), ctx.get('passes'),
                     ctx.get('local_v'), ctx.get('local_r'), neighbours=nb)

def _st_plan(ctx, cfg, timer, breakdown):
    import numpy as np
    from usl_vireid_nb.epoch import plan_epoch
    from usl_vireid_nb.vra import matching_precision
    d = _descriptors(ctx)
    with timer(): plan = plan_epoch(d, cfg, cfg.phase2_start)
    info = {f'{k}_s': v for k, v in plan.seconds.items()}
    for m in ('v', 'r'): info[f'quality_{m}'] = _quality(getattr(plan, 'y_' + m), ctx['true_' + m], ctx['cam_' + m])
    if plan.links is not None:
        info.update(links=len(plan.links), links_pass2=int((plan.passes == 2).sum()),
                    match_precision=matching_precision(plan.links, plan.y_v, ctx['true_v'], plan.y_r, ctx['true_r']))
    for m in ('v', 'r'):
        lab = getattr(plan, 'local_' + m)
        if lab is not None: info[f'local_{m}'] = {'cameras': int(len(np.unique(ctx['cam_' + m]))),
                                                  'local_clusters': int(lab.max() + 1), 'local_outliers': float((lab < 0).mean())}
    out = {k: getattr(plan, k) for k in ('y_v', 'y_r', 'links', 'passes', 'local_v', 'local_r')}
    if plan.neighbours is not None:
        out.update({f'nb_{k}': v.cpu() for k, v in plan.neighbours.items()})
        info['neighbours_per_image'] = {k: float((v >= 0).sum(1).float().mean()) for k, v in plan.neighbours.items()}
    return {k: (None if v is None else np.asarray(v, np.int64)) for k, v in out.items()}, info

def _st_build(ctx, cfg, timer, breakdown):
    from usl_vireid_nb.epoch import build_epoch
    d, plan, dev = _descriptors(ctx), _plan(ctx, cfg), ctx['z_v'].device
    with timer(): st = build_epoch(d, plan, cfg, dev)
    info = {'K': {k: (None if m is None else m.num_clusters) for k, m in st.memories.items()}}
    if st.phase2 is not None:
        multi = lambda G: int((G.sum(1) > 1).sum())
        info.update(Kv=int(st.phase2.A.shape[0]), Kr=int(st.phase2.A.shape[1]),
                    clusters_in_merged_groups=multi(st.phase2.groups_v) + multi(st.phase2.groups_r))
    return {'st': st}, info

def _pk_batch(y, P, K, rng):
    "Indices of one P x K batch: P clusters, K members each (with replacement when a cluster is smaller), as the sampler."
    import numpy as np
    ids = rng.choice(np.unique(y[y >= 0]), P, replace=False)
    return np.concatenate([rng.choice(np.flatnonzero(y == k), K, replace=(y == k).sum() < K) for k in ids])

def _st_step(ctx, cfg, timer, breakdown, reps=5):
    """One training step's non-backbone work: `step_losses` (its vrnl_masks included) + backward into z +
    `momentum_updates`, the median over `reps` steps after one warm-up; vrnl_masks and vrnl_loss also timed alone."""
    import numpy as np, torch, torch.nn.functional as F
    from usl_vireid_nb.config import live_terms
    from usl_vireid_nb.data import Modality
    from usl_vireid_nb.epoch import EpochState, build_epoch
    from usl_vireid_nb.step import Batch, camera_refinement, momentum_updates, step_losses, total_loss
    from usl_vireid_nb.vrnl import epoch_directions, sets_mask, vrnl_loss, vrnl_masks
    dev = ctx['z_v'].device
    st = ctx.get('st') or build_epoch(_descriptors(ctx), _plan(ctx, cfg), cfg, dev)   # a child process: rebuilt, untimed
    p2 = st.phase2
    st_other = EpochState(st.epoch, {k: w for k, w in st.terms.items() if k != 'vrnl'}, st.y_v, st.y_r, st.memories, p2)
    rng, g = np.random.default_rng(0), torch.Generator(device=dev).manual_seed(0)
    B = cfg.batch_size
    one = lambda M: torch.zeros(B, M, dtype=torch.bool, device=dev).index_fill_(1, torch.tensor([0], device=dev), True)
    every = {'vv': one(len(ctx['y_v'])), 'rr': one(len(ctx['y_r'])), 'vr': one(len(ctx['y_r'])), 'rv': one(len(ctx['y_v']))}
    noisy = lambda z: F.normalize(z + 0.02 * torch.randn(z.shape, generator=g, device=dev), dim=1)  # "this step's" z

    def one_step():
        iv = _pk_batch(ctx['y_v'], cfg.batch_ids, cfg.num_instances, rng)
        ir = _pk_batch(ctx['y_r'], cfg.batch_ids, cfg.num_instances, rng)
        iv_t, ir_t = torch.as_tensor(iv), torch.as_tensor(ir)
        b = Batch(torch.empty(0, device=dev), torch.tensor([int(Modality.VIS)] * len(iv) + [int(Modality.CA)] * len(iv)
                                                          + [int(Modality.IR)] * len(ir), device=dev),
                  y_v=torch.as_tensor(ctx['y_v'][iv], device=dev), y_r=torch.as_tensor(ctx['y_r'][ir], device=dev),
                  idx_v=iv_t, idx_r=ir_t)
        z = torch.cat([noisy(ctx['z_v'][iv_t.to(dev)]), noisy(ctx['z_c'][iv_t.to(dev)]), noisy(ctx['z_r'][ir_t.to(dev)])])
        z.requires_grad_(True)
        t = {}
        t0 = time.perf_counter()
        with torch.no_grad():
            if cfg.vrnl_sets == 'epoch':                         # the epoch's tables looked up (TokenMatcher)
                M = {'v': len(ctx['y_v']), 'r': len(ctx['y_r'])}
                masks = {k: sets_mask(t_, iv_t.to(dev) if k[0] == 'v' else ir_t.to(dev), M[k[1]])
                         for k, t_ in p2.neighbours.items()}
            else:
                masks = vrnl_masks(z[:len(iv)].detach(), z[-len(ir):].detach(), p2.bank_v.features, p2.bank_r.features,
                                   cfg.regions, cfg.rho_intra, cfg.rho_inter, idx_v=iv_t.to(dev), idx_r=ir_t.to(dev),
                                   rule=cfg.vrnl_rule, kappa=cfg.vrnl_kappa, **camera_refinement(p2, cfg))
        _sync(dev); t['vrnl_masks_s'] = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        L = step_losses({'z': z, 'mc': None, 'g': None}, b, st, cfg, maal={})
        total_loss(L, st.terms).backward()
        _sync(dev); t['step_losses_backward_s'] = time.perf_counter() - t0
        t0 = time.perf_counter()
        momentum_updates(st, b, z.detach(), bank_momentum=cfg.mem_momentum, shared_update=cfg.shared_update)
        _sync(dev); t['momentum_updates_s'] = time.perf_counter() - t0
        t['step'], t['step_cpu'] = t['step_losses_backward_s'] + t['momentum_updates_s'], time.process_time() - c0
        t0 = time.perf_counter()                                 # the other terms alone (base, vra, um), + backward
        zq = z.detach().clone().requires_grad_(True)
        total_loss(step_losses({'z': zq, 'mc': None, 'g': None}, b, st_other, cfg, maal={}), st_other.terms).backward()
        _sync(dev); t['losses_without_vrnl_s'] = time.perf_counter() - t0
        for name, mk in (('vrnl_loss_s', masks), ('vrnl_loss_every_query_s', every)):   # M18 with these masks / the bound
            zq = z.detach().clone().requires_grad_(True)
            t0 = time.perf_counter()
            vrnl_loss(zq[:len(iv)], zq[-len(ir):], p2.bank_v.features, p2.bank_r.features, mk, temp=cfg.temp).backward()
            _sync(dev); t[name] = time.perf_counter() - t0
        t['terms'] = sorted(L)
        t['neighbours_per_query'] = {k: float(m.sum(1).float().mean()) for k, m in masks.items()}
        return t

    one_step()                                                 # warm-up
    runs = []
    with timer() as tm:
        for _ in range(reps): runs.append(one_step())
    med = lambda k: float(np.median([r[k] for r in runs]))
    tm.wall, tm.cpu = med('step'), med('step_cpu')             # one step: step_losses + backward + momentum_updates (median)
    info = {k: med(k) for k in ('vrnl_masks_s', 'step_losses_backward_s', 'momentum_updates_s', 'vrnl_loss_s',
                                'vrnl_loss_every_query_s', 'losses_without_vrnl_s')}
    info.update(reps=reps, queries=f"{cfg.batch_size} + {cfg.batch_size}", terms=runs[0]['terms'],
                vrnl_sets=cfg.vrnl_sets, neighbours_per_query=runs[0]['neighbours_per_query'], camera_rule=cfg.camera_rule if cfg.camera_refine else None,
                per_epoch_steps=cfg.iters)
    return {}, info

# name, inputs (from the data or earlier stages), outputs saved for later stages, function, per step (x cfg.iters)?
STAGES = [
    ('plan', ('z_v', 'z_c', 'z_r', 'cam_v', 'cam_r', 'true_v', 'true_r'),
     ('y_v', 'y_r', 'links', 'passes', 'local_v', 'local_r', *NB_KEYS), _st_plan, False),
    ('build', ('z_v', 'z_c', 'z_r', 'cam_v', 'cam_r', 'true_v', 'true_r', 'y_v', 'y_r', 'links', 'passes', 'local_v',
               'local_r', *NB_KEYS), (), _st_build, False),
    ('step', ('z_v', 'z_c', 'z_r', 'cam_v', 'cam_r', 'true_v', 'true_r', 'y_v', 'y_r', 'links', 'passes', 'local_v',
              'local_r', *NB_KEYS), (), _st_step, True),
]
TENSORS = ('z_v', 'z_c', 'z_r')             # loaded as torch tensors on the device; the rest stay numpy arrays


# ------------------------------------------------------------------------------------------------ measuring
def _sync(device):
    import torch
    if torch.device(device).type == 'cuda': torch.cuda.synchronize(device)

def _rss_now_gb():
    with open('/proc/self/statm') as fh: return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e9

def _maxrss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9     # Linux: KiB

def _reset_hwm() -> bool:
    "Reset this process's RSS high-water mark to its current RSS (Linux clear_refs 5); False where not allowed."
    try:
        with open('/proc/self/clear_refs', 'w') as fh: fh.write('5')
        return True
    except OSError: return False

class _Timer:
    """Wall and CPU seconds and the peak memory of the block (the stage's own call), device-synchronised, read as the
    block ends (a breakdown run after it does not count); `scale` divides a block of repetitions."""
    def __init__(self, device):
        import torch
        self.device, self.cuda, self.wall, self.cpu, self.scale, self.mem = device, torch.device(device).type == 'cuda', None, None, 1.0, {}
    def __call__(self): return self
    def __enter__(self):
        import torch
        _sync(self.device)
        if self.cuda: torch.cuda.reset_peak_memory_stats(self.device); self.base = torch.cuda.memory_allocated(self.device)
        else: self.rss0, self.reset = _rss_now_gb(), _reset_hwm()
        self.w, self.c = time.perf_counter(), time.process_time(); return self
    def __exit__(self, *exc):
        import torch
        _sync(self.device); self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c
        if self.cuda:
            peak = torch.cuda.max_memory_allocated(self.device)
            self.mem = dict(peak_gb=peak / 1e9, delta_gb=(peak - self.base) / 1e9, memory='cuda max_memory_allocated')
        else:
            peak = _maxrss_gb()
            self.mem = dict(peak_gb=peak, delta_gb=max(0., peak - self.rss0), rss_before_gb=self.rss0,
                            memory='ru_maxrss after a high-water reset' if self.reset else 'ru_maxrss (no high-water reset)')

def run_stage(name, ctx, cfg, device='cpu', breakdown=True, reps=5) -> tuple:
    "Run stage `name` on `ctx` once (the step: `reps` times); returns (outputs, row: wall_s, cpu_s, memory, info)."
    _, _, _, fn, per_step = next(s for s in STAGES if s[0] == name)
    timer = _Timer(device)
    out, info = fn(ctx, cfg, timer, breakdown, reps) if per_step else fn(ctx, cfg, timer, breakdown)
    row = {'stage': name, 'per_step': per_step, 'info': info, 'load_average_1m': os.getloadavg()[0]}
    if timer.wall is None: row['skipped'] = info.get('skipped', 'not run'); return out, row
    row.update(wall_s=timer.wall * timer.scale, cpu_s=timer.cpu * timer.scale, **timer.mem)
    return out, row

def _load_ctx(work: Path, keys, device):
    import numpy as np, torch
    ctx = {}
    for k in keys:
        p = work/f'{k}.npy'
        if not p.exists(): ctx[k] = None; continue
        a = np.load(p)
        ctx[k] = torch.from_numpy(a).to(device) if k in TENSORS else a
    return ctx

def child_main(a):
    "One stage in this (fresh) process: load its inputs from --work, run it, save its outputs, print its row."
    import numpy as np, torch
    if a.threads: torch.set_num_threads(a.threads)
    if a.child == 'generate':
        t = time.perf_counter()
        d = sysu_like(**json.loads(a.sizes), seed=a.seed)
        for k, v in d.items(): np.save(Path(a.work)/f'{k}.npy', v)
        print(MARK + json.dumps({'stage': 'generate', 'wall_s': time.perf_counter() - t})); return
    if a.child == 'env':
        print(MARK + json.dumps(environment())); return
    if a.child == 'all':                                       # every stage in one process, as the trainer runs them
        keys = sorted({k for s in STAGES for k in s[1]} | {'true_v', 'true_r'})
        data = {k: v for k, v in _load_ctx(Path(a.work), keys, 'cpu').items() if v is not None}
        data = {k: (v.numpy() if hasattr(v, 'numpy') else v) for k, v in data.items()}
        rows = run_stages(data, a.device, breakdown=False, reps=a.reps, log=lambda *_: None)
        print(MARK + json.dumps({'stages': rows, 'totals': totals(rows, bench_config().iters)}, default=float)); return
    _warm_up()
    name, inputs, outputs = next(s[:3] for s in STAGES if s[0] == a.child)
    ctx = _load_ctx(Path(a.work), inputs, a.device)
    out, row = run_stage(name, ctx, bench_config(), a.device, breakdown=not a.no_breakdown, reps=a.reps)
    for k in outputs:
        if out.get(k) is not None: np.save(Path(a.work)/f'{k}.npy', np.asarray(out[k]))
    print(MARK + json.dumps(row, default=float))

def _warm_up():
    "First calls pay one-off costs (thread pools, lazy imports): cluster 300 blobs once, outside every timing."
    from usl_vireid_nb.cluster import blob_features, cluster
    import usl_vireid_nb.epoch  # noqa: F401  (timm etc.: imported before the stage's clock starts)
    cluster(blob_features(300, d=64, seed=1)[0], eps=0.6, min_samples=4, k1=30, k2=6)

def run_stages(data: dict, device='cpu', breakdown=True, reps=5, stages=None, log=print) -> list:
    "Every stage (or those named in `stages`) in this process, in order, on `data` (from `sysu_like`); the rows."
    import torch
    cfg, ctx, rows = bench_config(), {}, []
    for k, v in data.items(): ctx[k] = torch.as_tensor(v).to(device) if k in TENSORS else v
    _warm_up()
    for s in STAGES:
        if stages is not None and s[0] not in stages: continue
        out, row = run_stage(s[0], ctx, cfg, device, breakdown, reps)
        ctx.update(out); rows.append(row); log(_row_text(row))
    return rows


# ------------------------------------------------------------------------------------------------ reporting
def environment() -> dict:
    "CPU model and flags, threads, library versions, load, the package's path and commit."
    import numpy, scipy, sklearn, torch, faiss
    flags = ''
    try:
        with open('/proc/cpuinfo') as fh: info = fh.read()
        model = next((l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith('model name')), platform.processor())
        flags = next((l.split(':', 1)[1].split() for l in info.splitlines() if l.startswith('flags')), [])
    except OSError: model = platform.processor()
    keep = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'amx_int8')
    import usl_vireid_nb
    pkg = Path(usl_vireid_nb.__file__).resolve().parent
    git = lambda *c: subprocess.run(['git', '-C', str(pkg), *c], capture_output=True, text=True).stdout.strip()
    return {'cpu_model': model, 'cpu_flags': [f for f in keep if f in flags], 'cpu_count': os.cpu_count(),
            'usable_cores': len(os.sched_getaffinity(0)), 'torch_threads': torch.get_num_threads(),
            'faiss_omp_threads': faiss.omp_get_max_threads(), 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
            'torch_cpu_capability': torch.backends.cpu.get_cpu_capability(), 'python': platform.python_version(),
            'torch': torch.__version__, 'numpy': numpy.__version__, 'scipy': scipy.__version__,
            'sklearn': sklearn.__version__, 'faiss': faiss.__version__, 'faiss_gpus': faiss.get_num_gpus(),
            'cuda': torch.cuda.is_available(), 'package': str(pkg), 'commit': git('rev-parse', '--short', 'HEAD'),
            'dirty': bool(git('status', '--porcelain', '--untracked-files=no')), 'host': platform.node()}

def _row_text(r) -> str:
    if 'skipped' in r: return f"{r['stage']:<15} skipped: {r['skipped']}"
    return (f"{r['stage']:<15}{r['wall_s']:9.3f}{r['cpu_s']:9.2f}{r['peak_gb']:9.2f}{r['delta_gb']:9.2f}"
            + (f"   x{r['info']['per_epoch_steps']} steps" if r['per_step'] else ''))

def _breakdown_lines(r) -> list:
    return [f"  {k[:-2]:<27}{v:9.3f}" for k, v in r.get('info', {}).items() if k.endswith('_s') and isinstance(v, float)]

def totals(rows, iters: int) -> dict:
    "Seconds per epoch: the once-per-epoch stages, the step's share x iters, their sum; the largest peak; goals met?"
    once = sum(r['wall_s'] for r in rows if 'wall_s' in r and not r['per_step'])
    step = sum(r['wall_s'] for r in rows if 'wall_s' in r and r['per_step'])
    peak = max((r['peak_gb'] for r in rows if 'peak_gb' in r), default=0.)
    epoch = once + iters * step
    return {'once_per_epoch_s': once, 'per_step_s': step, 'iters': iters, 'steps_s': iters * step, 'epoch_s': epoch,
            'peak_gb': peak, 'goal_s': GOAL_S, 'goal_gb': GOAL_GB, 'meets_time': epoch <= GOAL_S,
            'meets_time_once_per_epoch': once <= GOAL_S, 'meets_memory': peak <= GOAL_GB,
            'share': {r['stage']: (r['wall_s'] * (iters if r['per_step'] else 1)) / epoch
                      for r in rows if 'wall_s' in r and epoch > 0}}

def table(rows, tot) -> str:
    head = f"{'stage':<15}{'wall s':>9}{'CPU s':>9}{'peak GB':>9}{'delta GB':>9}"
    lines = [head, '-' * len(head)]
    for r in rows: lines += [_row_text(r)] + _breakdown_lines(r)
    lines += ['-' * len(head),
              f"once per epoch {tot['once_per_epoch_s']:9.1f} s",
              f"per step       {tot['per_step_s']:9.3f} s  x {tot['iters']} = {tot['steps_s']:.1f} s",
              f"epoch          {tot['epoch_s']:9.1f} s  (goal {GOAL_S:.0f} s: {'met' if tot['meets_time'] else 'NOT met'}); "
              f"largest peak {tot['peak_gb']:.2f} GB (goal {GOAL_GB:.0f} GB: {'met' if tot['meets_memory'] else 'NOT met'})"]
    return '\n'.join(lines)

def _child(args, work, extra, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), '--work', str(work), *extra, *(['--set', *args.set] if args.set else [])] + \
          (['--threads', str(args.threads)] if args.threads else []) + (['--no-breakdown'] if args.no_breakdown else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    line = next((l for l in p.stdout.splitlines()[::-1] if l.startswith(MARK)), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(extra)} failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return json.loads(line[len(MARK):])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--small', action='store_true', help='1/20 of the images, all stages in one process')
    ap.add_argument('--inprocess', action='store_true', help='all stages in this process (no per-stage memory isolation)')
    ap.add_argument('--isolate', action='store_true', help='with --small: one child process per stage all the same')
    ap.add_argument('--json', default=None, help='write the results there')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    ap.add_argument('--reps', type=int, default=5, help='steps timed for the per-step stage')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-breakdown', action='store_true', help='skip the per-stage breakdown runs')
    ap.add_argument('--timeout', type=int, default=1800, help='seconds per child process')
    ap.add_argument('--no-one-process', action='store_true',
                    help='skip the second pass that runs every stage in one process (its peak is the epoch\'s)')
    ap.add_argument('--child', help=argparse.SUPPRESS); ap.add_argument('--work', help=argparse.SUPPRESS)
    ap.add_argument('--set', nargs='*', default=[], help="config overrides key=value (e.g. vrnl_sets=epoch)")
    ap.add_argument('--sizes', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    OVERRIDES[:] = a.set
    if a.child: return child_main(a)
    sizes = SMALL_SIZES if a.small else SYSU_SIZES
    t_start, load0, one = time.time(), os.getloadavg(), None
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    print(f"scale_bench: {sizes['n_v']} visible + {sizes['n_r']} infrared descriptors of 5 x 768 dims, "
          f"{sizes['n_ids']} identities, device {a.device}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    if a.inprocess or (a.small and not a.isolate):
        if a.threads:
            import torch; torch.set_num_threads(a.threads)
        env = environment()
        t = time.perf_counter(); data = sysu_like(**sizes, seed=a.seed); gen_s = time.perf_counter() - t
        rows = run_stages(data, a.device, not a.no_breakdown, a.reps)
        mode = 'one process'
    else:
        with tempfile.TemporaryDirectory(prefix='scale_bench_') as work:
            env = _child(a, work, ['--child', 'env'], a.timeout)
            gen_s = _child(a, work, ['--child', 'generate', '--sizes', json.dumps(sizes), '--seed', str(a.seed)],
                           a.timeout)['wall_s']
            rows = []
            for s in STAGES:
                rows.append(_child(a, work, ['--child', s[0], '--device', a.device, '--reps', str(a.reps)], a.timeout))
                print(_row_text(rows[-1]), flush=True)
            if not a.no_one_process:
                print('again, every stage in one process (no breakdown) ...', flush=True)
                one = _child(a, work, ['--child', 'all', '--device', a.device, '--reps', str(a.reps)], a.timeout)
                one = {'stages': [{k: r.get(k) for k in ('stage', 'wall_s', 'cpu_s', 'peak_gb', 'delta_gb', 'skipped')}
                                  for r in one['stages']], 'totals': one['totals']}
        mode = 'one child process per stage'
    tot = totals(rows, bench_config().iters)
    print('\n' + table(rows, tot))
    load1 = os.getloadavg()
    res = {'date': date, 'command': ' '.join(['python', 'bench/scale_bench.py', *(argv if argv is not None else sys.argv[1:])]),
           'mode': mode, 'device': a.device, 'environment': env, 'load_average_start': load0, 'load_average_end': load1,
           'data': {**sizes, 'regions': 4, 'dim_per_region': 768, 'D': 3840, 'seed': a.seed, 'knobs': KNOBS,
                    'generate_s': gen_s,
                    'quality': {k: v for r in rows if r['stage'] == 'plan' for k, v in r['info'].items()
                                if not k.endswith('_s')}},
           'config': {k: getattr(bench_config(), k) for k in ('eps', 'min_samples', 'k1', 'k2', 'mu', 'rho_intra',
                      'rho_inter', 'batch_ids', 'num_instances', 'iters', 'cam_norm', 'match_ca', 'vrnl_rule',
                      'camera_rule', 'um_rule', 'shared_build', 'vra_pass2', 'vrnl_sets')},
           'stages': rows, 'totals': tot, 'bench_wall_s': time.time() - t_start}
    if one is not None:
        res['one_process'] = one
        print(f"one process: epoch {one['totals']['epoch_s']:.1f} s, largest peak {one['totals']['peak_gb']:.2f} GB")
    print(f"load average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; bench wall {res['bench_wall_s']:.0f} s")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1, default=float) + '\n')
        print(f"wrote {a.json}")
    return res


if __name__ == '__main__':
    main()
