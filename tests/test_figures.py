"""The book's figures are readable at 100% and colour-blind safe (issue 23's goal, exactly):

- every committed figure at >= 110 dpi effective (the PNG's pHYs chunk, which matplotlib writes; a picture without one,
  e.g. a PIL image, is held to the widths only), the median figure >= 700 px wide and at least
  80% of them >= 600 px wide;
- no font under 8 pt: the book's matplotlibrc (tools/run_book.py) sets none, and no chapter asks for one explicitly;
- a colour-blind-safe default colour cycle in that matplotlibrc.

The PNGs are the outputs `tools/run_book.py` commits, so the first test passes only once the book has been re-executed
with the current settings."""
import base64, importlib.util, json, re, statistics, struct
from conftest import ROOT, chapters

MIN_DPI, MEDIAN_PX, SHARE_600, MIN_PT = 110, 700, 0.8, 8

def png_info(b: bytes) -> tuple:
    "(width, height, dpi or None) of a PNG from its IHDR and pHYs chunks."
    w, h = struct.unpack('>II', b[16:24])
    i, dpi = 8, None
    while i < len(b):
        n, kind = struct.unpack('>I4s', b[i:i + 8])
        if kind == b'pHYs':
            x, _, unit = struct.unpack('>IIB', b[i + 8:i + 17])
            if unit == 1: dpi = x * 0.0254                      # pixels per metre -> per inch
        if kind in (b'pHYs', b'IDAT'): break
        i += 12 + n
    return w, h, dpi

def book_pngs() -> list:
    out = []
    for nb in chapters():
        for c in json.loads(nb.read_text())['cells']:
            for o in c.get('outputs', []):
                if 'image/png' in o.get('data', {}):
                    out.append((nb.name, *png_info(base64.b64decode(o['data']['image/png']))))
    return out

def _run_book():
    spec = importlib.util.spec_from_file_location('run_book', ROOT/'tools'/'run_book.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_png_info_reads_size_and_dpi(tmp_path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, _ = plt.subplots(figsize=(4, 2)); fig.savefig(tmp_path/'f.png', dpi=150); plt.close(fig)
    w, h, dpi = png_info((tmp_path/'f.png').read_bytes())
    assert (w, h) == (600, 300) and abs(dpi - 150) < 0.5

def test_committed_figures_are_readable():
    pngs = book_pngs()
    assert pngs, 'no figure in the committed chapters (run tools/run_book.py)'
    low = [f'{nb} ({w} px, {dpi:.0f} dpi)' for nb, w, _, dpi in pngs if dpi is not None and dpi < MIN_DPI - 0.5]
    assert not low, f'figures under {MIN_DPI} dpi (re-execute the book with tools/run_book.py): {low}'
    widths = [w for _, w, _, _ in pngs]
    assert statistics.median(widths) >= MEDIAN_PX, f'median figure width {statistics.median(widths)} px < {MEDIAN_PX}'
    narrow = [f'{nb} ({w} px)' for nb, w, _, _ in pngs if w < 600]
    assert len(narrow) <= (1 - SHARE_600) * len(pngs), f'{len(narrow)} of {len(pngs)} figures under 600 px: {narrow}'

def test_book_rc_is_readable_and_colour_blind_safe(tmp_path):
    import matplotlib as mpl
    rb = _run_book()
    (tmp_path/'matplotlibrc').write_text(rb.MATPLOTLIBRC)
    rc = mpl.rc_params_from_file(str(tmp_path/'matplotlibrc'), use_default_template=True)
    assert rc['figure.dpi'] >= MIN_DPI and float(rc['savefig.dpi']) >= MIN_DPI
    sizes = {k: rc[k] for k in ('font.size', 'axes.titlesize', 'axes.labelsize', 'xtick.labelsize', 'ytick.labelsize',
                                'legend.fontsize')}
    assert all(isinstance(v, (int, float)) and v >= MIN_PT for v in sizes.values()), sizes
    import seaborn as sns
    cycle = [c.lower() for c in rc['axes.prop_cycle'].by_key()['color']]
    assert cycle == sns.color_palette('colorblind').as_hex(), cycle

def test_no_chapter_asks_for_a_font_under_8_pt():
    bad = []
    for nb in chapters():
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            for m in re.finditer(r'\b(fontsize|labelsize|titlesize)\s*(?::\s*\w+\s*)?=\s*(\d+(?:\.\d+)?)\b', ''.join(c['source'])):
                if float(m.group(2)) < MIN_PT: bad.append(f'{nb.name}: {m.group(0)}')
    assert not bad, f'fonts under {MIN_PT} pt: {bad}'


def test_no_widget_state_in_the_book():
    "A static page cannot drive a widget: the committed chapters carry no saved widget state (tools/run_book.py drops it)."
    for nb in chapters():
        d = json.loads(nb.read_text())
        assert 'widgets' not in d['metadata'], f'{nb.name} carries saved widget state'
        assert not any('application/vnd.jupyter.widget-view+json' in o.get('data', {})
                       for c in d['cells'] for o in c.get('outputs', [])), f'{nb.name} shows a widget a static page cannot'
