"""Write README.md from nbs/index.ipynb (Quarto, which `nbdev_readme` needs, cannot be installed offline here).

Markdown cells are copied as they are; code cells (none are exported from the index) are dropped. After the marker line
`<!-- measured: ... -->` the table of measured results is inserted, rendered from bench/results/*.json by chapter 12c's
`measured_table` (never typed by hand), and after `<!-- run: ... -->` the main job's measured time and result (12c's
`run_facts`, from demo_speed.json). The index's relative links point at the chapters beside it (that is where the docs site has them); in the
README at the top of the repository they gain the `nbs/` prefix (`readme_links`)."""
import json, re
from pathlib import Path

from usl_vireid_nb.results import measured_table, run_facts

MARKER = '<!-- measured:'
RUN_MARKER = '<!-- run:'

def readme_links(line: str) -> str:
    "A line of the index with its relative links (`](01_augment.ipynb)`, `](reconstruction.md#m3)`) rebased onto `nbs/`."
    return re.sub(r'\]\((?!https?:|#|/|nbs/)([^)\s]+\.(?:ipynb|md)(?:#[^)]*)?)\)', r'](nbs/\1)', line)

def readme_text(root: Path) -> str:
    "The README's text for the checkout at `root`."
    cells = json.loads((root/'nbs'/'index.ipynb').read_text())['cells']
    md = [''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown']
    lines = []
    for line in '\n\n'.join(md).split('\n'):
        lines.append(readme_links(line))
        if line.startswith(MARKER): lines += ['', measured_table(root/'bench'/'results')]
        if line.startswith(RUN_MARKER): lines += ['', run_facts(root/'bench'/'results')]
    return ('<!-- written from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n'
            + '\n'.join(lines) + '\n')

if __name__ == '__main__':
    root = Path(__file__).resolve().parents[1]
    (root/'README.md').write_text(readme_text(root))
