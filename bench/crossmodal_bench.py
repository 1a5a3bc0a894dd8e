"""Timing of the cross-modal steps at SYSU-MM01 scale: VRA matching (chapter 08), VRNL neighbour search (chapter 09) and,
when chapter 10 exists, the uniform-merging components.

    python bench/crossmodal_bench.py            # SYSU-MM01 sizes on the CPU (or CUDA when available)
    python bench/crossmodal_bench.py --small    # a quick smoke run

Random clustered unit descriptors stand in for real ones: the cost of these steps depends on the sizes (and a little on
how many reliable neighbours there are), not on the values.
"""
import argparse, importlib.util, math, time
import torch
import torch.nn.functional as F
from usl_vireid_nb.vra import cluster_similarity, vra_match, link_matrix, shared_memories, matching_precision
from usl_vireid_nb.vrnl import vrnl_masks, vrnl_loss, neighbour_pairs


def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def timed(label, fn, device, repeat=1):
    "Run fn `repeat` times, print and return (best seconds, last result)."
    best, out = math.inf, None
    for _ in range(repeat):
        _sync(device); t0 = time.perf_counter(); out = fn(); _sync(device)
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<58s} {best:8.3f} s")
    return best, out

def fake_modality(n, centre, outlier_rate, gen, device, noise=1.0):
    """Unit descriptors (n, dim) around the rows of `centre` (K, dim) (noise of norm about `noise`), and pseudo-labels with
    every cluster 0..K-1 non-empty plus a share of -1 outliers (whose descriptors are pure noise)."""
    (n_clusters, dim), centre = centre.shape, F.normalize(centre, dim=1)
    y = torch.randint(0, n_clusters, (n,), generator=gen)
    y[:n_clusters] = torch.arange(n_clusters)                          # every cluster has a member
    z = centre[y] + noise / math.sqrt(dim) * torch.randn(n, dim, generator=gen)
    out = torch.rand(n, generator=gen) < outlier_rate; out[:n_clusters] = False
    y[out] = -1; z[out] = torch.randn(int(out.sum()), dim, generator=gen)
    return F.normalize(z, dim=1).to(device), y.to(device)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n-vis', type=int, default=22258, help='visible training images (SYSU-MM01: 22,258)')
    p.add_argument('--n-ir', type=int, default=11909, help='infrared training images (SYSU-MM01: 11,909)')
    p.add_argument('--clusters', type=int, default=500, help='clusters per modality')
    p.add_argument('--regions', type=int, default=4, help='N regions (SYSU-MM01: 4)')
    p.add_argument('--dim', type=int, default=768, help='d per region (ViT-B: 768); D = (N+1)d')
    p.add_argument('--bank', type=int, default=17000, help='instance bank size per modality for VRNL')
    p.add_argument('--batch', type=int, default=64, help='queries per modality in a batch')
    p.add_argument('--chunk', type=int, default=1024, help='queries per chunk in the full-bank pass')
    p.add_argument('--mu', type=int, default=3)
    p.add_argument('--rho', type=int, default=10)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-full', action='store_true', help='skip the full-bank neighbour pass')
    p.add_argument('--small', action='store_true', help='tiny sizes (smoke test)')
    a = p.parse_args()
    if a.small: a.n_vis, a.n_ir, a.clusters, a.dim, a.bank = 2000, 1000, 50, 32, 1500
    device, gen = torch.device(a.device), torch.Generator().manual_seed(0)
    D = (a.regions + 1) * a.dim
    print(f"device {device} ({torch.get_num_threads()} CPU threads), D = {D}, torch {torch.__version__}")

    print(f"-- VRA: {a.n_vis} visible + {a.n_ir} infrared instances, {a.clusters} clusters each")
    centre = torch.randn(a.clusters, D, generator=gen)                 # shared identities; a modality gap for infrared
    gap = 0.5 * F.normalize(torch.randn(D, generator=gen), dim=0)
    z_v, y_v = fake_modality(a.n_vis, centre, 0.1, gen, device)
    z_r, y_r = fake_modality(a.n_ir, F.normalize(centre, dim=1) + gap, 0.1, gen, device)
    _, S = timed('cluster_similarity (M13)', lambda: cluster_similarity(z_v, y_v, z_r, y_r), device, repeat=3)
    _, links = timed(f'vra_match {tuple(S.shape)} mu={a.mu} (M14)', lambda: vra_match(S, mu=a.mu), device, repeat=3)
    print(f"   {len(links)} links, matching precision {matching_precision(links, y_v.cpu(), y_v.cpu(), y_r.cpu(), y_r.cpu()):.3f}"
          " (cluster k of either modality is identity k here)")
    timed('link_matrix + shared_memories (M15)',
          lambda: (link_matrix(links, a.clusters, a.clusters), shared_memories(z_v, y_v, z_r, y_r, links)), device, repeat=3)
    if importlib.util.find_spec('usl_vireid_nb.um') is not None:
        from usl_vireid_nb.um import um_components
        timed('um_components (M19)', lambda: um_components(links, a.clusters, a.clusters), device, repeat=3)
    else:
        print("um_components (M19)                                        (usl_vireid_nb.um not built yet)")
    del z_v, z_r

    print(f"-- VRNL: banks of {a.bank} per modality, batch {a.batch}+{a.batch}, rho={a.rho}")
    bank_v, lab_v = fake_modality(a.bank, centre, 0.1, gen, device)
    bank_r, lab_r = fake_modality(a.bank, F.normalize(centre, dim=1) + gap, 0.1, gen, device)
    cams_v, cams_r = torch.randint(1, 5, (a.bank,), generator=gen), torch.randint(5, 7, (a.bank,), generator=gen)
    lab_v, lab_r = lab_v.cpu(), lab_r.cpu()
    idx_v, idx_r = torch.randperm(a.bank, generator=gen)[:a.batch], torch.randperm(a.bank, generator=gen)[:a.batch]
    q_v, q_r = bank_v[idx_v.to(device)].clone(), bank_r[idx_r.to(device)].clone()
    kw = dict(regions=a.regions, rho_intra=a.rho, rho_inter=a.rho, idx_v=idx_v, idx_r=idx_r,
              cams_v=cams_v, labels_v=lab_v, cams_r=cams_r, labels_r=lab_r)
    _, masks = timed('vrnl_masks: 4 neighbour sets + camera refinement (M16-17)',
                     lambda: vrnl_masks(q_v, q_r, bank_v, bank_r, **kw), device, repeat=3)
    print('   mean reliable set size ' + ', '.join(f"{k} {v.sum(1).float().mean().item():.1f}" for k, v in masks.items()))
    q_v.requires_grad_(); q_r.requires_grad_()
    timed('vrnl_loss forward + backward (M18)',
          lambda: vrnl_loss(q_v, q_r, bank_v, bank_r, masks).backward(), device, repeat=3)
    if not a.no_full:
        _, pairs = timed(f'full-bank pass v->v: {a.bank} queries in chunks of {a.chunk}',
                         lambda: neighbour_pairs(bank_v, bank_v, a.regions, a.rho, same_bank=True, batch_size=a.chunk),
                         device)
        print(f"   {len(pairs)} reliable pairs")

if __name__ == '__main__':
    main()
