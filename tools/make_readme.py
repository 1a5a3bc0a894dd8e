"""Write README.md from nbs/index.ipynb (Quarto, which `nbdev_readme` needs, cannot be installed offline here).

Markdown cells are copied as they are; code cells (none are exported from the index) are dropped."""
import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]
cells = json.loads((root/'nbs'/'index.ipynb').read_text())['cells']
md = [''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown']
(root/'README.md').write_text('<!-- written from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n'
                              + '\n\n'.join(md) + '\n')
