"""`usl-vireid-eval CHECKPOINT` from the outside: a SYSU-layout and a RegDB checkpoint, every mode and trial, mean and std,
re-ranking labelled, the JSON; its errors in one line with the exit statuses of `usl-vireid-train`."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest, torch
from usl_vireid_nb.config import apply_overrides, regdb, tiny
from conftest import one_error_line, regdb_tiny, run_eval, saved_run   # shared helpers; data_root and regdb_root are conftest fixtures

KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}

@pytest.fixture(scope='module')
def sysu_ck(tmp_path_factory, data_root):
    return saved_run(tiny(data_root=str(data_root)), tmp_path_factory.mktemp('eval')/'run')

def test_eval_sysu_layout(tmp_path, sysu_ck, capsys):
    "All + indoor, 3 gallery trials: per-trial numbers, mean and sample std; then re-ranked, labelled, in its own JSON."
    p = run_eval(tmp_path, sysu_ck, '--gallery-trials', '3')
    res = json.loads((sysu_ck.parent/'eval.json').read_text())
    assert (res['protocol'], res['trials'], list(res['modes']), res['flip'], res['rerank']) == ('sysu', [0, 1, 2], ['all', 'indoor'], True, None)
    for m in ('all', 'indoor'):
        r = res['modes'][m]
        assert [t['trial'] for t in r['trials']] == [0, 1, 2] and set(r['mean']) == KEYS
        for k in KEYS:
            v = [t[k] for t in r['trials']]
            assert abs(r['mean'][k] - np.mean(v)) < 1e-9 and abs(r['std'][k] - np.std(v, ddof=1)) < 1e-9
    assert 'no re-ranking' in p.stdout and '3 gallery trials' in p.stdout and ' ± ' in p.stdout
    from usl_vireid_nb.evaluate import main                                  # the same console entry, in this process
    main([str(sysu_ck), '--gallery_trials=1', '--rerank', '--k1', '6', '--k2', '3', '--no-flip'])
    rr = json.loads((sysu_ck.parent/'eval_rerank.json').read_text())
    assert rr['rerank'] == {'k1': 6, 'k2': 3, 'lambda_value': 0.3, 'expand': 'paper'} and rr['flip'] is False
    out = capsys.readouterr().out
    assert 'k-reciprocal re-ranking (k1=6, k2=3, lambda=0.3)' in out and 'flip off' in out
    assert json.loads((sysu_ck.parent/'eval.json').read_text()) == res      # the plain result is left as it was

def test_eval_regdb_trial(tmp_path, regdb_root):
    "A RegDB checkpoint of trial 2: both directions of its own split; another trial's split is warned about."
    from usl_vireid_nb.evaluate import evaluate_checkpoint
    cfg = apply_overrides(regdb(regdb_root, trial=2), regdb_tiny(regdb_root))
    ck = saved_run(cfg, tmp_path/'regdb2')
    p = run_eval(tmp_path, ck, '--out', tmp_path/'r.json')
    res = json.loads((tmp_path/'r.json').read_text())
    assert (res['protocol'], res['trials'], list(res['modes'])) == ('regdb', [2], ['v2i', 'i2v'])
    assert res['modes']['v2i']['std'] == {k: 0.0 for k in KEYS} and 'trial 2' in p.stdout
    with pytest.warns(UserWarning, match="trained on RegDB trial 2; trial 5's test identities overlap"):
        other = evaluate_checkpoint(ck, trial=5, device='cpu')
    assert other['trials'] == [5]

def test_eval_errors(tmp_path, sysu_ck):
    "Each failure: one line `usl-vireid-eval: error: ...` and the status of usl-vireid-train's table."
    p = run_eval(tmp_path, tmp_path/'missing.pt', check=False)
    assert p.returncode == 2 and one_error_line(p.stderr, 'usl-vireid-eval') == f"usl-vireid-eval: error: no checkpoint at {tmp_path/'missing.pt'}"
    class _Exploit:
        def __reduce__(self): return (os.system, (f"touch {tmp_path/'pwned'}",))
    torch.save({'config': tiny().to_json(), 'x': _Exploit()}, tmp_path/'exploit.pt')
    from usl_vireid_nb.evaluate import main
    def code_of(*args):
        try: main([str(a) for a in args]); return 0
        except SystemExit as e: return e.code
    assert code_of(tmp_path/'exploit.pt') == 2 and not (tmp_path/'pwned').exists()
    (tmp_path/'garbage.pt').write_bytes(os.urandom(1000))
    assert code_of(tmp_path/'garbage.pt') == 2
    assert code_of(sysu_ck, '--dataset', 'sysu') == 2                        # another protocol needs its root
    assert code_of(sysu_ck, '--data-root', tmp_path/'nowhere') == 2
    assert code_of(sysu_ck, '--gallery-trials', '0') == 2
    assert code_of(sysu_ck, '--rerank', '--lambda-value', '1.5') == 2
    (tmp_path/'a_file').write_text('x')
    assert code_of(sysu_ck, '--gallery-trials', '1', '--out', tmp_path/'a_file'/'e.json') == 4
    with pytest.raises(FileNotFoundError): main([str(tmp_path/'missing.pt'), '--debug'])
