"""nbdev's docs pipeline: the pre-processing step before Quarto (what `nbdev_proc_nbs` runs on each notebook: show_doc
cells added, exported cells and every cell with an import executed, directives applied) must succeed on every chapter.
Quarto itself cannot be installed offline here; `nbdev_docs` builds the site where it is (see the README)."""
import os, subprocess, sys
from conftest import ROOT, chapters

SCRIPT = r'''
import os, sys, warnings
from execnb.nbio import read_nb
from nbdev.processors import FilterDefaults
warnings.simplefilter('ignore')
os.environ['IN_TEST'] = '1'
bad = []
for nb in sys.argv[1:]:
    try: FilterDefaults()(read_nb(nb))
    except Exception as e: bad.append(f"{nb}: {str(e).splitlines()[0]} ({e.__cause__!r})")
print('\n'.join(bad)); sys.exit(1 if bad else 0)
'''

def test_docs_preprocessing():
    nbs = [str(p) for p in chapters() if p.stem != 'index']
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg', PYTHONWARNINGS='ignore')
    r = subprocess.run([sys.executable, '-c', SCRIPT, *nbs], cwd=ROOT/'nbs', env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"nbdev's docs pre-processing failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
