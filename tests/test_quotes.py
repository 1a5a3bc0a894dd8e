"""Every sentence a chapter attributes to the paper is the paper's, word for word.

The convention the chapters follow (and this test relies on), in the markdown cells of `nbs/*.ipynb`:

- **Block quotes are the paper's.** A block quote whose text opens with a double quote (`> "…"`, possibly over several
  `>` lines, possibly several quotes joined by `…`) quotes the paper. A block quote of another work says so right after
  its closing quote with a parenthesised source that is not a section sign, e.g. `"…" (Zhong et al., CVPR 2017)`; it is
  left out here.
- **Inline quotes of the paper carry their section**: `"…" (§3.3)`. A double-quoted phrase of four or more words with
  the word "paper" in the 80 characters before it is held to the same rule, whether or not it carries its section.
- **The reconstruction page** (`nbs/reconstruction.md`) quotes the paper in its `**Paper**` lines: every double-quoted
  phrase on such a line is the paper's.
- **Elisions and insertions are marked**: `[...]`, `[…]`, `...` or `…` stand for words left out; any other bracketed text
  (`[RegDB]`, `[$k_1$]`) is an insertion that replaces or adds words (the paper's extracted text lost every symbol, so a
  symbol is always an insertion). The pieces between them must occur in the paper, in order.

The paper's text is `../shared/paper.txt` relative to the repository root (it lies beside every checkout of this
project, never inside it); without it the test skips and says why. Matching normalises Unicode (ligatures), quote
characters, dashes, whitespace and hyphenation across line breaks (a hyphen between two letters is ignored, so
`mod-` + line break + `ules` matches `modules`); the first letter of a piece may change case.
"""
import json, re, unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent/'shared'/'paper.txt'
ELIDE = r'\[(?:\.\.\.|…)\]|\.\.\.|…'   # an elision
INSERT = r'\[[^\]]*\]'                  # any other bracketed text: an insertion

def norm(s: str) -> str:
    "One spelling for the things extraction and typing vary: Unicode forms, quotes, dashes, hyphenation, spaces."
    s = unicodedata.normalize('NFKC', s)
    s = re.sub(r'\n\s*>\s?', '\n', s)                        # block-quote markers at line starts
    s = re.sub(r'(\w)-\s*\n\s*(\w)', r'\1-\2', s)            # a hyphen at a line break joins its word
    for a, b in (('“', '"'), ('”', '"'), ('‘', "'"), ('’', "'"), ('–', '-'), ('—', '-'), ('\u00a0', ' '), ('\u2009', ' ')):
        s = s.replace(a, b)
    s = re.sub(r'(?<=\w)-(?=\w)', '', s)                    # hyphens inside words are ignored ("mod-ules")
    return re.sub(r'\s+', ' ', s).strip()

def pieces(quote: str) -> list:
    "The quote's verbatim pieces: split at elisions and bracketed insertions, edges' punctuation trimmed."
    out = []
    for p in re.split(f'{ELIDE}|{INSERT}', norm(quote)):
        p = p.strip(' ,;:.')
        if re.search(r'\w', p): out.append(p)
    return out

def is_in_paper(quote: str, paper: str) -> bool:
    "Whether every piece of `quote` occurs in `paper`, in order (the first letter of a piece may change case)."
    text, at = norm(paper), 0
    for p in pieces(quote):
        hits = [text.find(q, at) for q in {p, p[0].upper() + p[1:], p[0].lower() + p[1:]}]
        hits = [h for h in hits if h >= 0]
        if not hits: return False
        at = min(hits) + len(p)
    return True

def block_quotes(md: str) -> list:
    "The paper's block quotes in a markdown cell: each run of `>` lines that opens with a double quote."
    out, run = [], []
    for line in md.split('\n') + ['']:
        if line.startswith('>'): run.append(line.lstrip('>').strip()); continue
        if run:
            block = '\n'.join(run)
            if block.startswith('"'): out += [q for q, after in re.findall(r'"([^"]+)"(\s*\([^)]*\))?', block)
                                              if not after or '§' in after]
            run = []
    return out

def inline_quotes(md: str) -> list:
    "Inline quotes of the paper outside block quotes: `\"…\" (§…)`, or four words or more with 'paper' just before."
    body = '\n'.join(l for l in md.split('\n') if not l.startswith('>'))
    body = re.sub(r'`[^`]*`', '``', body)                      # code spans hold no quotes of the paper
    out = []
    for m in re.finditer(r'"([^"\n]*(?:\n[^"\n]+)*?)"(\s*\(§)?', body):
        q, sect = m.group(1), m.group(2)
        if sect or (len(q.split()) >= 4 and 'paper' in body[max(0, m.start()-80):m.start()].lower()): out.append(q)
    return out

def chapter_quotes() -> list:
    "(notebook, cell, quote) for every quote of the paper in the chapters' markdown cells."
    out = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text())['cells']):
            if c['cell_type'] != 'markdown': continue
            md = ''.join(c['source'])
            out += [(nb.name, i, q) for q in block_quotes(md) + inline_quotes(md)]
    return out

def reconstruction_quotes() -> list:
    "(file, line, quote) for the quotes of the `**Paper**` lines of the reconstruction page."
    page = ROOT/'nbs'/'reconstruction.md'
    items = re.split(r'\n(?=\s*- \*\*|\n)', page.read_text())
    return [(page.name, i, q) for i, item in enumerate(items) if item.strip().startswith('- **Paper**')
            for q in re.findall(r'"([^"]+)"', item)]

def _paper() -> str:
    if not PAPER.exists(): pytest.skip(f"the paper's text is not beside this checkout ({PAPER} is absent)")
    return PAPER.read_text()

def test_matcher_accepts_and_rejects():
    "The matching function accepts a true quote with marked elisions and insertions, and rejects made-up ones."
    paper = ('Phase 1 (Epoch 1–50): The initial learning rate is set to , with momentum = 0.9. Only PA-CBAM and MAAL\n'
             'mod-\nules are enabled. Phase 2 (Epoch 51–100): The learning rate is reduced. The method’s ﬁrst phase.')
    assert is_in_paper('Phase 1 (Epoch 1-50) [...] Only PA-CBAM and MAAL modules are enabled', paper)
    assert is_in_paper('The initial learning rate is set to [$3.5\\times10^{-4}$], with momentum = 0.9.', paper)
    assert is_in_paper('Only PA-CBAM and MAAL\n> modules are enabled', paper)            # line breaks, hyphenation
    assert is_in_paper("the method's first phase", paper)                             # quote marks, ligatures, case
    assert not is_in_paper('The whole training process consists of two stages [...] Only PA-CBAM', paper)
    assert not is_in_paper('Only PA-CBAM and MAAL modules are enabled [...] Phase 1 (Epoch 1-50)', paper)  # order
    assert not is_in_paper('we adopt Rank-k accuracy, mAP and mINP as evaluation metrics', paper)

def test_finder_follows_the_convention():
    md = ('> "Only PA-CBAM and MAAL modules are enabled" … "[Phase 2] The learning rate is reduced"\n\ntext\n\n'
          '> "a sentence of another work" (Zhong et al., CVPR 2017)\n\n'
          'The paper says "four words or more here", and "short term" (§4.2) and so on.\n\nA line of other text, "a phrase without any attribution".')
    assert block_quotes(md) == ['Only PA-CBAM and MAAL modules are enabled', '[Phase 2] The learning rate is reduced']
    assert inline_quotes(md) == ['four words or more here', 'short term']

def test_chapters_quote_the_paper_verbatim():
    paper = _paper()
    quotes = chapter_quotes()
    assert len(quotes) >= 15, f'the finder lost the chapters\' quotes ({len(quotes)} found)'
    quotes += reconstruction_quotes()
    bad = [f'{nb} cell {i}: "{q}"' for nb, i, q in quotes if not is_in_paper(q, paper)]
    assert not bad, 'not the paper\'s words (or elisions/insertions unmarked):\n' + '\n'.join(bad)


def _anchors(md: str) -> set:
    "The page's anchors: explicit `{#id}` after a heading, else Quarto's id of the heading's text."
    out = set()
    for h in re.findall(r'^#+ (.+)$', md, re.M):
        m = re.search(r'\{#([\w-]+)\}\s*$', h)
        out.add(m.group(1) if m else re.sub(r'\s+', '-', re.sub(r'[^\w\s-]', '', h.strip().lower())))
    return out

def test_chapters_cite_the_reconstruction_page():
    "No chapter, module or README points at METHOD.md (not part of the project); every link into the reconstruction lands."
    page = ROOT/'nbs'/'reconstruction.md'
    anchors = _anchors(page.read_text())
    assert {f'm{k}' for k in range(1, 21)} | {'m3b'} <= anchors, sorted(anchors)
    files = [*sorted((ROOT/'nbs').glob('*.ipynb')), *sorted((ROOT/'usl_vireid_nb').glob('*.py')), ROOT/'README.md']
    bad = []
    for f in files:
        text = f.read_text()
        if 'METHOD' in text: bad.append(f'{f.name} cites METHOD')
        bad += [f'{f.name}: reconstruction.md#{a} does not exist' for a in re.findall(r'reconstruction\.md#([\w-]+)', text)
                if a not in anchors]
    assert not bad, bad
