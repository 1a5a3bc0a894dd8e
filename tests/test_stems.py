"""Every forward path of a two-stem model routes each image through its modality's stem (issue 20): a tiny run with
TransReID-SSL's ICS stem, one per modality, trained, evaluated and re-evaluated from its checkpoint (`usl-vireid-eval`'s
function), with hooks that compare what each stem received against the modality every call declared."""
import torch
from usl_vireid_nb.config import tiny
from usl_vireid_nb.data import Modality
from usl_vireid_nb.evaluate import evaluate_checkpoint
from usl_vireid_nb.trainer import Trainer


def _watch(model):
    "Hooks on the model and its two stems: [(x, modality, what the visible stem got, what the infrared stem got)]."
    calls, cur = [], {}
    def top(mod, args, kwargs):
        x, m = args[0], (args[1] if len(args) > 1 else kwargs.get('modality'))
        cur.update(x=x.detach().clone(), m=m); calls.append(cur.copy() | {'vis': None, 'ir': None})
    def stem(name):
        def hook(mod, args): calls[-1][name] = args[0].detach().clone()
        return hook
    hs = [model.register_forward_pre_hook(top, with_kwargs=True),
          model.vit.patch_embed.register_forward_pre_hook(stem('vis')),
          model.patch_embed_ir.register_forward_pre_hook(stem('ir'))]
    return calls, hs


def _check(calls):
    assert calls, "no forward call was seen"
    n_ir = 0
    for c in calls:
        assert c['m'] is not None, "a forward call gave no modality: some path does not route its images"
        m = torch.as_tensor(c['m']).expand(len(c['x'])) if torch.as_tensor(c['m']).ndim == 0 else torch.as_tensor(c['m'])
        ir = (m == int(Modality.IR)).cpu()
        for name, rows in (('ir', ir), ('vis', ~ir)):
            if rows.any(): assert c[name] is not None and torch.equal(c[name], c['x'][rows]), f"the {name} stem got other images"
            else: assert c[name] is None, f"the {name} stem ran on a batch without its modality"
        n_ir += int(ir.sum())
    return n_ir


def test_two_stems_route_training_extraction_and_evaluation(tmp_path):
    cfg = tiny(stem='ics', modality_stems=True)
    tr = Trainer(cfg, tmp_path/'run', log=lambda *a, **k: None)
    assert tr.model.patch_embed_ir is not None and tr.model.stem == 'ics'
    calls, hooks = _watch(tr.model)
    res = tr.fit()
    assert res['final'] and _check(calls) > 0                 # training, extraction, calibration and evaluation calls
    mods = {int(v) for c in calls for v in torch.as_tensor(c['m']).reshape(-1).tolist()}
    assert mods == {int(Modality.VIS), int(Modality.IR), int(Modality.CA)}
    for h in hooks: h.remove()
    ev = evaluate_checkpoint(tmp_path/'run'/'checkpoint.pt', gallery_trials=1, device='cpu')
    for mode in cfg.modes:
        assert abs(ev['modes'][mode]['mean']['Rank-1'] - res['final'][mode]['Rank-1']) < 1e-6   # the same model, routed alike
