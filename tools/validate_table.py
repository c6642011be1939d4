#!/usr/bin/env python3
"""Markdown table of tools/validate.sh results: predicted vs measured."""
import glob, json, os, sys

LAT, MEM = 0.20, 0.15
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/iop-validate"
order = {m: i for i, m in enumerate("alexnet vgg16 resnet18 mobilenetv2".split())}
sorder = {s: i for i, s in enumerate("single oc hp coedge iop optimal".split())}
rows = []
for f in glob.glob(os.path.join(out, "*-n[0-9].json")):
    r = json.load(open(f))
    base = os.path.basename(f)[:-5]
    m, s, n = base.rsplit("-", 2)
    rows.append((order.get(m, 9), m, int(n[1:]), sorder.get(s, 9), s, r))
rows.sort()
ok_lat = ok_mem = ok_both = total = 0
print("| model | n | strategy | latency pred ms | meas ms (median, min–max) | meas/pred | peak mem pred MiB | meas MiB | meas/pred | worst device | emulation | bandwidth | in bands |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for _, m, n, _, s, r in rows:
    if "error" in r:
        print(f"| {m} | {n} | {s} | | failed: {r['error'][:80]} | | | | | | | | |")
        continue
    total += 1
    lp, lm = r["predicted_latency_ms"], r["latency_ms"]
    lr = lm / lp if lp else float("inf")
    ds = [d for d in r["devices"] if d["predicted_peak_memory_bytes"] > 0]
    mp = max(d["predicted_peak_memory_bytes"] for d in ds)
    mm = max(d["peak_memory_bytes"] for d in ds)
    mr = mm / mp
    worst = max((d["peak_memory_bytes"] / d["predicted_peak_memory_bytes"] for d in ds), key=lambda x: abs(x - 1))
    a = abs(lr - 1) <= LAT
    b = all(abs(d["peak_memory_bytes"] / d["predicted_peak_memory_bytes"] - 1) <= MEM for d in ds)
    ok_lat += a; ok_mem += b; ok_both += a and b
    ls = r["latencies_ms"]
    mark = ("✓" if a else "✗lat") + " " + ("✓" if b else "✗mem")
    print(f"| {m} | {n} | {s} | {lp:.0f} | {lm:.0f} ({min(ls):.0f}–{max(ls):.0f}) | {lr:.2f} | {mp/2**20:.1f} | {mm/2**20:.1f} | {mr:.2f} | {worst:.2f} | {r['emulation']} | {r.get('bandwidth','')} | {mark} |")
print()
print(f"{total} runs: latency within ±{LAT:.0%} in {ok_lat}, every device's peak memory within ±{MEM:.0%} in {ok_mem}, both in {ok_both}.")
