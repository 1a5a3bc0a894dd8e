"""The wheel a user installs: built from a copy of the checkout, it holds every module, the licence and the console scripts."""
import subprocess, sys, zipfile
from configparser import ConfigParser
from pathlib import Path
from conftest import ROOT

def _settings():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    return cfg['DEFAULT']

def _console_scripts(spec: str) -> dict:
    "settings.ini's `console_scripts` ('name=module:func' entries separated by white space) as {name: 'module:func'}."
    return dict((k.strip(), v.strip()) for k, v in (e.split('=', 1) for e in spec.split()))

def test_console_scripts_parse():
    "The reader of settings.ini's entries, checked by hand (a second script added later is read too)."
    assert _console_scripts('a=p.m:main  b-c=p.n:run') == {'a': 'p.m:main', 'b-c': 'p.n:run'}

def test_wheel_contents(repo_copy, tmp_path):
    "`pip wheel . --no-deps` builds a wheel with every .py of the package, the LICENSE, and settings.ini's console scripts."
    s = _settings()
    out = tmp_path/'wheel'
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '-q', '-w', str(out)], cwd=repo_copy,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f'pip wheel failed: {r.stderr[-3000:]}'
    wheels = list(out.glob(f"{s['lib_name']}-{s['version']}-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    z = zipfile.ZipFile(wheels[0])
    names = set(z.namelist())
    pkg = repo_copy/s['lib_path']
    modules = {p.relative_to(repo_copy).as_posix() for p in pkg.rglob('*.py') if '__pycache__' not in p.parts}
    assert f"{s['lib_path']}/synthetic.py" in modules and f"{s['lib_path']}/data.py" in modules
    assert not modules - names, f'modules missing from the wheel: {sorted(modules - names)}'
    dist_info = f"{s['lib_name']}-{s['version']}.dist-info"
    licences = [n for n in names if n.startswith(dist_info + '/') and n.rsplit('/', 1)[-1] == 'LICENSE']
    assert licences, f'no LICENSE in {dist_info}: {sorted(names)}'
    text = z.read(licences[0]).decode()
    assert text == (ROOT/'LICENSE').read_text() and 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert f"Copyright {s['copyright']}" in text
    eps = ConfigParser(delimiters=['=']); eps.optionxform = str
    eps.read_string(z.read(f'{dist_info}/entry_points.txt').decode())
    scripts = _console_scripts(s['console_scripts'])
    assert scripts, 'settings.ini declares no console script'
    assert dict(eps['console_scripts']) == scripts
    assert 'Apache-2.0' in z.read(f'{dist_info}/METADATA').decode()
