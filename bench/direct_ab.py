#!/usr/bin/env python3
"""Summary of bench/direct_ab.sh: medians per job of the direct API and of
fio O_DIRECT through the FUSE mount, their ratio against the issue 17
targets, and client CPU per GiB read. With --splice DOC the section
replaces the text between the direct-api markers of DOC."""
import argparse
import json
import statistics

from fuse_channels import splice

JOBS = {"read_1m_qd1": ("MiB/s", None), "read_1m_qd16": ("MiB/s", 1.5), "randread_4k_qd16": ("IOPS", 2.0)}


def section(rows, about):
    out = [about, ""] if about else []
    out.append("| job | FUSE O_DIRECT | direct API | direct / FUSE | target | per round "
               "| client CPU s/GiB FUSE | direct |")
    out.append("|---|---:|---:|---:|---|---|---:|---:|")
    for j, (unit, target) in JOBS.items():
        f = [r for r in rows if r["job"] == j and r["path"] == "fuse"]
        d = [r for r in rows if r["job"] == j and r["path"] == "direct"]
        if not f or not d:
            continue
        mf, md = statistics.median(r["value"] for r in f), statistics.median(r["value"] for r in d)
        cf = statistics.median(r["cpu_s_per_gib"] for r in f)
        cd = statistics.median(r["cpu_s_per_gib"] for r in d)
        ratio = md / mf if mf else 0
        rounds = ", ".join(f"{b['value'] / a['value']:.2f}" for a, b in zip(f, d) if a["value"])
        verdict = "-" if target is None else f"≥ {target:.1f}x {'PASS' if ratio >= target else 'MISS'}"
        out.append(f"| {j} ({unit}) | {mf:,.1f} | {md:,.1f} | {ratio:.2f}x | {verdict} | {rounds} "
                   f"| {cf:.2f} | {cd:.2f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", help="results.jsonl of bench/direct_ab.sh")
    ap.add_argument("--about", default="")
    ap.add_argument("--splice", metavar="DOC")
    ap.add_argument("--rdma", action="store_true", help="the RDMA-lane run (guest): section direct-api-rdma")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.results) if l.strip().startswith("{")]
    text = section(rows, a.about)
    print(text)
    if a.splice and a.rdma:
        splice(a.splice, text, "direct-api-rdma", "Direct API against FUSE O_DIRECT on the RDMA lane "
               "(bench/run_direct_rdma_bench.sh, qemu guest)", by="bench/run_direct_rdma_bench.sh")
    elif a.splice:
        splice(a.splice, text, "direct-api", "Direct API against FUSE O_DIRECT (bench/direct_ab.sh)",
               by="bench/direct_ab.sh")


if __name__ == "__main__":
    main()
