"""Smoke tests of the benchmark scripts of issue 17: they run, at a tiny size or without a GPU, and exit 0."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}

def run(*args, timeout):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=ENV, cwd=ROOT,
                          timeout=timeout)

@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA device is here: gpu_check would really run')
def test_gpu_check_without_cuda(tmp_path):
    "No CUDA device: the message, exit 0, and no JSON written."
    out = tmp_path/'gpu_check.json'
    p = run(ROOT/'bench'/'gpu_check.py', '--json', out, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == 'no CUDA device: nothing to check'
    assert not out.exists()

def test_scale_bench_small(tmp_path):
    "`--small` finishes within a minute and writes a JSON with the plan, the build and the step timed."
    out = tmp_path/'scale.json'
    p = run(ROOT/'bench'/'scale_bench.py', '--small', '--reps', '2', '--json', out, timeout=60)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    rows = {r['stage']: r for r in res['stages']}
    assert list(rows) == ['plan', 'build', 'step']                    # chapter 10c's plan and build, then the step's share
    for name, r in rows.items(): assert r['wall_s'] > 0 and r['peak_gb'] > 0, name
    plan = rows['plan']['info']
    assert plan['quality_v']['clusters'] > 0 and plan['links'] > 0 and {'cluster_v_s', 'matching_s'} <= set(plan)
    assert res['totals']['epoch_s'] > res['totals']['once_per_epoch_s'] > 0
    assert res['data']['n_v'] == 1113 and res['environment']['torch'] == torch.__version__

def test_gpu_check_cpu_smoke(tmp_path):
    "`--cpu-smoke`: gpu_check's own code at toy sizes on the CPU (test ViT, gloo) passes every check and writes its JSON."
    out = tmp_path/'gpu_smoke.json'
    p = run(ROOT/'bench'/'gpu_check.py', '--cpu-smoke', '--json', out, timeout=180)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    assert list(res['checks']) == ['ddp', 'faiss_knn', 'torch_knn', 'train_steps', 'extraction', 'scale_stages']
    assert all(c['ok'] for c in res['checks'].values()) and res['mode'].startswith('cpu smoke')
    train = res['checks']['train_steps']
    assert train['img_per_s_fixed_batch'] > 0 and {'vra', 'vrnl', 'um'} <= set(train['terms'])
    assert res['checks']['torch_knn']['fp32_recall'] > 0.999

def test_ablation_bench_tiny_and_merge(tmp_path):
    """Table 3's script at chapter 10a's tiny size: a shared-checkpoint row and a leave-one-out row given as a comma list
    (rows starting with '-' after '='), each with its per-seed metrics, curve and the untrained row; an unknown row is a
    usage error before any work; merge_table3 unites two seeds' files."""
    bad = run(ROOT/'bench'/'ablation_bench.py', '--tiny', '--only=full,-nope', '--out', tmp_path/'x', timeout=60)
    assert bad.returncode == 2 and "unknown rows ['-nope']" in bad.stderr and not (tmp_path/'x'/'data').exists()
    out, js = tmp_path/'abl', tmp_path/'s0.json'
    p = run(ROOT/'bench'/'ablation_bench.py', '--tiny', '--seeds', '0', '--only=phase1,-vra,tokenmatcher', '--out', out,
            '--json', js, timeout=400)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    t = json.loads(js.read_text())
    assert list(t['rows']) == ['untrained', 'phase1', '-vra', 'tokenmatcher'] and t['tiny'] and t['preset'] == 'evidence'
    for name in ('phase1', '-vra', 'tokenmatcher'):
        assert set(t['rows'][name]['per_seed']['0']) == {'all', 'indoor'}
        assert t['rows'][name]['curves']['0'][-1][0] == t['config']['epochs']
    assert t['rows']['-vra']['overrides'] == {'use_vra': False}
    t1 = {**t, 'rows': {k: {**r, 'per_seed': {'1': r['per_seed']['0']}} for k, r in t['rows'].items()}}
    (tmp_path/'s1.json').write_text(json.dumps(t1))
    m = run(ROOT/'bench'/'merge_table3.py', js, tmp_path/'s1.json', '--json', tmp_path/'m.json', timeout=60)
    assert m.returncode == 0, m.stderr
    merged = json.loads((tmp_path/'m.json').read_text())
    assert all(sorted(r['per_seed']) == ['0', '1'] for r in merged['rows'].values())
    again = run(ROOT/'bench'/'merge_table3.py', tmp_path/'m.json', js, '--json', tmp_path/'m2.json', timeout=60)
    assert again.returncode == 0, again.stderr                       # a merged file merges again: its parts stay flat
    m2 = json.loads((tmp_path/'m2.json').read_text())
    assert len(m2['parts']) == 3 and all(isinstance(x, dict) for x in m2['machine'])

def test_regdb_pair_tiny(tmp_path):
    "The RegDB pair at tiny size: both rows (the paper's setting, TokenMatcher's recipe) with both directions and curves."
    js = tmp_path/'rp.json'
    p = run(ROOT/'bench'/'regdb_pair.py', '--tiny', '--seeds', '0', '--out', tmp_path/'rp', '--json', js, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    t = json.loads(js.read_text())
    assert set(t['rows']) == {'paper', 'tokenmatcher'} and t['rows']['tokenmatcher']['overrides']['eps'] == 0.2
    assert 'lr' not in t['rows']['tokenmatcher']['overrides']           # the fine-tuning schedule is not transferred
    for row in t['rows'].values(): assert set(row['per_seed']['0']) == {'v2i', 'i2v'} and row['curves']['0']

# ------------------------------------------------------------------ the other scripts, each at a toy size (seconds)
from conftest import TINY

def _ok(p):
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p

def test_amp_bench_tiny(tmp_path):
    "One seed of the tiny run in fp32 and with `amp=auto`: both rows, their wall times and metrics, the ratio."
    js = tmp_path/'amp.json'
    _ok(run(ROOT/'bench'/'amp_bench.py', '--seeds', '0', '--set', *TINY, 'epochs=1', '--out', tmp_path/'runs', '--json', js,
            timeout=300))
    res = json.loads(js.read_text())
    assert set(res['runs']) == {'off', 'auto'} and res['time_ratio_bf16_over_fp32'] > 0 and res['command']

def test_cluster_bench_tiny(tmp_path):
    "300 blobs of 32 dims, one repeat: ours against the kNN product, with the dense and the joint distances."
    js = tmp_path/'cluster.json'
    _ok(run(ROOT/'bench'/'cluster_bench.py', '--sizes', '300', '--dims', '32', '--repeats', '1', '--dense-max', '300',
            '--joint-d', '32', '--json', js, timeout=300))
    assert json.loads(js.read_text())

def test_preflight_bench_tiny(tmp_path):
    "A 30-image SYSU-layout tree: the three cut-short files are found, no comparison round."
    js = tmp_path/'preflight.json'
    _ok(run(ROOT/'bench'/'preflight_bench.py', '--n-ids', '4', '--n-vis', '20', '--n-ir', '10', '--vis-height', '40', '60',
            '--ir-height', '40', '60', '--compare', '0', '--json', js, timeout=300))
    res = json.loads(js.read_text())
    assert res['time_s'] > 0 and res['images']['n_vis'] == 20

def test_sweep_tiny(tmp_path):
    "`--tiny` on one group: two settings, each a tiny run, sweep.json and the figure."
    _ok(run(ROOT/'bench'/'sweep.py', '--out', tmp_path, '--tiny', '--groups', 'mu', '--quiet', timeout=300))
    assert (tmp_path/'sweep.json').is_file() and (tmp_path/'sweep.png').is_file()

def test_train_bench_tiny(tmp_path):
    "One round of one step per side on the tiny config: both rates and their ratio."
    js = tmp_path/'train.json'
    _ok(run(ROOT/'bench'/'train_bench.py', '--steps', '1', '--rounds', '1', '--warmup', '1', '--out', tmp_path/'w',
            '--set', *TINY, '--json', js, timeout=300))
    res = json.loads(js.read_text())
    assert res['method_img_per_s'] > 0 and res['bare_img_per_s'] > 0

def test_joint_prior_bench_tiny(tmp_path):
    "One seed of a two-epoch tiny run: the plan's links under each joint prior, their precision, the best one."
    js = tmp_path/'jp.json'
    _ok(run(ROOT/'bench'/'joint_prior_bench.py', '--seeds', '0', '--set', *TINY, 'epochs=2', '--out', tmp_path/'runs',
            '--json', js, timeout=300))
    res = json.loads(js.read_text())
    assert set(res['seeds']['0']) >= {'none', 'boost', 'restrict'} and res['best'] in ('none', 'boost', 'restrict')

def test_table2_demo_smoke(tmp_path):
    "table2.py on the demo preset alone, one timed rep: parameters split by part (the stems apart), FLOPs, speed, the paper's row."
    out = tmp_path/'t2.json'
    p = run(ROOT/'bench'/'table2.py', '--presets', 'demo', '--reps', '1', '--demo-reps', '1', '--out', out, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    assert list(res['presets']) == ['demo'] and res['paper']['params_M'] == 91.5
    pr = res['presets']['demo']['params']['exact']
    assert pr['backbone'] == pr['vit'] + pr['stem_ir'] + pr['pacbam'] + pr['bns'] and pr['stem_ir'] == 0   # one stem
    assert res['presets']['demo']['gflops']['gflops'] > 0 and 'fp32' in res['presets']['demo']['inference']['cpu']

def test_rid_margin_smoke(tmp_path):
    "rid_margin.py on the test backbone, one seed: distances per identity pair, a suggested margin, the setup recorded."
    out = tmp_path/'rid.json'
    p = run(ROOT/'bench'/'rid_margin.py', '--preset', 'test', '--seeds', '0', '--train_ids', '8', '--out', out, timeout=180)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res['setup']['preset'] == 'test' and res['setup']['weights'].startswith('random')
    assert 0 < res['suggested_margin'] < 1 and res['pooled']['diff']['n'] > 0 and res['pooled']['same']['n'] > 0

def test_demo_speed_tiny(tmp_path):
    "The main job's speed script at tiny size: both presets in fp32 (bf16 where the CPU has it), the ratio, the projection."
    js = tmp_path/'ds.json'
    _ok(run(ROOT/'bench'/'demo_speed.py', '--seeds', '0', '--set', *TINY, 'epochs=1', '--previous', 'epochs=2', 'eval_every=1',
            '--out', tmp_path/'runs', '--json', js, timeout=300))
    res = json.loads(js.read_text())
    assert {'previous', 'default'} <= set(res['runs']) and res['speedup_fp32_previous_over_default'] > 0
    assert set(res['cpu_features']) >= {'avx2', 'avx512_bf16'} and ('default_bf16' in res['runs']) == res['native_bf16']
    assert res['projection']['default_demo_s_projected'] > 0 and 'gain_rank1' in res['runs']['default']['0']

def test_demo_candidates_tiny(tmp_path):
    """The demo's candidates at tiny size on a validation seed: gains per run, each round's summary (paired with its
    incumbent, modelled cost), round 1's choice; a second call reuses the runs."""
    js, args = tmp_path/'dc.json', ('--tiny', '--only', 'A_default', 'L_e10_i32_8x2', '--seeds', '100', '--out', tmp_path/'runs')
    _ok(run(ROOT/'bench'/'demo_candidates.py', *args, '--cost-steps', '2', '--json', js, timeout=300))
    res = json.loads(js.read_text())
    assert set(res['runs']) == {'A_default', 'L_e10_i32_8x2'} and res['rounds']['1']['chosen']['name'] == 'L_e10_i32_8x2'
    assert res['rounds']['2']['names'] == ['L_e10_i32_8x2'] and res['rounds']['1']['incumbent'] == 'A_default'
    r = res['runs']['L_e10_i32_8x2']['100']
    assert abs(r['gain'] - (r['Rank-1'] - r['untrained Rank-1'])) < 1e-9 and r['seconds'] > 0
    s1 = res['rounds']['1']['summary']
    assert s1['A_default']['cost_vs_incumbent'] == 1.0 and s1['A_default']['paired_vs_incumbent'] == 0.0
    assert all(c['modelled_s'] > 0 and c['step_s'] > 0 for c in res['cost'].values())
    _ok(run(ROOT/'bench'/'demo_candidates.py', *args, '--cost-steps', '0', '--json', tmp_path/'again.json', timeout=60))   # reused
    assert json.loads((tmp_path/'again.json').read_text())['runs'] == res['runs']

def test_demo_profile_tiny(tmp_path):
    "The main job's profile at tiny size: both presets, every stage timed, the shares adding up to the wall time."
    js = tmp_path/'dp.json'
    _ok(run(ROOT/'bench'/'demo_profile.py', '--tiny', '--out', tmp_path/'runs', '--json', js, timeout=300))
    res = json.loads(js.read_text())
    for name in ('default', 'previous'):
        r = res['runs'][name]
        assert {'calibrate', 'evaluate', 'describe', 'plan', 'build', 'step', 'load'} <= set(r['seconds']), name
        assert r['seconds']['step'] > 0 and r['seconds']['describe'] > 0 and abs(sum(r['share'].values()) - 1) < 1e-6
