"""Issue 16 at the command line: every failure a user can cause ends in one line `usl-vireid-train: error: ...` and its
documented exit status (2 bad input, 3 non-finite loss, 4 I/O, 5 output folder in use), found before training.

Fast failures run the console script's `main(argv)` in this process (the same parser and code path as the installed
script); whatever needs a real process (a truncated JPEG, a pickle payload, two runs at once, a full disk) runs it as a
subprocess."""
import json, os, resource, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest, torch
from usl_vireid_nb.config import tiny
from usl_vireid_nb.runtime import LOCK_NAME, acquire_lock, load_checkpoint, lock_record, release_lock
from usl_vireid_nb.cli import EXIT_CODES
from usl_vireid_nb.train import main
from conftest import TINY, cli, main_exit, one_error_line, run   # shared helpers; data_root is a conftest fixture

ROOT = Path(__file__).resolve().parents[1]

def copy_data(data_root, dst):
    shutil.copytree(data_root, dst)
    return dst

@pytest.fixture(scope='module')
def epoch1_run(tmp_path_factory, data_root):
    "A tiny run folder after one epoch (checkpoint, logs, results), copied by the tests that break its disk."
    out = tmp_path_factory.mktemp('epoch1')/'run'
    try: main(['--out', str(out), '--data_root', str(data_root), '--set', *TINY, 'epochs=1'])
    except SystemExit as e: assert e.code == 0, e.code
    return out

# --- 2: bad input, found before training --------------------------------------------------------------------------------

def test_truncated_jpeg_then_skip_bad(tmp_path, data_root, capsys):
    "A truncated training JPEG: exit 2 before any model or training, naming the file; skip_bad=true trains and counts it."
    root = copy_data(data_root, tmp_path/'data')
    bad = root/'cam1'/'0001'/'0001.jpg'
    bad.write_bytes(bad.read_bytes()[:300])
    out = tmp_path/'run'
    p = run(tmp_path, '--out', out, '--data_root', root, '--set', *TINY, 'epochs=1', check=False)
    assert p.returncode == 2, p.stderr
    line = one_error_line(p.stderr)
    assert str(bad) in line and '1 of' in line and 'skip_bad=True drops them' in line, line
    assert 'untrained' not in p.stdout and not (out/'checkpoint.pt').exists() and not (out/LOCK_NAME).exists()

    code, o, err = main_exit(capsys, '--out', out, '--data_root', root, '--set', *TINY, 'epochs=1', 'skip_bad=true')
    assert code == 0 and 'usl-vireid-train: warning: preflight: skipped 1 bad image' in err, err
    res = json.loads((out/'results.json').read_text())
    assert res['config']['skip_bad'] is True and res['data']['preflight']['n_bad'] == 1
    assert res['data']['bad_images'][0][0] == str(bad) and res['epochs_trained'] == 1

def test_kept_config_and_layout_errors(tmp_path, data_root, capsys):
    "Clean before, kept so: a missing split file, the data root one level too high, a bad override value, an unknown key."
    root = copy_data(data_root, tmp_path/'data')
    (root/'exp'/'train_id.txt').unlink()
    code, out, err = main_exit(capsys, '--dataset', 'sysu', '--data-root', root, '--out', tmp_path/'a', '--set', *TINY)
    assert code == 2 and 'train_id.txt' in one_error_line(err)
    code, out, err = main_exit(capsys, '--dataset', 'sysu', '--data-root', data_root.parent, '--out', tmp_path/'a', '--set', *TINY)
    assert code == 2 and 'layout' in one_error_line(err).lower()
    code, out, err = main_exit(capsys, '--out', tmp_path/'a', '--set', 'epochs=many')
    assert code == 2 and "bad value 'many' for epochs (expected int)" in one_error_line(err)
    code, out, err = main_exit(capsys, '--out', tmp_path/'a', 'epoch=3')
    assert code == 2 and "unknown config key 'epoch'" in one_error_line(err)
    code, out, err = main_exit(capsys, '--dataset', 'regdb', '--data-root', root, '--trial', '11', '--out', tmp_path/'a')
    assert code == 2 and "bad --trial '11'" in one_error_line(err)
    assert not (tmp_path/'a').exists()                                   # nothing was written for any of them

def test_paper_preset_needs_pretrained(tmp_path, data_root, capsys):
    "The paper preset without --pretrained: exit 2 naming --pretrained, before anything is written; pretrained=none warns."
    for extra in (('--dry-run',), ()):
        code, out, err = main_exit(capsys, '--dataset', 'sysu', '--data-root', data_root, '--out', tmp_path/'p', *extra)
        assert code == 2 and 'pass --pretrained FILE' in one_error_line(err)
    assert not (tmp_path/'p').exists()
    code, out, err = main_exit(capsys, '--dataset', 'sysu', '--data-root', data_root, '--dry-run', '--set', 'pretrained=none')
    assert code == 0, err
    assert 'usl-vireid-train: warning: pretrained=none: ViT-B/16 from random weights' in err
    assert "model: the 'paper' backbone" in out and 'pretrained: none (random initialisation)' in out
    assert 'training images decode' in out                                # the dry run read and decoded the data set

def test_weights_files(tmp_path, data_root, capsys):
    "--dry-run tests a weights file: a good one prints its load report; garbage and a ResNet state dict exit 2, also in a run."
    from usl_vireid_nb.backbone import ReIDViT
    from usl_vireid_nb.config import model_kwargs
    good, garbage, resnet = tmp_path/'vit.pth', tmp_path/'garbage.pth', tmp_path/'resnet18.pth'
    torch.save({'model': ReIDViT(**model_kwargs(tiny())).vit.state_dict()}, good)
    garbage.write_bytes(os.urandom(2048))
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7), 'bn1.weight': torch.ones(64), 'layer1.0.conv1.weight':
                torch.zeros(64, 64, 3, 3), 'fc.weight': torch.zeros(1000, 512), 'fc.bias': torch.zeros(1000)}, resnet)
    code, out, err = main_exit(capsys, '--dry-run', '--pretrained', good, '--set', *TINY)
    assert code == 0 and 'ViT tensors loaded (100%)' in out, (out, err)
    code, out, err = main_exit(capsys, '--dry-run', '--pretrained', garbage, '--set', *TINY)
    assert code == 2 and f'{garbage} is not a weights file' in one_error_line(err)
    code, out, err = main_exit(capsys, '--dry-run', '--pretrained', resnet, '--set', *TINY)
    assert code == 2 and 'not weights for this ViT; refused' in one_error_line(err)
    code, out, err = main_exit(capsys, '--dry-run', '--pretrained', tmp_path/'missing.pth', '--set', *TINY)
    assert code == 2 and 'pretrained weights not found' in one_error_line(err)
    out_dir = tmp_path/'run'                                               # a real run stops before its first epoch
    code, out, err = main_exit(capsys, '--out', out_dir, '--data_root', data_root, '--pretrained', resnet, '--set', *TINY)
    assert code == 2 and 'refused' in one_error_line(err)
    assert not (out_dir/'checkpoint.pt').exists() and not (out_dir/LOCK_NAME).exists() and 'epoch   1' not in out

class _Exploit:
    "A pickle payload: unpickling it would run a shell command."
    def __init__(self, flag): self.flag = flag
    def __reduce__(self): return (os.system, (f'touch {self.flag}',))

def test_bad_checkpoint_on_resume(tmp_path, capsys):
    "--resume of a checkpoint carrying a pickle payload: exit 2 in one line, the payload never runs; a garbage file: 2."
    out, flag = tmp_path/'run', tmp_path/'pwned'
    out.mkdir()
    torch.save({'config': tiny().to_json(), 'x': _Exploit(flag)}, out/'checkpoint.pt')
    p = run(tmp_path, '--out', out, '--resume', check=False)
    assert p.returncode == 2 and not flag.exists()
    line = one_error_line(p.stderr)
    assert f"{out/'checkpoint.pt'} was refused by torch.load(weights_only=True): its pickle holds" in line and 'system' in line
    (out/'checkpoint.pt').write_bytes(os.urandom(4096))
    code, o, err = main_exit(capsys, '--out', out, '--resume')
    assert code == 2 and 'is not a readable checkpoint' in one_error_line(err)
    (out/'checkpoint.pt').write_bytes(b'')                                   # a truncated (empty) checkpoint
    code, o, err = main_exit(capsys, '--out', out, '--resume')
    assert code == 2 and 'is not a readable checkpoint' in one_error_line(err)

def test_debug_reraises(tmp_path, capsys):
    "--debug: the exception itself, with its traceback, instead of the one line."
    from usl_vireid_nb.config import ConfigError
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"): main(['--out', str(tmp_path/'a'), '--debug', 'epoch=3'])

def test_help_lists_exit_codes(capsys):
    "--help ends with the table of exit statuses; the README documents the same statuses."
    code, out, err = main_exit(capsys, '--help')
    assert code == 0 and 'exit status:' in out
    for k, v in EXIT_CODES.items(): assert f"{k:>3}  {v}" in out, k
    readme = (ROOT/'README.md').read_text()
    for k in (0, 1, 2, 3, 4, 5, 130, 143): assert f'| {k} |' in readme, k

# --- 5: the output folder is in use -------------------------------------------------------------------------------------

HOLD_SCRIPT = """import sys, time
from pathlib import Path
from usl_vireid_nb.train import main
from usl_vireid_nb.trainer import Callback
class Hold(Callback):
    "Test aid: once training is about to start, say so in a file and wait until another file appears (at most 120 s)."
    def __init__(self, started, release): self.started, self.release = Path(started), Path(release)
    def before_fit(self, tr):
        self.started.write_text('1'); t = time.time()
        while not self.release.exists() and time.time() - t < 120: time.sleep(0.1)
sys.exit(main(sys.argv[3:], callbacks=[Hold(sys.argv[1], sys.argv[2])]))
"""

def test_two_runs_one_folder(tmp_path, data_root, capsys):
    "A second run into a folder a live run holds exits 5 naming the holder, and changes nothing; the first finishes."
    script, started, release, out = tmp_path/'hold.py', tmp_path/'started', tmp_path/'release', tmp_path/'run'
    script.write_text(HOLD_SCRIPT)
    args = ['--out', out, '--data_root', data_root, '--set', *TINY, 'epochs=1']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    first = subprocess.Popen([sys.executable, str(script), str(started), str(release), *map(str, args)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t = time.time()
        while not started.exists() and first.poll() is None and time.time() - t < 240: time.sleep(0.2)
        assert started.exists(), first.communicate()[1][-3000:]
        holder = json.loads((out/LOCK_NAME).read_text())
        code, o, err = main_exit(capsys, *args)                               # the second run
        assert code == 5, err
        line = one_error_line(err)
        assert f"{out} is in use: pid {first.pid} on {socket.gethostname()} since {holder['started']}" in line, line
        assert '--out' in line and str(out) in line                            # the holder's command
        assert json.loads((out/LOCK_NAME).read_text()) == holder and not (out/'checkpoint.pt').exists()
    finally:
        release.write_text('1')
        o, e = first.communicate(timeout=300)
    assert first.returncode == 0, e[-3000:]
    assert load_checkpoint(out/'checkpoint.pt')['epoch'] == 1 and not (out/LOCK_NAME).exists()

def test_lock_of_another_host(tmp_path, capsys):
    "A lock written on another host cannot be checked from here: exit 5, and the message says which file to delete."
    out = tmp_path/'run'; out.mkdir()
    (out/LOCK_NAME).write_text(json.dumps(dict(lock_record(), host='gpu-node-7', pid=12345)))
    code, o, err = main_exit(capsys, '--out', out, '--set', *TINY)
    assert code == 5 and 'pid 12345 on gpu-node-7' in one_error_line(err) and f'delete {out/LOCK_NAME}' in err

# --- 4: I/O ---------------------------------------------------------------------------------------------------------------

def test_unwritable_output_folder(tmp_path, data_root, capsys):
    "--out where a folder cannot be made (under a regular file): exit 4 naming the path and the free space, before training."
    (tmp_path/'a_file').write_text('x')
    code, o, err = main_exit(capsys, '--out', tmp_path/'a_file'/'run', '--data_root', data_root, '--set', *TINY)
    line = one_error_line(err)
    assert code == 4 and f"cannot write {tmp_path/'a_file'/'run'/LOCK_NAME}" in line and 'free on its file system' in line

def _check_failed_then_resume(capsys, out, code, err, reason, cleanup):
    "After a failed epoch-2 save (exit `code`, `err`): 4 naming checkpoint.pt and `reason`, epoch 1 intact; then --resume finishes."
    assert code == 4, (code, err[-3000:])
    line = one_error_line(err)
    assert f"cannot write {out/'checkpoint.pt'}: {reason}" in line and 'free on its file system' in line, line
    assert load_checkpoint(out/'checkpoint.pt')['epoch'] == 1                # the previous checkpoint is intact
    assert not list(out.glob('*.tmp')) and not (out/LOCK_NAME).exists()    # no half file, the lock released
    cleanup()
    code, o, err = main_exit(capsys, '--out', out, '--resume', 'epochs=2')
    assert code == 0 and 'resumed from' in o and 'at epoch 1' in o, err
    assert json.loads((out/'results.json').read_text())['epochs_trained'] == 2
    assert load_checkpoint(out/'checkpoint.pt')['epoch'] == 2

@pytest.fixture
def small_tmpfs(tmp_path):
    "A 32 MB tmpfs (root only: skipped with the reason where it cannot be mounted)."
    mnt = tmp_path/'disk'; mnt.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', str(mnt)], capture_output=True, text=True)
    if r.returncode != 0: pytest.skip(f"cannot mount a tmpfs here ({(r.stderr or r.stdout).strip()[:200]}); "
                                      "test_write_fails_file_size_limit covers the same path")
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], capture_output=True)

def test_full_disk(capsys, epoch1_run, small_tmpfs):
    "A full disk while saving epoch 2: exit 4 with the path and the free space, epoch 1 intact; --resume continues from it."
    out = small_tmpfs/'run'
    shutil.copytree(epoch1_run, out)
    filler = small_tmpfs/'filler'
    with open(filler, 'wb') as f: f.write(b'\0' * (shutil.disk_usage(small_tmpfs).free - (96 << 10)))  # leave 96 kB
    code, o, err = main_exit(capsys, '--out', out, '--resume', 'epochs=2')
    _check_failed_then_resume(capsys, out, code, err, 'No space left on device [ENOSPC]', filler.unlink)

def test_write_fails_file_size_limit(tmp_path, epoch1_run, capsys):
    "Without root: a 1 MB file-size limit (RLIMIT_FSIZE) makes the epoch-2 checkpoint's write fail as a full disk would."
    out = tmp_path/'run'
    shutil.copytree(epoch1_run, out)
    def limit(): resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    p = subprocess.run(cli(tmp_path) + ['--out', str(out), '--resume', 'epochs=2'], capture_output=True, text=True, env=env,
                       timeout=300, preexec_fn=limit)
    _check_failed_then_resume(capsys, out, p.returncode, p.stderr, 'File too large [EFBIG]', lambda: None)
