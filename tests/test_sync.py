"""The notebooks are the source of truth: `nbdev_clean` then `nbdev_export` on a copy of the checkout must change nothing."""
import subprocess
from conftest import nbdev_bin

def test_notebooks_clean_and_exported(repo_copy):
    for cmd in ('nbdev_clean', 'nbdev_export'):
        r = subprocess.run([nbdev_bin(cmd)], cwd=repo_copy, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f'{cmd} failed: {r.stderr[-3000:]}'
    st = subprocess.run(['git', 'status', '--porcelain'], cwd=repo_copy, capture_output=True, text=True).stdout
    assert st.strip() == '', f'nbdev_clean + nbdev_export changed files (run both and commit):\n{st}'

def test_no_outputs_committed():
    "Committed notebooks carry no outputs and no execution counts (nbdev_clean keeps them small and diffable)."
    import json
    from conftest import chapters
    for nb in chapters():
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] == 'code':
                assert not c.get('outputs'), f'{nb.name} has committed outputs'
                assert c.get('execution_count') is None, f'{nb.name} has execution counts'
