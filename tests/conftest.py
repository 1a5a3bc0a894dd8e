"""Shared fixtures and helpers for the tests that cannot live in a notebook: test files import from here, never from each other."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest
from usl_vireid_nb.config import overrides_of, synthetic, tiny

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'

def chapters():
    "The chapter notebooks, in order (nbdev skips `_`-prefixed scratch notebooks)."
    return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

@pytest.fixture
def repo_copy(tmp_path):
    "A copy of the tracked + untracked-not-ignored files of the checkout, as a fresh git repo with one commit."
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split('\0')
    dst = tmp_path/'repo'
    for f in filter(None, files):
        src = ROOT/f
        if not src.exists() and not src.is_symlink(): continue
        (dst/f).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink(): os.symlink(os.readlink(src), dst/f)
        else: shutil.copy2(src, dst/f)
    git = ['git', '-c', 'user.email=t@t', '-c', 'user.name=t']
    subprocess.run(['git', 'init', '-q'], cwd=dst, check=True)
    subprocess.run(['git', 'add', '-A'], cwd=dst, check=True)
    subprocess.run(git + ['commit', '-qm', 'snapshot'], cwd=dst, check=True)
    return dst

def nbdev_bin(name):
    "Path of an nbdev console script installed beside this Python."
    p = Path(sys.executable).parent/name
    return str(p) if p.exists() else shutil.which(name)


# ---------------------------------------------------------------- the command line on the tiny run
# The tiny run of chapter 10a (`tiny()`: 6 training ids, the `test` ViT, 2 iterations per epoch, phase 2 from epoch 2),
# given to the command line as the overrides that turn the default preset into it.
TINY = [o for o in overrides_of(tiny(), synthetic()) if not o.startswith('epochs=')]
KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}

def console_script(tmp_path, name: str, module: str) -> list:
    "The installed console script `name`, or (not installed) a two-line script that calls `module.main` the same way."
    exe = Path(sys.executable).parent/name
    if exe.exists(): return [sys.executable, str(exe)]
    script = tmp_path/(name.replace('-', '_') + '.py')
    script.write_text(f"import sys\nfrom {module} import main\nsys.exit(main())\n")
    return [sys.executable, str(script)]

def cli(tmp_path):
    "`usl-vireid-train` as a command."
    return console_script(tmp_path, 'usl-vireid-train', 'usl_vireid_nb.train')

def run(tmp_path, *args, check=True, cmd=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'default'}   # the warnings some tests read
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

def main_exit(capsys, *args):
    "(exit status, stdout, stderr) of the console script's `main(argv)` run in this process (its parser and code path)."
    from usl_vireid_nb.train import main
    try: main([str(a) for a in args]); code = 0
    except SystemExit as e: code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err

@pytest.fixture(scope='module')
def regdb_root(tmp_path_factory):
    "A generated RegDB layout (10 trials of 6 training / 4 test identities, 4 images per identity and modality)."
    from usl_vireid_nb.synthetic import make_synthetic
    root = tmp_path_factory.mktemp('regdb')/'synthetic'
    make_synthetic(root, n_train_ids=6, n_test_ids=4, n_images=1, seed=0, regdb=True, regdb_images=4)
    return root/'RegDB'

def regdb_tiny(root):
    "`tiny()` as overrides of the RegDB preset (its data set, root and trial left to the flags)."
    from usl_vireid_nb.config import regdb
    return [o for o in overrides_of(tiny(), regdb(root)) if not o.startswith(('dataset=', 'data_root=', 'trial=', 'eval_trials='))]

def one_error_line(err: str, prog: str = 'usl-vireid-train') -> str:
    "The single error line of `err` (warnings may come before it); fails on a traceback or a second error."
    assert 'Traceback' not in err, err
    errors = [l for l in err.splitlines() if l.startswith(f'{prog}: error: ')]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err
    return errors[0]

# ---------------------------------------------------------------- usl-vireid-eval on a saved run
def eval_cli(tmp_path):
    "`usl-vireid-eval` as a command."
    return console_script(tmp_path, 'usl-vireid-eval', 'usl_vireid_nb.evaluate')

def run_eval(tmp_path, *args, check=True):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    p = subprocess.run(eval_cli(tmp_path) + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
    if check and p.returncode != 0: raise AssertionError(f"exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p

def saved_run(cfg, out):
    "A run folder whose checkpoint is the trainer's own `save` of its untrained model (no training needed to test evaluation)."
    from usl_vireid_nb.trainer import Trainer
    return Trainer(cfg, out, log=lambda *a: None).save()

# ---------------------------------------------------------------- a headless browser
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']

def chromium():
    for p in (os.environ.get('CHROMIUM'), '/usr/bin/chromium', shutil.which('chromium'), shutil.which('chromium-browser')):
        if p and Path(p).exists(): return p
    return None
