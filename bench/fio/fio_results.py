#!/usr/bin/env python3
"""The data of a bench/fio results directory, for report.py: what each job
measures, the targets of issue 12, and per backing store the per-round
values, the CPU used by each peer (over fio's measured window for the
time-based jobs) and the lanefs byte-counter checks.

Layout read (as run_peers.sh writes it): DIR/meta.env and, per backing store
B (tmpfs, ext4), DIR/B/meta.env, DIR/B/unavailable-PEER.txt and
DIR/B/r<round>/<job>/<peer>.{json,err,run,cpu,bytes}.
"""
import bisect
import glob
import json
import os
import statistics

LABEL = {
    "lanefs": "lanefs",
    "glusterfs": "GlusterFS",
    "sshfs": "sshfs",
    "passthrough": "passthrough_ll",
    "tmpfs": "tmpfs",
}
BACKING_ORDER = ["tmpfs", "ext4"]
MiB = 2**20


def _fio_rw(d, rw):
    return d["jobs"][0][rw]


# key -> (job, direction or meta phase, unit, long label, short label)
# Order: the measures the targets name, then the extras.
METRICS = {
    "seq_read_direct": ("seq_read_direct", "read", "MiB/s", "seq read 1 MiB O_DIRECT, 1 in flight", "seq read 1M O_DIRECT QD1"),
    "seq_write": ("seq_write", "write", "MiB/s", "seq write 1 MiB + end_fsync (buffered)", "seq write 1M + fsync"),
    "rand_read": ("rand_read", "read", "IOPS", "rand read 4 KiB O_DIRECT, 16 in flight", "rand read 4K QD16"),
    "rand_write": ("rand_write", "write", "IOPS", "rand write 4 KiB O_DIRECT, 16 in flight", "rand write 4K QD16"),
    "create": ("meta", "create", "ops/s", "creates/s (open O_CREAT\\|O_EXCL + close)", "creates"),
    "stat": ("meta", "stat", "ops/s", "stat/s (dentries and inodes dropped first)", "stats"),
    "seq_read": ("seq_read", "read", "MiB/s", "seq read 1 MiB buffered, cold cache", "seq read 1M cold"),
    "unlink": ("meta", "unlink", "ops/s", "unlinks/s", "unlinks"),
}
TIME_BASED = {"seq_read_direct", "rand_read", "rand_write"}
FIO_JOBS = ["seq_write", "seq_read", "seq_read_direct", "rand_read", "rand_write"]
CPU_JOBS = ["seq_write", "seq_read", "seq_read_direct", "rand_read", "rand_write", "meta"]
CPU_JOB_LABEL = {
    "seq_write": "seq write 1M + fsync",
    "seq_read": "seq read 1M cold",
    "seq_read_direct": "seq read 1M O_DIRECT QD1",
    "rand_read": "rand read 4K QD16",
    "rand_write": "rand write 4K QD16",
    "meta": "metadata (create+stat+unlink)",
}

# (metric, reference peer, factor, text): lanefs / reference >= factor
TARGETS = [
    ("seq_read_direct", "glusterfs", 2.0, "seq read 1 MiB O_DIRECT QD1 ≥ 2× GlusterFS"),
    ("seq_read_direct", "passthrough", 0.7, "seq read 1 MiB O_DIRECT QD1 ≥ 0.7× passthrough_ll"),
    ("seq_write", "glusterfs", 2.0, "seq write 1 MiB + end_fsync ≥ 2× GlusterFS"),
    ("rand_read", "glusterfs", 5.0, "rand read 4 KiB QD16 ≥ 5× GlusterFS"),
    ("rand_read", "passthrough", 0.4, "rand read 4 KiB QD16 ≥ 0.4× passthrough_ll"),
    ("rand_write", "glusterfs", 3.0, "rand write 4 KiB QD16 ≥ 3× GlusterFS"),
    ("create", "glusterfs", 2.0, "creates/s ≥ 2× GlusterFS"),
    ("stat", "glusterfs", 3.0, "stat/s ≥ 3× GlusterFS"),
]
CPU_TARGET_US = 25.0  # lanefs CPU per 4 KiB random read at QD16


# ----------------------------------------------------------------- reading
def read_env(path):
    env = {}
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def read_kv(path):
    kv = {}
    if os.path.exists(path):
        for tok in open(path, errors="replace").read().split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                kv[k] = v
    return kv


def first_error_line(path):
    if not os.path.exists(path):
        return ""
    for line in open(path, errors="replace"):
        line = line.strip()
        if line and not line.startswith("note:"):
            return line[:200]
    return ""


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def samples(path):
    """[(t, ticks)] from a .cpu file, sorted by time."""
    out = []
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            parts = line.split()
            if len(parts) == 2:
                try:
                    out.append((float(parts[0]), int(parts[1])))
                except ValueError:
                    pass
    out.sort()
    return out


def ticks_at(smp, t):
    """Linear interpolation of the tick counter at time t (None outside)."""
    if not smp or t < smp[0][0] - 0.01 or t > smp[-1][0] + 0.01:
        return None
    ts = [s[0] for s in smp]
    i = bisect.bisect_left(ts, t)
    if i <= 0:
        return float(smp[0][1])
    if i >= len(smp):
        return float(smp[-1][1])
    (ta, ca), (tb, cb) = smp[i - 1], smp[i]
    if tb <= ta:
        return float(cb)
    return ca + (cb - ca) * (t - ta) / (tb - ta)


def run_cpu(base, job, d):
    """Cores busy by the peer's processes during the run: for time-based fio
    jobs, over the measured window (after the ramp; from the sampler), else
    over the whole run. Returns (cores, window_seconds) or (None, None)."""
    run = read_kv(base + ".run")
    try:
        t0, t1 = float(run["t0"]), float(run["t1"])
        ticks, clk = int(run["cpu_ticks"]), int(run["clk_tck"])
    except (KeyError, ValueError):
        return None, None
    if not run.get("pids", "").strip(","):
        return None, None
    if job in TIME_BASED and d is not None:
        try:
            rw = METRICS[job][1]
            length = _fio_rw(d, rw)["runtime"] / 1000.0
            end = d.get("timestamp_ms", t1 * 1000) / 1000.0
            end = min(max(end, t0), t1)
            start = end - length
            smp = samples(base + ".cpu")
            a, b = ticks_at(smp, start), ticks_at(smp, end)
            if a is not None and b is not None and length > 0.5:
                return (b - a) / clk / length, length
        except (KeyError, IndexError, TypeError, ZeroDivisionError):
            pass
    wall = t1 - t0
    return (ticks / clk / wall, wall) if wall > 0 else (None, None)


def value_of(key, d):
    job, part, unit = METRICS[key][:3]
    if job == "meta":
        return d[part]["ops_per_s"]
    r = _fio_rw(d, part)
    return r["bw_bytes"] / MiB if unit == "MiB/s" else r["iops"]


def bytes_check(base):
    """(status, text) for one lanefs run: PASS/FAIL/NA."""
    kv = read_kv(base + ".bytes")
    d = load_json(base + ".json")
    if not kv:
        return "NA", "no counters recorded"
    try:
        r0, w0, r1, w1 = (int(kv[k]) for k in ("read_before", "written_before", "read_after", "written_after"))
    except (KeyError, ValueError):
        return "NA", "lanefs reports no data byte counters (`lanefs --json cluster status` lacks data_read_bytes)"
    if d is None or not d.get("jobs"):
        return "NA", "no fio result"
    j = d["jobs"][0]
    fr, fw = j["read"]["io_bytes"], j["write"]["io_bytes"]
    gr, gw = r1 - r0, w1 - w0
    ok = gr >= fr and gw >= fw
    parts = []
    if fr or gr:
        parts.append(f"fio read {fr / MiB:.1f} MiB, backends served {gr / MiB:.1f} MiB")
    if fw or gw:
        parts.append(f"fio wrote {fw / MiB:.1f} MiB, backends stored {gw / MiB:.1f} MiB")
    return ("PASS" if ok else "FAIL"), "; ".join(parts) or "no data moved"


BLOCK = {"seq_write": MiB, "seq_read": MiB, "seq_read_direct": MiB, "rand_read": 4096, "rand_write": 4096}


def requests_per_op(base, job):
    """lanefs backend requests executed per fio IO (of the job's block size,
    counted from the bytes the backends moved, so ramp IOs count on both
    sides) or per metadata operation (create, stat and unlink together);
    None when not recorded."""
    kv = read_kv(base + ".bytes")
    try:
        q = int(kv["requests_after"]) - int(kv["requests_before"])
        if job == "meta":
            d = load_json(base + ".json")
            ops = sum(d[ph]["ops"] for ph in ("create", "stat", "unlink"))
        else:
            moved = (int(kv["read_after"]) - int(kv["read_before"]) +
                     int(kv["written_after"]) - int(kv["written_before"]))
            ops = moved / BLOCK[job]
        return q / ops if ops > 0 else None
    except (KeyError, ValueError, TypeError):
        return None


class Run:
    """One backing store's results."""

    def __init__(self, root, backing, rounds):
        self.backing = backing
        self.dir = os.path.join(root, backing)
        self.env = read_env(os.path.join(self.dir, "meta.env"))
        self.rounds = rounds
        self.unavailable = {}
        for f in sorted(glob.glob(os.path.join(self.dir, "unavailable-*.txt"))):
            p = os.path.basename(f)[len("unavailable-"):-len(".txt")]
            lines = [l.strip() for l in open(f, errors="replace") if l.strip()]
            self.unavailable[p] = " / ".join(lines[-3:])[:400]
        self.peers = self.env.get("peers_up", "").split()
        # values[key][peer] = per-round list; errors[key][peer] = text
        self.values = {k: {p: [] for p in self.peers} for k in METRICS}
        self.errors = {k: {} for k in METRICS}
        self.cpu = {j: {p: [] for p in self.peers} for j in CPU_JOBS}   # cores busy
        self.cpu_us = {j: {p: [] for p in self.peers} for j in ("rand_read", "rand_write")}
        self.bytes = {j: [] for j in FIO_JOBS}   # [(round, status, text)]
        self.rpcs = {j: [] for j in CPU_JOBS}    # lanefs backend requests per IO / op
        for r in range(1, rounds + 1):
            for job in CPU_JOBS:
                for p in self.peers:
                    self._load_one(r, job, p)
        for k in METRICS:
            for p in self.peers:
                self.values[k][p] = self.values[k][p][:rounds]
        self.med = {k: {p: median(self.values[k][p]) for p in self.peers} for k in METRICS}

    def _load_one(self, r, job, p):
        base = os.path.join(self.dir, f"r{r}", job, p)
        if not os.path.exists(base + ".run"):
            return
        run = read_kv(base + ".run")
        d = load_json(base + ".json")
        fio_err = ""
        if d is not None and job != "meta":
            try:
                if d["jobs"][0].get("error", 0):
                    fio_err = f"fio error {d['jobs'][0]['error']}: " + first_error_line(base + ".err")
            except (KeyError, IndexError):
                d = None
        for key, (mjob, *_rest) in METRICS.items():
            if mjob != job:
                continue
            val, err = None, fio_err
            if d is not None and not err:
                try:
                    val = value_of(key, d)
                except (KeyError, IndexError, TypeError):
                    err = first_error_line(base + ".err") or "no result"
            elif not err:
                err = first_error_line(base + ".err") or f"exit {run.get('rc', '?')}"
            if run.get("rc", "0") != "0":
                err = err or f"exit {run['rc']}: " + first_error_line(base + ".err")
                val = None
            self.values[key][p].append(val)
            if err:
                self.errors[key][p] = err
        cores, _ = run_cpu(base, job, d)
        if cores is not None and run.get("rc", "0") == "0" and not fio_err and d is not None:
            self.cpu[job][p].append(cores)
            if job in self.cpu_us and d is not None:
                try:
                    iops = _fio_rw(d, METRICS[job][1])["iops"]
                    if iops > 0:
                        self.cpu_us[job][p].append(cores * 1e6 / iops)
                except (KeyError, IndexError):
                    pass
        if p == "lanefs" and job in self.bytes:
            st, text = bytes_check(base)
            self.bytes[job].append((r, st, text))
        if p == "lanefs" and run.get("rc", "0") == "0":
            q = requests_per_op(base, job)
            if q is not None:
                self.rpcs[job].append(q)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def load_runs(results):
    """(top-level meta.env, rounds, [Run per backing store, tmpfs first])."""
    env = read_env(os.path.join(results, "meta.env"))
    rounds = int(env.get("rounds", "3"))
    backings = [b for b in env.get("backings", "").split() if os.path.isdir(os.path.join(results, b))]
    backings.sort(key=lambda b: BACKING_ORDER.index(b) if b in BACKING_ORDER else 99)
    return env, rounds, [Run(results, b, rounds) for b in backings]
