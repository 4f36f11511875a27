#!/usr/bin/env python3
"""Summary of bench/auth_ab.sh: medians per job with and without packet
MACs, the mac / nomac ratio against the issue 16 budget (at most 10% lost),
and the per-round ratios, as a Markdown section. With --splice DOC the
section replaces the text between the packet-macs markers of DOC. With
--backends (auth_ab.sh with BASE_BUILD) the sides are a base build's backend
and this build's, and the section is backend-ab."""
import argparse
import json
import statistics

from fuse_channels import splice

UNITS = {"seqread_1m": "MiB/s", "seqwrite_1m": "MiB/s", "seqread_1m_qd8": "MiB/s", "seqwrite_1m_qd8": "MiB/s",
         "randread_4k_qd16": "IOPS", "randwrite_4k_qd16": "IOPS"}
BUDGET = 0.90  # mac / nomac at least this


def section(rows, about, names=("no MACs", "MACs")):
    out = [about, ""] if about else []
    out.append(f"| job | {names[0]} | {names[1]} | {names[1]} / {names[0]} | budget | per round |")
    out.append("|---|---:|---:|---:|---|---|")
    for j, unit in UNITS.items():
        base = [r["value"] for r in rows if r["job"] == j and r["mount"] == "nomac"]
        cand = [r["value"] for r in rows if r["job"] == j and r["mount"] == "mac"]
        if not base or not cand:
            continue
        mb, mc = statistics.median(base), statistics.median(cand)
        ratio = mc / mb if mb else 0
        rounds = ", ".join(f"{c / b:.2f}" for b, c in zip(base, cand) if b)
        verdict = "PASS" if ratio >= BUDGET else "MISS"
        out.append(f"| {j} ({unit}) | {mb:,.1f} | {mc:,.1f} | {ratio:.2f}x | ≥ {BUDGET:.2f}x {verdict} | {rounds} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", help="results.jsonl of bench/auth_ab.sh")
    ap.add_argument("--about", default="")
    ap.add_argument("--splice", metavar="DOC")
    ap.add_argument("--backends", action="store_true", help="sides: a base build's backend and this build's")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.results) if l.strip().startswith("{")]
    names = ("base backend", "this backend") if a.backends else ("no MACs", "MACs")
    text = section(rows, a.about, names)
    print(text)
    if a.splice and a.backends:
        splice(a.splice, text, "backend-ab", "A backend change side by side (BASE_BUILD=... bench/auth_ab.sh)",
               by="bench/auth_ab.sh")
    elif a.splice:
        splice(a.splice, text, "packet-macs", "Packet MACs on and off (bench/auth_ab.sh)", by="bench/auth_ab.sh")


if __name__ == "__main__":
    main()
