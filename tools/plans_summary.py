#!/usr/bin/env python3
"""Summarizes the output of tools/plans.sh (read on stdin) as one Markdown
table: predicted latency per strategy, the compute floor, and max per-device
peak memory of iop vs coedge."""
import re, sys

rows = []
cur = None
for line in sys.stdin:
    m = re.match(r"### (\S+), (\d+) devices, (\S+)", line)
    if m:
        cur = {"model": m[1], "n": int(m[2]), "bw": m[3]}
        rows.append(cur)
        continue
    m = re.search(r"compute floor ([\d.]+) ms", line)
    if m and cur is not None:
        cur["floor"] = float(m[1])
        continue
    parts = line.split()
    if cur is not None and parts and parts[0] in ("single", "oc", "hp", "coedge", "iop", "optimal") and len(parts) >= 5:
        try:
            cur[parts[0]] = float(parts[1])
            cur[parts[0] + "_mem"] = " ".join(parts[3:5])
        except ValueError:
            cur[parts[0]] = None

print("| model | n | link | floor ms | single | oc | hp | coedge | iop | optimal | iop vs coedge | peak mem iop / coedge |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    def f(k):
        v = r.get(k)
        return "—" if v is None else f"{v:.0f}"
    rel = ""
    if r.get("iop") and r.get("coedge"):
        rel = f"{(r['iop'] / r['coedge'] - 1) * 100:+.0f} %"
    print(f"| {r['model']} | {r['n']} | {r['bw']} | {r.get('floor', 0):.0f} | {f('single')} | {f('oc')} | {f('hp')} | {f('coedge')} | {f('iop')} | {f('optimal')} | {rel} | {r.get('iop_mem','')} / {r.get('coedge_mem','')} |")
