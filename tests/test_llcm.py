"""LLCM from the outside: a generated LLCM-layout tree through `usl-vireid-eval --dataset llcm` (both directions, ten
gallery trials) and, once the trainer reads its training split through `data.read_train_split`, through
`usl-vireid-train --dataset llcm` as well (trained, then tested on both directions with ten trials)."""
import inspect, json
from pathlib import Path
import numpy as np
import pytest
from usl_vireid_nb.config import llcm, overrides_of, tiny
from conftest import run, run_eval, saved_run   # shared helpers; data_root is a conftest fixture

KEYS = {'Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'mAP', 'mINP'}

@pytest.fixture(scope='module')
def llcm_root(tmp_path_factory):
    "A generated LLCM layout: 6 training and 4 test identities, one image per identity and camera (9 visible, 8 infrared)."
    from usl_vireid_nb.synthetic import make_synthetic
    root = tmp_path_factory.mktemp('llcm')/'synthetic'
    make_synthetic(root, n_train_ids=6, n_test_ids=4, n_images=1, seed=0, llcm=True)
    return root/'LLCM'

def llcm_tiny(root):
    "`tiny()` as overrides of the LLCM preset (its data set and root left to the flags; its ten gallery trials kept)."
    return [o for o in overrides_of(tiny(), llcm(root)) if not o.startswith(('dataset=', 'data_root=', 'eval_trials='))]

def check_llcm_result(res, trials):
    "Both directions, every trial, mean and sample std of each metric."
    assert (res['protocol'], res['trials'], list(res['modes'])) == ('llcm', trials, ['v2i', 'i2v'])
    for m in ('v2i', 'i2v'):
        r = res['modes'][m]
        assert [t['trial'] for t in r['trials']] == trials and set(r['mean']) == KEYS
        for k in KEYS:
            v = [t[k] for t in r['trials']]
            assert abs(r['mean'][k] - np.mean(v)) < 1e-9 and abs(r['std'][k] - np.std(v, ddof=1)) < 1e-9

def test_eval_llcm_cli(tmp_path, data_root, llcm_root):
    "A checkpoint tested on the LLCM tree with --dataset llcm: v2i and i2v, galleries 0..9, in the JSON and the table."
    ck = saved_run(tiny(data_root=str(data_root)), tmp_path/'run')
    p = run_eval(tmp_path, ck, '--dataset', 'llcm', '--data-root', llcm_root, '--out', tmp_path/'l.json')
    check_llcm_result(json.loads((tmp_path/'l.json').read_text()), list(range(10)))
    assert '(llcm protocol, 10 gallery trials)' in p.stdout and 'v2i' in p.stdout and 'i2v' in p.stdout

def _trainer_reads_llcm():
    from usl_vireid_nb import epoch
    return 'read_train_split' in inspect.getsource(epoch.training_records)   # check_inputs and prepare_data read through it

@pytest.mark.skipif(not _trainer_reads_llcm(), reason="the trainer does not read LLCM yet: prepare_data and start_checks "
                                                      "must read the training split through data.read_train_split")
def test_train_llcm_cli(tmp_path, llcm_root):
    "usl-vireid-train --dataset llcm on the generated tree: trains, tests both directions on ten galleries, evaluates again."
    out = tmp_path/'llcm_run'
    run(tmp_path, '--dataset', 'llcm', '--data-root', llcm_root, '--out', out, '--set', *llcm_tiny(llcm_root), 'epochs=2')
    res = json.loads((out/'results.json').read_text())
    assert (res['dataset'], res['protocol'], res['epochs_trained']) == ('llcm', 'llcm', 2)
    assert res['config']['k1'] == tiny().k1 and res['config']['eval_trials'] == 10
    assert set(res['final']) == {'v2i', 'i2v'} and all(set(v) == KEYS for v in res['final'].values())
    import hashlib                                    # which version of LLCM's lists ran (ZYK100/LLCM#28)
    lists = res['data']['split_files']
    assert {'idx/train_vis.txt', 'idx/train_nir.txt', 'idx/test_id.txt'} <= set(lists)
    assert lists['idx/train_vis.txt'] == hashlib.sha256((Path(llcm_root)/'idx'/'train_vis.txt').read_bytes()).hexdigest()
    p = run_eval(tmp_path, out/'checkpoint.pt')
    ev = json.loads((out/'eval.json').read_text())
    check_llcm_result(ev, list(range(10)))
    for m in ('v2i', 'i2v'):                          # the trainer's last evaluation is the mean of the same ten trials
        for k in KEYS: assert abs(ev['modes'][m]['mean'][k] - res['final'][m][k]) < 1e-6, (m, k)
    assert '10 gallery trials' in p.stdout
