"""What a notebook cannot check about itself: forward-only imports between chapters, README vs index, install metadata."""
import ast, json, re
from pathlib import Path
from conftest import ROOT, chapters

MODULES = ['data', 'synthetic', 'augment', 'metrics', 'cluster', 'memory', 'pacbam', 'backbone', 'maal', 'vra', 'vrnl', 'um',
           'config', 'runtime', 'trainer', 'diagnostics', 'figures', 'analysis', 'results', 'cli', 'evaluate', 'train']

def _chapter_key(stem):
    "Sort key (number, letter) of a chapter notebook's stem: '00_data' -> (0, ''), '00a_synthetic' -> (0, 'a'), '10b_x' -> (10, 'b')."
    m = re.fullmatch(r'(\d+)([a-z]?)_\w+', stem)
    assert m, f'chapter notebook {stem!r} is not named NN_<module> or NNa_<module>'
    return int(m.group(1)), m.group(2)

def _chapter_order():
    "Module name -> chapter key (number, letter), read from the notebooks' `default_exp`; '00' < '00a' < '01'."
    order = {}
    for nb in chapters():
        for c in json.loads(nb.read_text())['cells']:
            m = re.search(r'^#\| default_exp (\w+)', ''.join(c['source']), re.M)
            if m: order[m.group(1)] = _chapter_key(nb.stem); break
    return order

def test_chapter_key_orders_letter_suffixes():
    "Inserted chapters sort after their number and before the next one, by (number, letter)."
    stems = ['12a_x', '01_b', '10b_y', '00a_s', '10_u', '00_d', '10a_t', '12_z', '11_w']
    got = sorted(stems, key=_chapter_key)
    assert got == ['00_d', '00a_s', '01_b', '10_u', '10a_t', '10b_y', '11_w', '12_z', '12a_x'], got
    assert _chapter_key('00a_synthetic') == (0, 'a') and _chapter_key('13_train') == (13, '')

def test_imports_only_go_forward():
    "Chapter k imports only from chapters before k (the book reads front to back)."
    order = _chapter_order()
    assert set(MODULES) <= set(order), f'missing chapters: {set(MODULES) - set(order)}'
    for mod, k in order.items():
        tree = ast.parse((ROOT/'usl_vireid_nb'/f'{mod}.py').read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module: names = [node.module]
            elif isinstance(node, ast.Import): names = [a.name for a in node.names]
            for n in names:
                if n.startswith('usl_vireid_nb.') or (isinstance(node, ast.ImportFrom) and node.level):
                    dep = n.split('.')[-1]
                    if dep in order: assert order[dep] < k, f'{mod} (ch. {k}) imports {dep} (ch. {order[dep]})'

def test_readme_matches_index():
    "README.md is written from nbs/index.ipynb (Quarto is not installable offline): every markdown line of the index is in it."
    import importlib.util
    spec = importlib.util.spec_from_file_location('make_readme', ROOT/'tools'/'make_readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    readme = (ROOT/'README.md').read_text()
    cells = json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells']
    for c in cells:
        if c['cell_type'] != 'markdown': continue
        for line in ''.join(c['source']).splitlines():
            line = mod.readme_links(line)      # the index's links to chapters gain nbs/ in the README
            if line.strip(): assert line.strip() in readme, f'README.md lacks index line: {line!r}'

def test_readme_has_exactly_two_commands():
    "The README's two set-up commands: one runs the main job, one runs the tests, and .ci/run runs the latter."
    readme = (ROOT/'README.md').read_text()
    blocks = re.findall(r'```(?:bash|sh)\n(.*?)```', readme, re.S)
    cmds = [b.strip() for b in blocks if b.strip().startswith(('pip ', '(apt-get', 'apt-get', 'python -m pip'))]
    assert len(cmds) == 2, cmds
    assert 'usl-vireid-train' in cmds[0] and 'pytest' in cmds[1]
    assert cmds[1] in (ROOT/'.ci'/'run').read_text()

def test_console_script_and_requirements():
    "setup.py declares the CLI and the one faiss package per platform (never both)."
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    assert 'usl_vireid_nb.train:main' in cfg['DEFAULT']['console_scripts']
    setup = (ROOT/'setup.py').read_text()
    assert 'faiss-gpu' in setup and 'faiss-cpu' in setup and 'platform_machine' in setup
    from importlib.metadata import entry_points
    assert any(e.name == 'usl-vireid-train' for e in entry_points(group='console_scripts')), 'package not installed (pip install -e .)'

def test_version_matches():
    import usl_vireid_nb
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    assert usl_vireid_nb.__version__ == cfg['DEFAULT']['version']

def test_readme_names_exist():
    "Every name the README's 'Using the package' section promises is a function, class or config field of the package."
    import importlib
    from dataclasses import fields
    readme = (ROOT/'README.md').read_text()
    section = readme.split('## Using the package', 1)[1].split('\n## ', 1)[0]
    names = set(re.findall(r'`([A-Za-z_][A-Za-z0-9_]*)`', section))
    for mod, imported in re.findall(r'from usl_vireid_nb\.(\w+) import ([\w, ]+)', section):
        names |= {n.strip() for n in imported.split(',')}
    found = set()
    for m in MODULES: found |= set(dir(importlib.import_module(f'usl_vireid_nb.{m}')))
    from usl_vireid_nb.config import TrainConfig
    found |= {f.name for f in fields(TrainConfig)}
    assert names and not names - found, f'README promises names that do not exist: {sorted(names - found)}'

def test_readme_results_match_the_json():
    "The README's measured table is exactly what chapter 12c renders from bench/results/*.json now (run tools/make_readme.py)."
    import importlib.util
    spec = importlib.util.spec_from_file_location('make_readme', ROOT/'tools'/'make_readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    assert (ROOT/'README.md').read_text() == mod.readme_text(ROOT), 'README.md is stale: run python tools/make_readme.py'
