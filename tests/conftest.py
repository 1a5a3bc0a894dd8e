"""Shared helpers for the tests that cannot live in a notebook."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest

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
