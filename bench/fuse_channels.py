#!/usr/bin/env python3
"""Summary of bench/fuse_channels.sh: medians per job and mount, and the
uring / classic ratio, as a Markdown table (for docs/benchmarks.md)."""
import json
import statistics
import sys

UNITS = {"randread_qd1": "IOPS", "randread_qd16": "IOPS", "seqread_1m": "MiB/s", "creates": "creates/s"}
TARGET = {"randread_qd16": 1.15}  # io_uring >= 1.15x classic; elsewhere >= 0.95x


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
jobs = [j for j in UNITS if any(r["job"] == j for r in rows)]
print("| job | classic | uring | uring / classic | target | syscalls/req classic | syscalls/req uring "
      "| ctx switches/req classic | ctx switches/req uring |")
print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
for j in jobs:
    by = {m: [r for r in rows if r["job"] == j and r["mount"] == m] for m in ("classic", "uring")}
    v = {m: med([r["value"] for r in by[m]]) for m in by}
    sc = {m: med([r["syscalls_per_req"] for r in by[m]]) for m in by}
    cs = {m: med([r["ctxsw_per_req"] for r in by[m]]) for m in by}
    ratio = v["uring"] / v["classic"] if v["classic"] and v["uring"] else None
    want = TARGET.get(j, 0.95)
    verdict = "-" if ratio is None else ("met" if ratio >= want else "MISSED")
    print(f"| {j} ({UNITS[j]}) | {fmt(v['classic'])} | {fmt(v['uring'])} | {fmt(ratio, 2)}x "
          f"| >= {want}x: {verdict} | {fmt(sc['classic'], 2)} | {fmt(sc['uring'], 2)} "
          f"| {fmt(cs['classic'], 2)} | {fmt(cs['uring'], 2)} |")
print(f"\n{len(rows)} runs; medians over rounds.")
