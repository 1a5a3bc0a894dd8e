"""The diagnostics panels as a user sees them: a tiny trainer run is trained (seconds, `tiny()`), voila serves
`nbs/_diagnostics_demo.ipynb` on its checkpoint (`USL_DIAGNOSTICS_CHECKPOINT`, read by the demo through chapter 12b's
`state_from_checkpoint`) on 127.0.0.1, and headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright) looks:
the first view shows the strongest link with non-blank thumbnails of both modalities, no image on the page is broken,
moving the matching panel's `mu` slider changes the drawn link count (the `links: N` label) to what Python computes for
that state, and the merge tab shows its graph and thumbnails.

Needs `pip install voila playwright` (no browser download: Playwright drives the system Chromium) and
`apt-get install chromium`. Skips, saying which is missing, where they are not installed."""
import importlib.util, io, json, os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import numpy as np
import pytest
from conftest import CHROMIUM_ARGS, ROOT, chromium

DEMO = ROOT/'nbs'/'_diagnostics_demo.ipynb'
LINKS = re.compile(r'^links: (\d+)$')
MU_MAX = 10   # the panels' default slider range
# trains the tiny run, then writes what the page must show: the link count at each mu, from the same state
TRAIN = """
import json, sys
from pathlib import Path
from usl_vireid_nb.config import tiny
from usl_vireid_nb.trainer import Trainer
from usl_vireid_nb.analysis import state_from_checkpoint
from usl_vireid_nb.diagnostics import matching_view
out = Path(sys.argv[1])
Trainer(tiny(), out, log=lambda *a: None).fit()
st = state_from_checkpoint(out/'checkpoint.pt')
links = {m: matching_view(st, mu=m, plot=False)['n_links'] for m in range(1, int(sys.argv[2]) + 1)}
(out/'expected.json').write_text(json.dumps(dict(Kv=st.Kv, Kr=st.Kr, epoch=st.epoch, links=links)))
"""

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _stop(proc):
    "Stop one process this test started."
    if proc.poll() is None:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()

@pytest.fixture
def served(tmp_path):
    """Train the tiny run and start voila (on a free local port, the checkpoint in its environment) side by side; yield
    (URL, the expected numbers); stop both (these processes only)."""
    for mod, pkg in (('voila', 'voila'), ('playwright', 'playwright')):   # looked up, not imported (seconds saved)
        if importlib.util.find_spec(mod) is None: pytest.skip(f'{pkg} is not installed (pip install {pkg})')
    if chromium() is None: pytest.skip('no Chromium at /usr/bin/chromium (apt-get install chromium) nor $CHROMIUM')
    run, port = tmp_path/'run', _free_port()
    env = dict(os.environ, MPLBACKEND='Agg', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONWARNINGS='ignore',
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])),
               USL_DIAGNOSTICS_CHECKPOINT=str(run/'checkpoint.pt'))
    tlog, vlog = open(tmp_path/'train.log', 'w'), open(tmp_path/'voila.log', 'w')
    train = subprocess.Popen([sys.executable, '-c', TRAIN, str(run), str(MU_MAX)], cwd=ROOT, env=env,
                             stdout=tlog, stderr=subprocess.STDOUT)
    voila = subprocess.Popen([sys.executable, '-m', 'voila', str(DEMO), '--no-browser', f'--port={port}',
                              '--Voila.ip=127.0.0.1', '--show_tracebacks=True', '--KernelManager.shutdown_wait_time=1'],
                             cwd=ROOT, env=env, stdout=vlog, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    try:
        if train.wait(240) != 0:   # the kernel only starts with the page, so the checkpoint must exist first
            pytest.fail(f'the tiny run failed ({train.returncode}):\n{(tmp_path/"train.log").read_text()[-3000:]}')
        for _ in range(300):       # the server is up in a few seconds, mostly while the run trains
            if voila.poll() is not None: break
            try:
                urllib.request.urlopen(url + 'voila/static/', timeout=1)
            except urllib.error.HTTPError: break   # 404 from a live server is fine
            except OSError: time.sleep(0.1); continue
            break
        if voila.poll() is not None:
            pytest.fail(f'voila exited with {voila.returncode}:\n{(tmp_path/"voila.log").read_text()[-3000:]}')
        yield url, json.loads((run/'expected.json').read_text())
    finally:
        _stop(train); _stop(voila)
        tlog.close(); vlog.close()
        if os.environ.get('SHOW_VOILA_LOG'): print((tmp_path/'voila.log').read_text()[-5000:])

def _links(page) -> int:
    txt = page.locator('.usl-matching .usl-links').first.inner_text().strip()
    m = LINKS.match(txt)
    assert m, f'link label reads {txt!r}, expected "links: N"'
    return int(m.group(1))

def _pixels(locator) -> np.ndarray:
    "What the user sees of one element: a screenshot of it, as an (h, w) grey array."
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert('L'), np.float32)

def _no_broken_images(page, scope: str):
    "Every <img> under `scope` has loaded a picture (naturalWidth > 0): no broken-image icon."
    js = f"() => [...document.querySelectorAll('{scope} img')].map(i => [i.complete, i.naturalWidth, i.className])"
    page.wait_for_function(f"() => {{ const a = ({js})(); return a.length > 0 && a.every(x => x[0]); }}",
                           timeout=20_000)                      # all settled: loaded, or failed (a broken icon)
    imgs = page.evaluate(js)
    assert imgs and all(w > 0 for _, w, _ in imgs), f'broken or empty images under {scope}: {imgs}'
    return len(imgs)

def _thumbs_shown(page, scope: str, sides):
    "The two thumbnail strips under `scope`: captioned with `sides` and holding real pictures (not one flat colour)."
    caps = [c.strip() for c in page.locator(f'{scope} .usl-caption').all_inner_texts()]
    assert [c.split(' ')[0] for c in caps] == list(sides), caps
    for k, side in enumerate(sides):
        px = _pixels(page.locator(f'{scope} .usl-thumbs').nth(k))
        assert px.shape[0] >= 32 and px.shape[1] >= 32, (side, px.shape)
        assert px.std() > 10, f'{side} thumbnails look blank (grey std {px.std():.1f}, {caps[k]!r})'

def test_panels_on_checkpoint(served):
    from playwright import sync_api          # present: the fixture skipped otherwise
    url, exp = served
    n = {int(k): v for k, v in exp['links'].items()}
    assert n[1] != n[3], (f"the tiny run's state (Kv={exp['Kv']}, Kr={exp['Kr']}) draws {n[3]} links at mu=3 and at mu=1: "
                          "moving mu cannot show a change on it")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            page.goto(url, timeout=60_000)
            page.locator('.usl-matching .usl-links').first.wait_for(state='visible', timeout=60_000)
            page.wait_for_function("() => /^links: \\d+$/.test(document.querySelector('.usl-matching .usl-links')"
                                   "?.innerText.trim() ?? '')", timeout=30_000)
            # the first view: the link count Python computes, the strongest link selected, both modalities' thumbnails
            assert _links(page) == n[3], (_links(page), n[3])
            menu = page.locator('.usl-matching .usl-link-menu select').first
            assert menu.evaluate('s => [s.selectedIndex, s.options.length]') == [0, n[3]]
            assert menu.evaluate('s => s.options[0].text').startswith('v')
            _no_broken_images(page, '.usl-matching')
            _thumbs_shown(page, '.usl-matching', ('visible', 'infrared'))
            # mu 3 -> 1 redraws with fewer links
            slider = page.locator('.usl-matching .usl-mu').first
            assert slider.locator('.widget-readout').inner_text().strip() == '3'
            slider.locator('.noUi-handle').first.focus()
            page.keyboard.press('ArrowLeft'); page.keyboard.press('ArrowLeft')
            page.wait_for_function("() => document.querySelector('.usl-matching .usl-mu .widget-readout')"
                                   ".innerText.trim() === '1'", timeout=10_000)
            page.wait_for_function(f"() => document.querySelector('.usl-matching .usl-links').innerText.trim()"
                                   f" === 'links: {n[1]}'", timeout=30_000)
            assert _links(page) == n[1] and n[1] < n[3], (n[3], _links(page))
            src = page.locator('.usl-matching img').first.get_attribute('src') or ''
            assert src.startswith('blob:') or src.startswith('data:image/png'), src[:40]
            _no_broken_images(page, '.usl-matching')
            # the merge tab: its graph and the largest group's thumbnails, nothing broken
            page.locator('.lm-TabBar-tab', has_text='merge').first.click()
            page.locator('.usl-merge .usl-thumbs').first.wait_for(state='visible', timeout=10_000)
            assert page.locator('.usl-merge .usl-groups').first.inner_text().startswith('groups: ')
            _no_broken_images(page, '.usl-merge')
            px = _pixels(page.locator('.usl-merge .usl-thumbs').first)
            assert px.std() > 10, f'merge thumbnails look blank (grey std {px.std():.1f})'
        finally:
            browser.close()
