"""Each chapter notebook is a test module: run it with `nbdev_test` (skipping the `tst_flags` cells: notest slow gpu).

nbdev_test prints only `Success.`; running it once per notebook here gives CI a per-notebook pytest line."""
import os, subprocess
import pytest
from conftest import ROOT, chapters, nbdev_bin

@pytest.mark.parametrize('nb', chapters(), ids=lambda p: p.stem)
def test_notebook(nb):
    # one BLAS thread per notebook: pytest-xdist already runs one notebook per core
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg', PYTHONWARNINGS='ignore')
    r = subprocess.run([nbdev_bin('nbdev_test'), '--path', str(nb), '--n_workers', '0'], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}'

def test_every_chapter_exports_a_module():
    "Each chapter's `default_exp` module exists in the package (the exported code is importable)."
    import json, importlib
    for nb in chapters():
        cells = json.loads(nb.read_text())['cells']
        exp = [l.split('default_exp', 1)[1].strip() for c in cells if c['cell_type'] == 'code'
               for l in ''.join(c['source']).splitlines() if l.startswith('#| default_exp')]
        if nb.stem == 'index': continue
        assert exp, f'{nb.name} has no `#| default_exp`'
        importlib.import_module(f'usl_vireid_nb.{exp[0]}')
