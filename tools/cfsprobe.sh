#!/usr/bin/env bash
# tools/cfsprobe.sh — how the kernel's CFS bandwidth limit runs a thread
# (docs/VALIDATION.md, session 8; the cost model's is internal/cost/cfs.go).
# Needs root and cgroup v1's cpu controller at /sys/fs/cgroup/cpu.
#   QUOTA [0.45] of a core, PERIOD_US [5000], N [4] processes for "sync".
set -euo pipefail
cd "$(dirname "$0")/.."
QUOTA=${QUOTA:-0.45}; PERIOD_US=${PERIOD_US:-5000}; N=${N:-4}
bin=$(mktemp -d)/cfsprobe
go build -o "$bin" ./tools/cfsprobe
cg=()
cleanup() { for g in "${cg[@]}"; do rmdir "$g" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 0 $((N - 1))); do
  g=/sys/fs/cgroup/cpu/cfsprobe$$-$i
  mkdir "$g"; cg+=("$g")
  echo -1 > "$g/cpu.cfs_quota_us"; echo "$PERIOD_US" > "$g/cpu.cfs_period_us"
  q=$(awk -v q="$QUOTA" -v p="$PERIOD_US" 'BEGIN { printf "%d", q * p }')
  echo "$q" > "$g/cpu.cfs_quota_us"
done
inside() { local g=$1; shift; bash -c 'echo $$ > '"$g"'/tasks; exec "$@"' _ "$@"; }
echo "kernel $(uname -r), quota $QUOTA of a core, period ${PERIOD_US} us"
inside "${cg[0]}" "$bin" spin
inside "${cg[0]}" "$bin" idle
echo "alone:"; inside "${cg[0]}" "$bin" sync -cpu 4,8,12
echo "$N at once:"
for i in $(seq 0 $((N - 1))); do inside "${cg[$i]}" "$bin" sync -cpu 4,8,12 > "$bin.$i" & done
wait
cat "$bin".*
