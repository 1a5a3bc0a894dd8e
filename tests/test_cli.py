"""`usl-vireid-train` end to end on a tiny synthetic config: results, interrupt + resume, bad keys, missing data."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from usl_vireid_nb.config import overrides_of, synthetic, tiny

# The tiny run of chapter 10a (`tiny()`: 6 training ids, the `test` ViT, 2 iterations per epoch, phase 2 from epoch 2),
# given to the command line as the overrides that turn the default preset into it.
TINY = [o for o in overrides_of(tiny(), synthetic()) if not o.startswith('epochs=')]
KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}

def cli(tmp_path):
    "The installed console script, or (not installed) a two-line script that calls `main` the same way."
    exe = Path(sys.executable).parent/'usl-vireid-train'
    if exe.exists(): return [sys.executable, str(exe)]
    script = tmp_path/'usl_vireid_train.py'
    script.write_text("import sys\nfrom usl_vireid_nb.train import main\nsys.exit(main())\n")
    return [sys.executable, str(script)]

def run(tmp_path, *args, check=True, cmd=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    p = subprocess.run((cmd or cli(tmp_path)) + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
    if check and p.returncode != 0: raise AssertionError(f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p

@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    "One synthetic set shared by the runs (make_synthetic is idempotent)."
    from usl_vireid_nb.synthetic import make_synthetic
    root = tmp_path_factory.mktemp('data')/'synthetic'
    make_synthetic(root, n_train_ids=6, n_test_ids=4, n_images=2, seed=0)
    return root

def weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['model']

def test_run_and_interrupted_resume(tmp_path, data_root):
    "2 epochs straight == 1 epoch then --resume to 2 (weights allclose 1e-6); results.json has every key."
    straight, resumed = tmp_path/'straight', tmp_path/'resumed'
    p = run(tmp_path, '--out', straight, '--data_root', data_root, '--set', *TINY, 'epochs=2')
    assert 'Rank-1' in p.stdout and 'untrained' in p.stdout and 'trained' in p.stdout
    res = json.loads((straight/'results.json').read_text())
    assert res['epochs_trained'] == 2 and res['config']['epochs'] == 2
    for part in ('untrained', 'final'):
        assert set(res[part]) == {'all', 'indoor'}
        for mode in ('all', 'indoor'): assert set(res[part][mode]) == KEYS
    for f in ('checkpoint.pt', 'log.csv', 'log.json', 'curves.png', 'config.json'): assert (straight/f).is_file(), f
    log = json.loads((straight/'log.json').read_text())
    assert [r['epoch'] for r in log] == [1, 2] and 'loss_base' in log[0] and 'clusters_v' in log[0]

    run(tmp_path, '--out', resumed, '--data_root', data_root, '--set', *TINY, 'epochs=1')     # "interrupted" after 1
    assert torch.load(resumed/'checkpoint.pt', weights_only=True)['epoch'] == 1
    p = run(tmp_path, '--out', resumed, '--resume', 'epochs=2')                             # positional override
    assert 'resumed from' in p.stdout
    a, b = weights(straight/'checkpoint.pt'), weights(resumed/'checkpoint.pt')
    assert a.keys() == b.keys()
    for k in a: assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert json.loads((resumed/'results.json').read_text())['epochs_trained'] == 2

def test_unknown_key_rejected(tmp_path):
    p = run(tmp_path, '--out', tmp_path/'x', '--set', 'epoch=3', check=False)
    assert p.returncode == 2
    assert "unknown config key 'epoch'" in p.stderr and 'valid keys:' in p.stderr and 'epochs' in p.stderr
    assert not (tmp_path/'x'/'checkpoint.pt').exists()

def test_missing_data(tmp_path):
    p = run(tmp_path, '--dataset', 'sysu', '--data-root', tmp_path/'no_such_dir', '--out', tmp_path/'y', check=False)  # hyphen spelling
    assert p.returncode == 2 and 'no_such_dir' in p.stderr and 'Traceback' not in p.stderr
    p = run(tmp_path, '--dataset', 'regdb', '--out', tmp_path/'y', check=False)
    assert p.returncode == 2 and 'needs --data_root' in p.stderr
    empty = tmp_path/'empty'; empty.mkdir()
    p = run(tmp_path, '--dataset', 'sysu', '--data_root', empty, '--out', tmp_path/'y', check=False)
    assert p.returncode == 2 and 'layout' in p.stderr.lower(), p.stderr

def test_nan_keeps_last_checkpoint(tmp_path, data_root):
    "A NaN loss at epoch 2 ends with exit 3 and a clear message; the epoch-1 checkpoint still loads."
    out = tmp_path/'nan'
    script = tmp_path/'train_with_nan.py'     # the console entry point with the test aid InjectNaN (chapter 11)
    script.write_text("import sys\nfrom usl_vireid_nb.train import main\nfrom usl_vireid_nb.trainer import InjectNaN\n"
                      "sys.exit(main(callbacks=[InjectNaN(2)]))\n")
    p = run(tmp_path, '--out', out, '--data_root', data_root, '--set', *TINY, 'epochs=2', check=False,
            cmd=[sys.executable, str(script)])
    assert p.returncode == 3 and 'non-finite loss' in p.stderr, p.stderr
    ck = torch.load(out/'checkpoint.pt', weights_only=True)
    assert ck['epoch'] == 1
