"""The paper preset itself (ViT-B/16 + PA-CBAM at 384x128, N = 4, two ICS stems) trained through `usl-vireid-train` on a
tiny generated SYSU-MM01-layout tree from a weights file of the layout every peer starts from: TransReID-SSL's
`vit_base_ics_cfs_lup.pth` (ViT-B/16 with its IBN convolution stem, pre-trained at 256x128), in each nesting such a file
comes in (DINO's checkpoint with `teacher` / `module.backbone.` and its `args`, bare, under `model`, under `state_dict`).

Only sizes, the schedule's length and the evaluation's cost are overridden (P x K, iterations, epochs, extraction batch,
one gallery trial, no flip): the architecture, the input size, the clustering and every loss are the preset's. The
weights files are made here: timm's `vit_base_patch16_224` built with our `ICSStem` at 256x128 with random weights
(`pretrained=False`, nothing is downloaded), whose state dict has the released file's key names and shapes; and a
plain timm ViT-B/16 (.safetensors), which loads into the linear-projection option and is refused by the paper preset.
The big files (about 350 MB each, and the checkpoint) are deleted at the end, not left in pytest's kept temp folders."""
import argparse, hashlib, json, os, subprocess, sys
from pathlib import Path
import pytest, torch

# the tiny tree: 3 training identities x 4 visible cameras x 1 image (12 visible, 6 infrared); 2 test identities
TREE = dict(n_train_ids=3, n_test_ids=2, n_images=1, seed=0)
OVERRIDES = ['epochs=2', 'phase2_start=2', 'iters=1', 'batch_ids=2', 'num_instances=2', 'extract_batch=16',
             'eval_trials=1', 'eval_flip=false', 'progress=false']
KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}
N_STEM = 24                      # tensors of an ICS stem: 3 convolutions, 2 IBNs, a BN, the projection
N_VIT = 150 - 2 + N_STEM         # timm's ViT-B/16 without its head, the linear projection replaced by the ICS stem
N_BACKBONE = N_VIT + N_STEM      # and the infrared stem, loaded from the file's one stem
N_PLAIN = 150                    # timm's ViT-B/16 with its linear projection, without its head


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''): h.update(block)
    return h.hexdigest()


def cli(tmp_path, *args, timeout=900):
    "`usl-vireid-train` in a fresh process (the console script's `main`), one BLAS thread as under pytest-xdist."
    script = tmp_path/'usl_vireid_train.py'
    script.write_text("import sys\nfrom usl_vireid_nb.train import main\nsys.exit(main())\n")
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope='module')
def ics(tmp_path_factory):
    "{'sd': an ICS ViT-B/16 state dict (random, seeded; the released file's keys and shapes), 'files': {nesting: path}}."
    import timm
    from safetensors.torch import save_file
    from usl_vireid_nb.backbone import ICSStem
    torch.manual_seed(1234)                        # not the trainer's seed: a loaded weight cannot be a re-initialised one
    sd = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0, img_size=(256, 128),
                           embed_layer=ICSStem).state_dict()
    assert sd['patch_embed.proj.weight'].shape == (768, 64, 8, 8) and sd['pos_embed'].shape == (1, 1 + 16 * 8, 768)
    d = tmp_path_factory.mktemp('weights')
    head = {'module.head.mlp.0.weight': torch.randn(64, 768), 'module.head.last_layer.weight_g': torch.randn(256, 1)}
    files = {'dino': d/'vit_base_ics_cfs_lup.pth', 'bare': d/'ics_bare.safetensors', 'model': d/'ics_model.pth',
             'state_dict': d/'ics_state_dict.pth'}
    torch.save({'teacher': {**{'module.backbone.' + k: v for k, v in sd.items()}, **head}, 'epoch': 100,
                'args': argparse.Namespace(arch='vit_base', patch_size=16, out_dim=65536)}, files['dino'])
    save_file({k: v.contiguous() for k, v in sd.items()}, str(files['bare']))
    torch.save({'model': sd, 'epoch': 1}, files['model'])
    torch.save({'state_dict': {'module.base.' + k: v for k, v in sd.items()}}, files['state_dict'])
    yield {'sd': sd, 'files': files}
    for f in files.values(): f.unlink(missing_ok=True)


@pytest.fixture(scope='module')
def timm_file(tmp_path_factory):
    "A plain timm ViT-B/16 (linear projection, 224x224, ImageNet head) as .safetensors."
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(99)
    path = tmp_path_factory.mktemp('timm')/'vit_base_patch16_224.safetensors'
    save_file({k: v.contiguous() for k, v in timm.create_model('vit_base_patch16_224', pretrained=False).state_dict().items()},
              str(path))
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    from usl_vireid_nb.synthetic import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('data')/'sysu', **TREE)


def test_paper_preset_trains_through_the_cli(tmp_path, ics, tree):
    "Exit 0 from DINO's checkpoint; the load report in the log and results.json (sha256, every tensor, both stems); a checkpoint."
    out, st = tmp_path/'run', ics['files']['dino']
    try:
        p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', st, '--out', out, '--set', *OVERRIDES)
        assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        digest = sha256(st)
        assert (f"pretrained: {st.name} (sha256 {digest[:12]}): {N_BACKBONE} of the {N_BACKBONE} ViT tensors loaded (100%)"
                in p.stdout), p.stdout[:2000]

        res = json.loads((out/'results.json').read_text())
        rep = res['pretrained']
        assert (rep['path'], rep['sha256'], rep['arch']) == (str(st), digest, 'vit_base_patch16_224')
        assert (rep['n_backbone'], rep['n_backbone_loaded'], rep['fraction']) == (N_BACKBONE, N_BACKBONE, 1.0)
        assert rep['resized'] == ['vit.pos_embed: 16x8 -> 24x8'] and len(rep['twice']) == N_STEM
        assert sorted(rep['dropped']) == ['module.head.last_layer.weight_g', 'module.head.mlp.0.weight']
        assert rep['unexpected'] == [] and rep['mismatched'] == []
        assert not any(k.startswith(('vit.', 'patch_embed_ir.')) for k in rep['missing'])   # only PA-CBAM and the BNs at init
        c = res['config']
        assert (c['dataset'], c['arch_preset'], c['img_h'], c['img_w'], c['regions']) == ('sysu', 'paper', 384, 128, 4)
        assert res['epochs_trained'] == 2
        for part in ('untrained', 'final'):
            assert set(res[part]) == {'all', 'indoor'} and all(set(res[part][m]) == KEYS for m in ('all', 'indoor'))

        log = json.loads((out/'log.json').read_text())                      # one phase-1 and one phase-2 epoch trained
        assert [(r['epoch'], r['phase']) for r in log] == [(1, 1), (2, 2)]
        assert {'loss_base', 'loss_rid', 'loss_ca'} <= set(log[0]) and not {'loss_vra', 'loss_vrnl'} & set(log[0])
        assert {'loss_vra', 'loss_vrnl', 'loss_um', 'links'} <= set(log[1]) and log[1]['links'] >= 1
        assert all(torch.isfinite(torch.tensor(r['loss_total'])) for r in log)

        ck = torch.load(out/'checkpoint.pt', map_location='cpu', weights_only=True)
        assert ck['epoch'] == 2 and json.loads(ck['config'])['pretrained'] == str(st)
        w, sd = ck['model'], ics['sd']
        assert w['vit.pos_embed'].shape == (1, 1 + 24 * 8, 768) and 'vit.blocks.11.mlp.fc2.weight' in w
        assert sum(k.startswith('vit.blocks.') and k.endswith('.attn.qkv.weight') for k in w) == 12
        for k in ('blocks.0.attn.qkv.weight', 'blocks.11.mlp.fc2.weight', 'cls_token', 'patch_embed.conv.0.weight'):
            assert torch.allclose(w['vit.' + k], sd[k], atol=1e-3), k          # from the file, then trained
        for k in ('conv.0.weight', 'conv.4.IN.weight', 'proj.weight'):          # the infrared stem came from the file too
            assert torch.allclose(w['patch_embed_ir.' + k], sd['patch_embed.' + k], atol=1e-3), k
        assert not torch.equal(w['vit.blocks.0.attn.qkv.weight'], sd['blocks.0.attn.qkv.weight'])
        assert not torch.equal(w['vit.patch_embed.conv.0.weight'], w['patch_embed_ir.conv.0.weight'])   # trained apart
    finally:
        (out/'checkpoint.pt').unlink(missing_ok=True)


def test_every_nesting_of_the_ics_file_through_dry_run(tmp_path, tree, ics):
    "`--dry-run` on the bare, 'model' and 'state_dict' files: every ViT tensor loaded, none mismatched, exit 0."
    for nest in ('bare', 'model', 'state_dict'):
        f = ics['files'][nest]
        p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', f, '--out', tmp_path/'dry', '--dry-run',
                '--set', *OVERRIDES, timeout=300)
        assert p.returncode == 0, (nest, p.stderr[-3000:])
        assert f"{N_BACKBONE} of the {N_BACKBONE} ViT tensors loaded (100%)" in p.stdout, (nest, p.stdout[-2000:])
        assert f"({N_STEM} of the infrared stem from the file's one stem)" in p.stdout and ', 0 mismatched' in p.stdout, nest
        cfg = json.loads(p.stdout.splitlines()[0])
        assert (cfg['pretrained'], cfg['arch_preset'], cfg['img_h'], cfg['img_w']) == (str(f), 'paper', 384, 128)
        assert not (tmp_path/'dry'/'checkpoint.pt').exists()


def test_timm_file_loads_into_the_linear_option_and_is_refused_by_the_paper_stem(tmp_path, tree, timm_file):
    "A timm ViT-B/16 file: the paper preset refuses it in one line naming both stems (exit 2); stem=patch loads it whole."
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', timm_file, '--out', tmp_path/'dry',
            '--dry-run', timeout=300)
    err = [l for l in p.stderr.splitlines() if l.startswith('usl-vireid-train: error:')]
    assert p.returncode == 2 and len(err) == 1, p.stderr[-3000:]
    assert "holds timm's linear patch projection" in err[0] and "built with TransReID-SSL's IBN convolution stem" in err[0]
    assert '--set stem=patch' in err[0]
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', timm_file, '--out', tmp_path/'dry',
            '--dry-run', '--set', 'stem=patch', 'modality_stems=false', timeout=300)
    assert p.returncode == 0 and f"{N_PLAIN} of the {N_PLAIN} ViT tensors loaded (100%)" in p.stdout, p.stderr[-3000:]
    assert '; 1 resized,' in p.stdout and ', 0 mismatched' in p.stdout


def test_dry_run_names_a_missing_file(tmp_path, tree):
    "Exit 2 and a one-line error for a weights file that is not there."
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', tmp_path/'missing.pth', '--out',
            tmp_path/'dry', '--dry-run', timeout=300)
    assert p.returncode == 2 and 'not found' in p.stderr
