#!/usr/bin/env bash
# Runs the small-RPC benchmark (bench/rpc_bench.cc) and writes its results
# into the "## Small RPCs over UDP (loopback)" section of docs/benchmarks.md,
# replacing that section if it exists and leaving every other section alone.
#
# Usage: bench/run_rpc_bench.sh BUILD_DIR [rpc_bench options...]
# Called by `make bench` after the build.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [rpc_bench options...]" >&2
  exit 2
fi
build_dir=$1
shift
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
doc=$src_dir/docs/benchmarks.md
section="## Small RPCs over UDP (loopback)"

# Up to date already after `make build`; cheap when nothing changed.
cmake --build "$build_dir" --target rpc_bench >/dev/null
bench=$build_dir/bench/rpc_bench
[[ -x $bench ]] || { echo "$0: $bench not built" >&2; exit 1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
# Default options (on a 2-core machine no thread busy-polls), then one
# busy-polling thread per process (--spin-slots 1), as a machine with spare
# cores runs by default (a quarter of its CPUs).
table=$("$bench" "$@")
table_spin=$("$bench" --spin-slots 1 "$@")

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
new_section=$(cat <<EOF
$section

Machine \`$(hostname)\`${cpu:+ ($cpu)}, nproc $(nproc), kernel $(uname -r);
measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`make bench\` (\`bench/run_rpc_bench.sh\`);
load average before the run: $load_before.
Raw UDP: two sockets on 127.0.0.1, blocking \`sendto\`/\`recvfrom\`, an echo thread and a
pinging thread. lanefs RPC: one \`RpcClient\` and one \`RpcServer\` (echo handler) on the UDP
lane, 127.0.0.1. The calling thread sends and reaps its own calls (no hand-off); the
server answers on the loop that received the request. Rounds alternate UDP baseline,
RPC with one call outstanding, RPC with many calls outstanding (one thread, an
\`RpcClient::Batch\`).

**Default options** (\`spin_slots\` = a quarter of the CPUs: none here, every wait sleeps):

$table

**One busy-polling thread per process** (\`--spin-slots 1\`: a waiting thread polls up to
20 µs before it sleeps, as on a machine with spare cores):

$table_spin
EOF
)

if [[ ! -f $doc ]]; then
  mkdir -p "$(dirname "$doc")"
  cat >"$doc" <<'EOF'
# lanefs benchmarks

Numbers in this file come from `make bench`, run on the machine named in each section,
with the date, `nproc` and kernel version of the run.
EOF
fi

# Replace the section (from its heading to the next "## " heading) or append it.
tmp=$(mktemp "$doc.XXXXXX")
trap 'rm -f "$tmp"' EXIT
NEW_SECTION=$new_section awk -v head="$section" '
  BEGIN { done = 0; skipping = 0 }
  $0 == head { if (!done) { print ENVIRON["NEW_SECTION"]; print ""; done = 1 } skipping = 1; next }
  skipping && /^## / { skipping = 0 }
  !skipping { print }
  END { if (!done) { print ""; print ENVIRON["NEW_SECTION"] } }
' "$doc" >"$tmp"
# Collapse runs of blank lines the splice may leave behind.
cat -s "$tmp" >"$doc"
echo "updated $doc:"
echo "$new_section"
