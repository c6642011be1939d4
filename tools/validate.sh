#!/usr/bin/env bash
# tools/validate.sh — the cost model against measurement on the netns+tc
# testbed (docs/VALIDATION.md).
#
# For each n, the first run profiles its freshly started workers
# (`iop run --local n --profile`: operator speed inside each worker's CPU
# quota, link goodput and latency through the tc-shaped links) and caches
# the measured spec; every run at that n plans with that spec
# (--profile-cache) on a fresh testbed with the same emulation. Each run is
# `--repeat $REPEAT --json`; the medians and each device's VmHWM are
# compared with the cost model's prediction.
#
# Environment (defaults in brackets):
#   IOP        iop binary [built from this checkout into $OUT/iop]
#   OUT        output directory [/tmp/iop-validate]
#   MODELS     [alexnet vgg16 resnet18 mobilenetv2]
#   STRATEGIES [single oc hp coedge iop optimal]
#   NS         [2 3 4]
#   VGG_NS     n for vgg16 [4] (VGG-16 is 2/3 of the time at every n)
#   QUOTA      CPU per worker, fraction of a core [0.45: 4 × 0.45 ≤ 1.8 of 2 cores]
#   CPU_PERIOD CFS period of the quota [0: the testbed default, 5ms or 1ms/quota: a steadily slower device, not a
#              full-speed one that stalls for the rest of a 100 ms period]
#   BANDWIDTH  link rate [100Mbps]
#   REPEAT     requests per run [5]
#   REPEAT_TIME ...or as many as fit in this time by the predicted latency (iop run --repeat-time) [3s]
#   REPROFILE  1: measure again even if $OUT/spec-n*.yaml exist [1]
#   PROFILE_BUDGET operator-speed measuring time per worker [5s: iop profile's default]
#   PAUSE_DAMON 1: switch the kernel's DAMON monitors (kdamond) off while measuring and back on after [1]:
#              on these VMs a DAMON pass every 500 ms stalled the workers for tens of ms, every other
#              request of a 250 ms model (docs/VALIDATION.md)
# Needs root (the testbed). Prints the Markdown table; raw JSON in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/iop-validate}
MODELS=${MODELS:-"alexnet vgg16 resnet18 mobilenetv2"}
STRATEGIES=${STRATEGIES:-"single oc hp coedge iop optimal"}
NS=${NS:-"2 3 4"}
VGG_NS=${VGG_NS:-"4"}
QUOTA=${QUOTA:-0.45}
CPU_PERIOD=${CPU_PERIOD:-0}
BANDWIDTH=${BANDWIDTH:-100Mbps}
REPEAT=${REPEAT:-5}
REPEAT_TIME=${REPEAT_TIME:-3s}
REPROFILE=${REPROFILE:-1}
PROFILE_BUDGET=${PROFILE_BUDGET:-5s}
PAUSE_DAMON=${PAUSE_DAMON:-1}
mkdir -p "$OUT"
damon_paused=()
if [ "$PAUSE_DAMON" = 1 ]; then
  for st in /sys/kernel/mm/damon/admin/kdamonds/*/state; do
    if [ -w "$st" ] && [ "$(cat "$st")" = on ]; then echo off > "$st" && damon_paused+=("$st"); fi
  done
  trap 'for st in "${damon_paused[@]}"; do echo on > "$st"; done' EXIT
fi
if [ -z "${IOP:-}" ]; then
  go build -o "$OUT/iop" ./cmd/iop
  IOP=$OUT/iop
fi
if [ "$REPROFILE" = 1 ]; then rm -f "$OUT"/spec-n*.yaml; fi
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet -- internal/cost internal/cli/run.go || echo ' (+ uncommitted cost/run changes)')"
  echo "quota: $QUOTA (CFS period $CPU_PERIOD), bandwidth: $BANDWIDTH, repeat: $REPEAT (at least $REPEAT_TIME), profile budget: $PROFILE_BUDGET"
  echo "DAMON monitors paused: ${#damon_paused[@]}"
} > "$OUT/meta.txt"
start=$(date +%s)
for n in $NS; do
  for m in $MODELS; do
    if [ "$m" = vgg16 ] && ! grep -qw "$n" <<<"$VGG_NS"; then continue; fi
    for s in $STRATEGIES; do
      f="$OUT/$m-$s-n$n.json"
      echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg): $m $s n=$n" >&2
      if ! "$IOP" run "$m" --local "$n" --strategy "$s" --cpu-quota "$QUOTA" --cpu-period "$CPU_PERIOD" --bandwidth "$BANDWIDTH" \
          --profile --profile-cache "$OUT/spec-n$n.yaml" --profile-budget "$PROFILE_BUDGET" --repeat "$REPEAT" --repeat-time "$REPEAT_TIME" --json --nodes=false \
          --trace "$OUT/$m-$s-n$n.trace.json" > "$f.tmp" 2> "$OUT/$m-$s-n$n.err"; then
        echo "  failed: $(tail -1 "$OUT/$m-$s-n$n.err")" >&2
        { echo '{"model":"'"$m"'","strategy":"'"$s"'","n":'"$n"',"error":'; tail -1 "$OUT/$m-$s-n$n.err" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read().strip()))'; echo '}'; } > "$f"
        rm -f "$f.tmp"
        continue
      fi
      mv "$f.tmp" "$f"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), wall $(( $(date +%s) - start )) s" >> "$OUT/meta.txt"
cat "$OUT/meta.txt"
python3 tools/validate_table.py "$OUT"
