#!/usr/bin/env bash
# tools/irqtrace.sh — where the CPU goes besides the kernels during a command
# (docs/VALIDATION.md, session 9, item 28): records the kernel's scheduler and
# interrupt events through tracefs while COMMAND runs, then summarizes
#   * interrupt and softirq time by kind and by the task it interrupted
#     (billed to that task: these kernels have no IRQ time accounting),
#   * the most woken threads of processes named iop* (sysmon shows here),
#   * for each iop* process, its busiest thread's involuntary switches and
#     what ran instead.
# Needs root. Usage:
#   tools/irqtrace.sh OUT.txt -- iop run resnet18 --local 2 --strategy oc ...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: tools/irqtrace.sh OUT.txt -- COMMAND...}
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: tools/irqtrace.sh OUT.txt -- COMMAND..." >&2; exit 2; }
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T
events="sched:sched_switch sched:sched_wakeup irq:softirq_entry irq:softirq_exit irq:irq_handler_entry irq:irq_handler_exit"
for v in local_timer reschedule call_function call_function_single; do
  [ -e $T/events/irq_vectors/${v}_entry ] && events="$events irq_vectors:${v}_entry irq_vectors:${v}_exit"
done
old_events=$(cat $T/set_event)
old_tgid=$(cat $T/options/record-tgid)
old_size=$(cat $T/buffer_size_kb)
restore() {
  echo 0 > $T/tracing_on
  echo "$old_events" > $T/set_event
  echo "$old_tgid" > $T/options/record-tgid
  echo "$old_size" > $T/buffer_size_kb
}
trap restore EXIT
echo 0 > $T/tracing_on
echo 1 > $T/options/record-tgid
echo 131072 > $T/buffer_size_kb
echo "$events" > $T/set_event
echo > $T/trace
echo 1 > $T/tracing_on
rc=0
"$@" || rc=$?
echo 0 > $T/tracing_on
cat $T/trace > "$out"
if grep -q "overrun: [1-9]" $T/per_cpu/cpu*/stats; then
  echo "irqtrace: the trace buffer overran; the summary misses events" >&2
fi
python3 "$here/irqtrace.py" "$out"
exit $rc
