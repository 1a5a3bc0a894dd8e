"""The book as a reader sees it: two executed chapters rendered to HTML (`jupyter nbconvert --to html`) and opened in
headless Chromium (the browser test's setup): every image loads and none is blank. Skips, saying why, where Chromium or
Playwright is missing; fails when the chapters carry no pictures (run tools/run_book.py)."""
import io, json, subprocess, sys
from pathlib import Path
import pytest
from conftest import CHROMIUM_ARGS, ROOT, chromium

CHAPTERS = ['05_pacbam', '08_vra']        # the house examples: hand-worked cases and pictures

def _has_pictures(nb: Path) -> bool:
    return any('image/png' in o.get('data', {}) for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))

def test_executed_chapters_render_with_their_pictures(tmp_path):
    pw = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install playwright)')
    if chromium() is None: pytest.skip('no Chromium at /usr/bin/chromium (apt-get install chromium) nor $CHROMIUM')
    from PIL import Image, ImageStat
    nbs = [ROOT/'nbs'/f'{c}.ipynb' for c in CHAPTERS]
    assert all(_has_pictures(nb) for nb in nbs), 'the chapters carry no pictures: run tools/run_book.py'
    pages = []
    for nb in nbs:
        r = subprocess.run([sys.executable, '-m', 'nbconvert', '--to', 'html', str(nb), '--output-dir', str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        pages.append(tmp_path/f'{nb.stem}.html')
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1200, 'height': 900})
            for html in pages:
                page.goto(html.as_uri(), timeout=60_000)
                imgs = page.locator('img')
                n = imgs.count()
                assert n >= 1, f'{html.name}: no image in the rendered chapter'
                broken = page.evaluate("() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length")
                assert broken == 0, f'{html.name}: {broken} of {n} images do not load'
                for k in range(n):
                    shot = Image.open(io.BytesIO(imgs.nth(k).screenshot())).convert('L')
                    assert ImageStat.Stat(shot).stddev[0] > 5, f'{html.name}: image {k} is blank'
        finally: browser.close()
