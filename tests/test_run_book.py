"""tools/run_book.py on a two-cell notebook made here: the executed cell keeps its output, the `#| eval: false` cell
(which would raise) is left unexecuted, as `nbdev_test` leaves it."""
import sys
import nbformat
from conftest import ROOT

sys.path.insert(0, str(ROOT/'tools'))
import run_book


def test_run_one_keeps_outputs_and_skips_eval_false(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)"),
                nbformat.v4.new_code_cell("#| eval: false\nraise RuntimeError('must not run')"),
                nbformat.v4.new_code_cell("#| hide\nprint('after')")]
    p = tmp_path/'t.ipynb'; nbformat.write(nb, p)
    run_book.run_one(p, {k: v for k, v in __import__('os').environ.items()}, timeout=120)
    out = nbformat.read(p, as_version=4).cells
    assert ''.join(o.get('text', '') for o in out[0].outputs).strip() == '42'
    assert out[1].outputs == [] and 'tags' not in out[1].metadata
    assert ''.join(o.get('text', '') for o in out[2].outputs).strip() == 'after'
    assert [run_book.eval_false(c) for c in out] == [False, True, False]
