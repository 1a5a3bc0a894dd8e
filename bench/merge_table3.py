"""Merge Table 3 JSON files written by separate `bench/ablation_bench.py` runs of the same preset and overrides (e.g.
one process per seed, in parallel) into one: rows and their per-seed results and curves are united.

    python bench/merge_table3.py runs/t3/s0.json runs/t3/s1.json runs/t3/s2.json --json bench/results/table3.json
"""
import argparse, json
from pathlib import Path


def merge(tables: list) -> dict:
    "One Table-3 dict from several of the same preset, overrides and tiny flag."
    first = tables[0]
    for t in tables[1:]:
        if (t['preset'], t['overrides'], t['tiny']) != (first['preset'], first['overrides'], first['tiny']):
            raise SystemExit(f"merge_table3: the files differ in preset/overrides ({t['preset']}, {t['overrides']})")
    flat = lambda x: x if isinstance(x, list) else [x]          # a file merged before holds lists already
    out = {**first, 'rows': {}, 'parts': [p for t in tables for p in t.get('parts', [t['command']])],
           'machine': [m for t in tables for m in flat(t['machine'])],
           'seconds': max(t.get('seconds', 0) for t in tables)}
    for t in tables:
        for name, row in t['rows'].items():
            r = out['rows'].setdefault(name, {'overrides': row['overrides'], 'per_seed': {}})
            r['per_seed'].update(row['per_seed'])
            if 'curves' in row: r.setdefault('curves', {}).update(row['curves'])
    order = list(first['rows'])
    out['rows'] = {k: out['rows'][k] for k in order + [k for k in out['rows'] if k not in order]}
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('files', nargs='+')
    ap.add_argument('--json', default='bench/results/table3.json')
    a = ap.parse_args()
    t = merge([json.loads(Path(f).read_text()) for f in a.files])
    Path(a.json).write_text(json.dumps(t, indent=1))
    print(f"{len(t['rows'])} rows, seeds {sorted({s for r in t['rows'].values() for s in r['per_seed']})} -> {a.json}")
