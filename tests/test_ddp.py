"""The trainer under `torchrun --nproc_per_node=2` on the CPU (gloo): both ranks end with the same memories and labels."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from usl_vireid_nb.config import overrides_of, synthetic, tiny

TINY = overrides_of(tiny(epochs=2, eval_every=2), synthetic())     # chapter 10a's tiny run, as command-line overrides

@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch built without distributed')
def test_two_cpu_ranks_agree(tmp_path):
    script = tmp_path/'train_entry.py'          # torchrun runs a file: the console entry point, each rank dumping its state
    script.write_text("import sys\nfrom usl_vireid_nb.train import main\nfrom usl_vireid_nb.trainer import DumpState\n"
                      "sys.exit(main(callbacks=[DumpState()]))\n")
    out = tmp_path/'ddp'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    env.pop('CUDA_VISIBLE_DEVICES', None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script),
           '--out', str(out), '--set', *TINY]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert '2 processes' in p.stdout
    s0 = torch.load(out/'rank0_state.pt', weights_only=True)
    s1 = torch.load(out/'rank1_state.pt', weights_only=True)
    assert s0['epoch'] == s1['epoch'] == 2
    for k in ('y_v', 'y_r'): assert torch.equal(s0[k], s1[k]), k
    assert (s0['y_v'] >= 0).any() and (s0['y_r'] >= 0).any()          # something was clustered
    assert set(s0['memories']) == set(s1['memories']) and {'v', 'r', 'c'} <= set(s0['memories'])
    for k in s0['memories']: assert torch.allclose(s0['memories'][k], s1['memories'][k], atol=1e-6), k
    for k in s0['model']: assert torch.allclose(s0['model'][k].float(), s1['model'][k].float(), atol=1e-6), k
    res = json.loads((out/'results.json').read_text())                 # rank 0 wrote the records
    assert res['epochs_trained'] == 2 and set(res['final']) == {'all', 'indoor'}
