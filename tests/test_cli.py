"""`usl-vireid-train` end to end on a tiny synthetic config: results, kill -9 + resume, bad keys, missing data, RegDB's trials."""
import json, os, shutil, signal, subprocess, sys
from pathlib import Path
import pytest, torch
from usl_vireid_nb.config import overrides_of, synthetic, tiny
from conftest import KEYS, TINY, cli, main_exit, regdb_tiny, run   # shared helpers; data_root and regdb_root are conftest fixtures

def weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['model']

KILL_SCRIPT = """import os, signal, sys
from usl_vireid_nb.train import main
from usl_vireid_nb.trainer import Callback
class KillAt(Callback):
    "Test aid: kill -9 this process at step `step` of epoch `epoch` (of RegDB trial `trial` when given)."
    order = 100
    def __init__(self, epoch, step=1, trial=None): self.epoch, self.step, self.trial = epoch, step, trial
    def after_step(self, tr):
        if tr.state.epoch == self.epoch and tr.it + 1 == self.step and self.trial in (None, tr.cfg.trial):
            os.kill(os.getpid(), signal.SIGKILL)
trial = os.environ.get('KILL_TRIAL')
sys.exit(main(callbacks=[KillAt(int(os.environ['KILL_EPOCH']), 1, int(trial) if trial else None)]))
"""

def killer(tmp_path):
    "The console entry point with a callback that kills its own process (SIGKILL) at $KILL_EPOCH (and $KILL_TRIAL)."
    script = tmp_path/'train_then_kill.py'
    script.write_text(KILL_SCRIPT)
    return [sys.executable, str(script)]

def test_run_and_interrupted_resume(tmp_path, data_root, monkeypatch):
    "2 epochs straight == killed (-9) in epoch 2, then --resume to 2 (weights allclose 1e-6); the dead run's lock is taken over."
    straight, resumed = tmp_path/'straight', tmp_path/'resumed'
    p = run(tmp_path, '--out', straight, '--data_root', data_root, '--set', *TINY, 'epochs=2')
    assert 'Rank-1' in p.stdout and 'untrained' in p.stdout and 'trained' in p.stdout
    res = json.loads((straight/'results.json').read_text())
    assert res['epochs_trained'] == 2 and res['config']['epochs'] == 2
    for part in ('untrained', 'final'):
        assert set(res[part]) == {'all', 'indoor'}
        for mode in ('all', 'indoor'): assert set(res[part][mode]) == KEYS
    for f in ('checkpoint.pt', 'log.csv', 'log.json', 'curves.png', 'config.json'): assert (straight/f).is_file(), f
    assert not (straight/'run.lock').exists()                                           # released at exit
    log = json.loads((straight/'log.json').read_text())
    assert [r['epoch'] for r in log] == [1, 2] and 'loss_base' in log[0] and 'clusters_v' in log[0]

    monkeypatch.setenv('KILL_EPOCH', '2')                                               # kill -9 at epoch 2's first step
    p = run(tmp_path, '--out', resumed, '--data_root', data_root, '--set', *TINY, 'epochs=2', check=False, cmd=killer(tmp_path))
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-2000:])
    assert torch.load(resumed/'checkpoint.pt', weights_only=True)['epoch'] == 1
    held = json.loads((resumed/'run.lock').read_text())                                  # the dead run's lock stays behind
    p = run(tmp_path, '--out', resumed, '--resume', 'epochs=2')                         # positional override
    assert 'resumed from' in p.stdout
    assert f"took over the stale lock of pid {held['pid']}" in p.stderr, p.stderr
    assert not (resumed/'run.lock').exists()
    a, b = weights(straight/'checkpoint.pt'), weights(resumed/'checkpoint.pt')
    assert a.keys() == b.keys()
    for k in a: assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert json.loads((resumed/'results.json').read_text())['epochs_trained'] == 2

def test_unknown_key_rejected(tmp_path):
    p = run(tmp_path, '--out', tmp_path/'x', '--set', 'epoch=3', check=False)
    assert p.returncode == 2
    assert "unknown config key 'epoch'" in p.stderr and 'valid keys:' in p.stderr and 'epochs' in p.stderr
    assert not (tmp_path/'x'/'checkpoint.pt').exists()

def test_missing_data(tmp_path, capsys):
    "Exit 2 with one line: no such data root (the console script itself), no root for RegDB, an empty root."
    p = run(tmp_path, '--dataset', 'sysu', '--data-root', tmp_path/'no_such_dir', '--out', tmp_path/'y', check=False)  # hyphen spelling
    assert p.returncode == 2 and 'no_such_dir' in p.stderr and 'Traceback' not in p.stderr
    code, out, err = main_exit(capsys, '--dataset', 'regdb', '--out', tmp_path/'y')
    assert code == 2 and 'needs --data_root' in err
    empty = tmp_path/'empty'; empty.mkdir()
    code, out, err = main_exit(capsys, '--dataset', 'sysu', '--data_root', empty, '--out', tmp_path/'y')
    assert code == 2 and 'layout' in err.lower(), err

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
    assert p.stderr.count('usl-vireid-train: error:') == 1 and 'Traceback' not in p.stderr
    assert not (out/'run.lock').exists()                                                # released on the error too

def test_regdb_trials(tmp_path, regdb_root, monkeypatch):
    "--trial 1,2: each trial in <out>/trial<k>, trials.json with per-trial and mean/std; killed in trial 2, --resume skips 1, resumes 2."
    out = tmp_path/'regdb'
    monkeypatch.setenv('KILL_EPOCH', '2'); monkeypatch.setenv('KILL_TRIAL', '2')
    args = ['--dataset', 'regdb', '--data-root', regdb_root, '--trial', '1,2', '--out', out, '--set', *regdb_tiny(regdb_root),
            'iters=1', 'epochs=2']
    p = run(tmp_path, *args, check=False, cmd=killer(tmp_path))
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-2000:])
    assert json.loads((out/'trial1'/'results.json').read_text())['epochs_trained'] == 2
    assert torch.load(out/'trial2'/'checkpoint.pt', weights_only=True)['epoch'] == 1 and not (out/'trial2'/'results.json').exists()
    first = json.loads((out/'trials.json').read_text())
    assert first['trials'] == [1] and first['n'] == 1                                 # written after each trial

    p = run(tmp_path, *args, '--resume')
    assert 'RegDB trial 1 (1 of 2): finished' in p.stdout and 'skipped' in p.stdout
    assert 'resumed from' in p.stdout and 'at epoch 1' in p.stdout
    s = json.loads((out/'trials.json').read_text())
    assert s['trials'] == [1, 2] and set(s['per_trial']) == {'1', '2'} and s['std_ddof'] == 1
    per = {k: json.loads((out/f'trial{k}'/'results.json').read_text()) for k in (1, 2)}
    for k in (1, 2):
        assert per[k]['config']['trial'] == k and per[k]['config']['dataset'] == 'regdb' and per[k]['epochs_trained'] == 2
    for mode in ('v2i', 'i2v'):
        vals = [per[k]['final'][mode]['mAP'] for k in (1, 2)]
        assert abs(s['mean'][mode]['mAP'] - sum(vals) / 2) < 1e-9
        assert abs(s['std'][mode]['mAP'] - abs(vals[0] - vals[1]) / 2 ** 0.5) < 1e-9   # sample std of two values
        assert s['per_trial']['2'][mode] == per[2]['final'][mode]
    assert 'mean±std' in p.stdout and 'v2i' in p.stdout
    assert not any(out.rglob('run.lock'))
