"""Execute every chapter of the book in order, in book mode, and save the outputs in place (then `nbdev_clean`).

Book mode is the sizes the prose promises, not `nbdev_test`'s tiny ones: `IN_TEST` is unset, so chapter 13 runs the
default demo and the other chapters their full studies. Seeds are fixed in the chapters, figures are drawn with the
book's matplotlib settings (`MATPLOTLIBRC`: 150 dpi, fonts of 9-12 pt, seaborn's colour-blind-safe 'colorblind'
cycle (Okabe-Ito hues, no two greys among the first colours), a perceptually uniform colour map), progress bars are off, and each chapter runs in its own kernel in `nbs/`. Afterwards `nbdev_clean` strips the
metadata and keeps the outputs, so the committed notebooks show their pictures and printed checks (as fastai's and
fastcore's do) and nbdev renders the docs from them.

    python tools/run_book.py                      # every chapter (about half an hour on 2 CPU cores)
    python tools/run_book.py 05_pacbam 08_vra     # some chapters
"""
import argparse, os, subprocess, sys, tempfile, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'

def chapters(names=()):
    "The chapter notebooks in book order ('10' < '10a' < '10b' < '11'), `_`-prefixed scratch notebooks left out."
    import re
    key = lambda p: (int(re.match(r'\d+', p.stem).group()), p.stem) if re.match(r'\d', p.stem) else (-1, p.stem)
    nbs = sorted((p for p in NBS.glob('*.ipynb') if not p.name.startswith('_')), key=key)
    return [p for p in nbs if not names or p.stem in names or p.name in names]

# The book's figures: readable at 100% (>= 110 dpi effective, no font under 8 pt) and colour-blind safe. 150 dpi makes a
# matplotlib-default 6.4-inch figure 960 px wide and a 4-inch one 600 px; the PNGs stay small (the book <= 25 MB).
CB10 = ['0173B2', 'DE8F05', '029E73', 'D55E00', 'CC78BC', 'CA9161', 'FBAFE4', '949494', 'ECE133', '56B4E9']  # seaborn 'colorblind'
MATPLOTLIBRC = '\n'.join([
    'figure.dpi: 150', 'savefig.dpi: 150',
    'font.size: 10', 'axes.titlesize: 11', 'axes.labelsize: 10', 'xtick.labelsize: 9', 'ytick.labelsize: 9',
    'legend.fontsize: 9', 'legend.title_fontsize: 9', 'figure.titlesize: 12',
    "axes.prop_cycle: cycler('color', [" + ', '.join(f"'{c}'" for c in CB10) + '])',
    'patch.facecolor: 0173B2', 'image.cmap: viridis', ''])   # hex without '#': a matplotlibrc comment starts with it

SKIP = 'skip-execution'                # the tag nbclient leaves unexecuted

def eval_false(cell) -> bool:
    "Whether a code cell carries nbdev's `#| eval: false` directive (in the directive lines at its top)."
    import re
    for line in cell.source.splitlines():
        if not line.startswith('#|'): break
        if re.match(r'#\|\s*eval\s*:\s*false\b', line, re.I): return True
    return False

WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = '(an interactive panel: it needs a running kernel; run the notebook, or voila nbs/_diagnostics_demo.ipynb)'

def drop_widget_state(nb) -> int:
    """A static page cannot drive a widget: drop the notebook's saved widget state (chapter 12's panels stored 0.9 MB of
    it) and let each widget's output say what it is instead of a repr. Returns the number of widget outputs replaced."""
    nb.metadata.pop('widgets', None)
    n = 0
    for c in nb.cells:
        for o in c.get('outputs', []):
            if WIDGET_VIEW in o.get('data', {}):
                o['data'] = {'text/plain': WIDGET_NOTE}; n += 1
    return n

def run_one(path: Path, env: dict, timeout: int) -> float:
    """Execute `path` in a fresh kernel (cwd nbs/) and write it back with its outputs; the seconds it took. Cells marked
    `#| eval: false` are not run (as in `nbdev_test`): they stay as they are, without outputs."""
    nb = nbformat.read(path, as_version=4)
    skipped = [c for c in nb.cells if c.cell_type == 'code' and eval_false(c)]
    for c in skipped: c.metadata['tags'] = c.metadata.get('tags', []) + [SKIP]
    t = time.time()
    old = dict(os.environ); os.environ.clear(); os.environ.update(env)
    try: NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(NBS)}}).execute()
    finally: os.environ.clear(); os.environ.update(old)
    for c in skipped:
        c.metadata['tags'] = [x for x in c.metadata['tags'] if x != SKIP]
        if not c.metadata['tags']: del c.metadata['tags']
        c.outputs, c.execution_count = [], None
    drop_widget_state(nb)
    nbformat.write(nb, path)
    return time.time() - t

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('names', nargs='*', help='chapter stems (default: all)')
    ap.add_argument('--timeout', type=int, default=3600, help='seconds per cell')
    a = ap.parse_args(argv)
    rc = Path(tempfile.mkdtemp())/'matplotlibrc'
    rc.write_text(MATPLOTLIBRC)
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env.update(MATPLOTLIBRC=str(rc.parent), TQDM_DISABLE='1', PYTHONWARNINGS='ignore')
    todo, t0 = chapters(a.names), time.time()
    for k, p in enumerate(todo, 1):
        print(f"[{k}/{len(todo)}] {p.name} ...", end=' ', flush=True)
        print(f"{run_one(p, env, a.timeout):.0f} s", flush=True)
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=ROOT, check=True)
    print(f"book executed in {time.time() - t0:.0f} s; outputs saved, nbdev_clean done")

if __name__ == '__main__':
    main()
