"""The notebooks are the source of truth: `nbdev_clean` then `nbdev_export` on a copy of the checkout must change nothing."""
import re, subprocess
from conftest import nbdev_bin

def test_notebooks_clean_and_exported(repo_copy):
    for cmd in ('nbdev_clean', 'nbdev_export'):
        r = subprocess.run([nbdev_bin(cmd)], cwd=repo_copy, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f'{cmd} failed: {r.stderr[-3000:]}'
    st = subprocess.run(['git', 'status', '--porcelain'], cwd=repo_copy, capture_output=True, text=True).stdout
    assert st.strip() == '', f'nbdev_clean + nbdev_export changed files (run both and commit):\n{st}'

MACHINE_PATH = re.compile(r'(/tmp/|/work/|/root/|/home/|/Users/|[A-Z]:\\\\)')

def _outputs_text(o) -> str:
    "The text of one output (stream, text/plain, html, error)."
    parts = [o.get('text', '')] + [o.get('data', {}).get(k, '') for k in ('text/plain', 'text/html', 'text/markdown')]
    parts += o.get('traceback', [])
    return ''.join(''.join(x) if isinstance(x, list) else str(x) for x in parts)

def test_book_outputs():
    """The chapters are committed with their outputs (tools/run_book.py): every chapter that draws shows at least one
    picture; each notebook <= 3 MB and nbs/ <= 25 MB; no output holds a machine path or an error; no execution counts."""
    import json
    from conftest import chapters
    total = 0
    for nb in chapters():
        size = nb.stat().st_size; total += size
        assert size <= 3_000_000, f'{nb.name} is {size / 1e6:.1f} MB (limit 3 MB)'
        cells = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        draws = any('plt.show()' in ''.join(c['source']) or 'display(Image' in ''.join(c['source']) for c in cells)
        outs = [o for c in cells for o in c.get('outputs', [])]
        if draws: assert any('image/png' in o.get('data', {}) for o in outs), f'{nb.name} draws but shows no picture (run tools/run_book.py)'
        for c in cells:
            assert c.get('execution_count') is None, f'{nb.name} has execution counts (nbdev_clean)'
            for o in c.get('outputs', []):
                assert o.get('output_type') != 'error', f'{nb.name} holds an error output'
                m = MACHINE_PATH.search(_outputs_text(o))
                assert not m, f'{nb.name}: an output holds a machine path: ...{_outputs_text(o)[max(0, m.start() - 60):m.end() + 60]}...'
    assert total <= 25_000_000, f'nbs/ holds {total / 1e6:.1f} MB of notebooks (limit 25 MB)'
