"""The diagnostics widgets in a real browser: voila serves `nbs/_diagnostics_demo.ipynb` on 127.0.0.1, headless Chromium
(Debian's `/usr/bin/chromium`, driven by Playwright) moves the matching panel's `mu` slider, and the drawn link count
(the `links: N` label) must change.

Needs `pip install voila playwright` (no browser download: Playwright drives the system Chromium) and
`apt-get install chromium`. Skips, saying which is missing, where they are not installed."""
import os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import ROOT

DEMO = ROOT/'nbs'/'_diagnostics_demo.ipynb'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
LINKS = re.compile(r'^links: (\d+)$')

def _chromium():
    for p in (os.environ.get('CHROMIUM'), '/usr/bin/chromium', shutil.which('chromium'), shutil.which('chromium-browser')):
        if p and Path(p).exists(): return p
    return None

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def voila_url(tmp_path):
    "Start voila on a free local port for the demo notebook; yield its URL; stop it (this process only)."
    pytest.importorskip('voila', reason='voila is not installed (pip install voila)')
    pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install playwright)')
    if _chromium() is None: pytest.skip('no Chromium at /usr/bin/chromium (apt-get install chromium) nor $CHROMIUM')
    port = _free_port()
    env = dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    log = open(tmp_path/'voila.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'voila', str(DEMO), '--no-browser', f'--port={port}',
                             '--Voila.ip=127.0.0.1', '--show_tracebacks=True'],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    try:
        for _ in range(300):   # the server itself is up in a few seconds; the kernel starts with the page
            if proc.poll() is not None: break
            try:
                urllib.request.urlopen(url + 'voila/static/', timeout=1)
            except urllib.error.HTTPError: break   # 404 from a live server is fine
            except OSError: time.sleep(0.1); continue
            break
        if proc.poll() is not None:
            pytest.fail(f'voila exited with {proc.returncode}:\n{(tmp_path/"voila.log").read_text()[-3000:]}')
        yield url
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()
        if os.environ.get('SHOW_VOILA_LOG'): print((tmp_path/'voila.log').read_text()[-5000:])

def _links(page) -> int:
    txt = page.locator('.usl-matching .usl-links').first.inner_text().strip()
    m = LINKS.match(txt)
    assert m, f'link label reads {txt!r}, expected "links: N"'
    return int(m.group(1))

def test_mu_changes_drawn_links(voila_url):
    from playwright import sync_api          # present: the fixture skipped otherwise
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(voila_url, timeout=60_000)
            label = page.locator('.usl-matching .usl-links').first
            label.wait_for(state='visible', timeout=60_000)
            page.wait_for_function("() => /^links: \\d+$/.test(document.querySelector('.usl-matching .usl-links')"
                                   "?.innerText.trim() ?? '')", timeout=30_000)
            before = _links(page)
            slider = page.locator('.usl-matching .usl-mu').first
            readout = slider.locator('.widget-readout')
            assert readout.inner_text().strip() == '3', f'mu starts at {readout.inner_text()!r}, expected 3'
            slider.locator('.noUi-handle').first.focus()
            page.keyboard.press('ArrowLeft'); page.keyboard.press('ArrowLeft')   # mu 3 -> 1
            page.wait_for_function("() => document.querySelector('.usl-matching .usl-mu .widget-readout')"
                                   ".innerText.trim() === '1'", timeout=10_000)
            page.wait_for_function(f"() => {{ const t = document.querySelector('.usl-matching .usl-links').innerText.trim();"
                                   f" return /^links: \\d+$/.test(t) && t !== 'links: {before}'; }}", timeout=30_000)
            after = _links(page)
            assert after != before, (before, after)
            assert after < before, f'a tighter cap (mu=1) should draw fewer links: {before} -> {after}'
            # and the figure was redrawn: the panel's image holds a PNG
            src = page.locator('.usl-matching img').first.get_attribute('src') or ''
            assert src.startswith('blob:') or src.startswith('data:image/png'), src[:40]
        finally:
            browser.close()
