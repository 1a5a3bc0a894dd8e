"""The paper preset itself (ViT-B/16 + PA-CBAM at 384x128, N = 4, from a weights file) trained through `usl-vireid-train`
on a tiny generated SYSU-MM01-layout tree: one phase-1 and one phase-2 epoch of one iteration (issue 13, item 9).

Only sizes, the schedule's length and the evaluation's cost are overridden (P x K, iterations, epochs, extraction batch,
one gallery trial, no flip): the architecture, the input size, the clustering and every loss are the preset's. The
weights file is made here: timm's `vit_base_patch16_224` with random weights (`pretrained=False`, nothing is downloaded)
saved as .safetensors, and as TransReID-style .pth files ('base.' keys nested under 'model' or 'state_dict'). The big
files (about 350 MB each, and the 690 MB checkpoint) are deleted at the end, not left in pytest's kept temp folders."""
import hashlib, json, os, subprocess, sys
from pathlib import Path
import pytest, torch

# the tiny tree: 3 training identities x 4 visible cameras x 1 image (12 visible, 6 infrared); 2 test identities
TREE = dict(n_train_ids=3, n_test_ids=2, n_images=1, seed=0)
OVERRIDES = ['epochs=2', 'phase2_start=2', 'iters=1', 'batch_ids=2', 'num_instances=2', 'extract_batch=16',
             'eval_trials=1', 'eval_flip=false', 'progress=false']
KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}
N_VIT_B = 150   # tensors of timm's ViT-B/16 without its head: the whole ViT of the paper preset


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
def vitb(tmp_path_factory):
    "{'sd': timm ViT-B/16 state dict (random, seeded), 'safetensors': its file}; the file is deleted afterwards."
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(1234)                        # not the trainer's seed: a loaded weight cannot be a re-initialised one
    sd = timm.create_model('vit_base_patch16_224', pretrained=False).state_dict()
    path = tmp_path_factory.mktemp('weights')/'vit_base_patch16_224.safetensors'
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    yield {'sd': sd, 'safetensors': path}
    path.unlink(missing_ok=True)


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    from usl_vireid_nb.synthetic import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp('data')/'sysu', **TREE)


def test_paper_preset_trains_through_the_cli(tmp_path, vitb, tree):
    "Exit 0; the load report in the log and in results.json (sha256, 150 of 150); a checkpoint of the paper architecture."
    out, st = tmp_path/'run', vitb['safetensors']
    try:
        p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', st, '--out', out, '--set', *OVERRIDES)
        assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        digest = sha256(st)
        assert (f"pretrained: {st.name} (sha256 {digest[:12]}): {N_VIT_B} of the {N_VIT_B} ViT tensors loaded (100%)"
                in p.stdout), p.stdout[:2000]

        res = json.loads((out/'results.json').read_text())
        rep = res['pretrained']
        assert (rep['path'], rep['sha256'], rep['arch']) == (str(st), digest, 'vit_base_patch16_224')
        assert (rep['n_backbone'], rep['n_backbone_loaded']) == (N_VIT_B, N_VIT_B) and rep['fraction'] >= 0.99
        assert rep['resized'] == ['vit.pos_embed: 14x14 -> 24x8'] and sorted(rep['dropped']) == ['head.bias', 'head.weight']
        assert rep['unexpected'] == [] and rep['mismatched'] == []
        assert not any(k.startswith('vit.') for k in rep['missing'])          # only PA-CBAM and the BNs start at init
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
        w = ck['model']
        assert w['vit.pos_embed'].shape == (1, 1 + 24 * 8, 768) and 'vit.blocks.11.mlp.fc2.weight' in w
        assert sum(k.startswith('vit.blocks.') and k.endswith('.attn.qkv.weight') for k in w) == 12
        for k in ('blocks.0.attn.qkv.weight', 'blocks.11.mlp.fc2.weight', 'cls_token'):   # from the file, then trained
            assert torch.allclose(w['vit.' + k], vitb['sd'][k], atol=1e-3), k
        assert not torch.equal(w['vit.blocks.0.attn.qkv.weight'], vitb['sd']['blocks.0.attn.qkv.weight'])
    finally:
        (out/'checkpoint.pt').unlink(missing_ok=True)


@pytest.fixture(scope='module')
def transreid_pth(vitb):
    "TransReID-style checkpoints of the same ViT: 'base.' keys under 'model', and 'module.base.' under 'state_dict'."
    files = {}
    for nest, prefix in (('model', 'base.'), ('state_dict', 'module.base.')):
        sd = {prefix + k: v for k, v in vitb['sd'].items() if not k.startswith('head.')}
        sd[prefix.replace('base.', '') + 'classifier.weight'] = torch.randn(395, 768)      # an ID head: dropped
        files[nest] = vitb['safetensors'].parent/f'transreid_{nest}.pth'
        torch.save({nest: sd, 'epoch': 120}, files[nest])
    yield files
    for f in files.values(): f.unlink(missing_ok=True)


def test_transreid_pth_fits_the_dry_run_config(tmp_path, tree, transreid_pth, vitb):
    "`--dry-run` accepts the file; the model its config describes loads all 150 ViT tensors from either nesting."
    from usl_vireid_nb.backbone import ReIDViT, load_pretrained
    from usl_vireid_nb.config import model_kwargs
    from usl_vireid_nb.train import make_config
    pth = transreid_pth['model']
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', pth, '--out', tmp_path/'dry', '--dry-run',
            '--set', *OVERRIDES, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = json.loads(p.stdout.splitlines()[0])
    assert (cfg['pretrained'], cfg['arch_preset'], cfg['img_h'], cfg['img_w']) == (str(pth), 'paper', 384, 128)
    assert not (tmp_path/'dry'/'checkpoint.pt').exists()
    model = ReIDViT(**model_kwargs(make_config('sysu', tree, pretrained=pth, overrides=OVERRIDES)))
    for nest, f in transreid_pth.items():
        if nest != 'model': torch.nn.init.zeros_(model.vit.blocks[7].attn.proj.weight.data)
        rep = model.load_report if nest == 'model' else load_pretrained(model, f)
        assert (rep.n_backbone_loaded, rep.n_backbone, rep.sha256) == (N_VIT_B, N_VIT_B, sha256(f)), nest
        assert rep.resized == ['vit.pos_embed: 14x14 -> 24x8'] and rep.unexpected == [] and len(rep.dropped) == 1, nest
        assert torch.equal(model.vit.blocks[7].attn.proj.weight, vitb['sd']['blocks.7.attn.proj.weight'])


def test_dry_run_checks_the_weights_file(tmp_path, tree, transreid_pth):
    "What issue 13 asks of `--dry-run`: the load report of a good file, exit 2 for a missing one."
    pth = transreid_pth['model']
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', pth, '--out', tmp_path/'dry', '--dry-run',
            timeout=300)
    assert p.returncode == 0 and f'{N_VIT_B} of the {N_VIT_B} ViT tensors loaded' in p.stdout + p.stderr
    p = cli(tmp_path, '--dataset', 'sysu', '--data-root', tree, '--pretrained', tmp_path/'missing.pth', '--out',
            tmp_path/'dry', '--dry-run', timeout=300)
    assert p.returncode == 2 and 'not found' in p.stderr
