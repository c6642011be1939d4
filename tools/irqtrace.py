#!/usr/bin/env python3
"""Summarize a tracefs text trace recorded by tools/irqtrace.sh."""
import collections
import re
import sys

LINE = re.compile(r'^\s*(.+?)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[(\d+)\]\s+(\S+)\s+([\d.]+): (\w+): (.*)$')
FIELD = re.compile(r'(\w+)=(\S+)')


def main(path):
    tgid = {}          # tid -> tgid
    comm = {}          # tid -> comm
    current = {}       # cpu -> (tid, comm)
    since = {}         # cpu -> time the current task started
    runtime = collections.Counter()
    nest = collections.defaultdict(list)
    irq_time = collections.Counter()
    irq_count = collections.Counter()
    wakeups = collections.Counter()
    switches = []
    first = last = None
    for line in open(path, errors='replace'):
        m = LINE.match(line)
        if not m:
            continue
        c, tid, tg, cpu, flags, t, ev, rest = m.groups()
        tid, cpu, t = int(tid), int(cpu), float(t)
        first = t if first is None else first
        last = t
        if tg.isdigit():
            tgid[tid] = int(tg)
        comm.setdefault(tid, c)
        if ev == 'sched_switch':
            d = dict(FIELD.findall(rest))
            prev, nxt = int(d['prev_pid']), int(d['next_pid'])
            comm[prev], comm[nxt] = d['prev_comm'], d['next_comm']
            if cpu in since:
                runtime[current[cpu][0]] += t - since[cpu]
            current[cpu], since[cpu] = (nxt, d['next_comm']), t
            switches.append((prev, d['prev_state'], nxt))
        elif ev == 'sched_wakeup':
            d = dict(FIELD.findall(rest))
            wakeups[int(d['pid'])] += 1
        elif ev.endswith('_entry'):
            kind = ev[:-6]
            if kind == 'softirq':
                kind += ':' + re.search(r'action=(\w+)', rest).group(1)
            elif kind == 'irq_handler':
                kind += ':' + re.search(r'name=(\S+)', rest).group(1)
            nest[cpu].append((kind, t))
        elif ev.endswith('_exit') and nest[cpu]:
            kind, t0 = nest[cpu].pop()
            if nest[cpu]:
                continue  # nested: counted in the outer one
            tid_c, comm_c = current.get(cpu, (0, '?'))
            who = 'idle' if tid_c == 0 else ('iop' if comm_c.startswith('iop') else comm_c.split('/')[0])
            irq_time[(kind, who)] += t - t0
            irq_count[(kind, who)] += 1
    if first is None:
        print('no events')
        return
    span = last - first
    print('trace span %.2f s' % span)
    print('\ninterrupt and softirq time by kind and interrupted task (iop = any iop* thread):')
    by_who = collections.Counter()
    for (kind, who), v in sorted(irq_time.items(), key=lambda x: -x[1]):
        by_who[who] += v
        if v >= 0.001 * span:
            n = irq_count[(kind, who)]
            print('  %-26s %-14s %8.1f ms  %7d × %5.1f µs' % (kind, who, v * 1e3, n, v * 1e6 / n))
    print('  total: ' + ', '.join('%s %.1f ms' % (w, v * 1e3) for w, v in by_who.most_common()))

    procs = collections.Counter()
    for tid, r in runtime.items():
        if tid in tgid and comm.get(tid, '').startswith('iop'):
            procs[tgid[tid]] += r
    print('\nmost woken threads of iop* processes (wake-ups/s):')
    for tid, n in wakeups.most_common():
        if tgid.get(tid) in procs and n / span >= 10:
            print('  process %d thread %d: %.0f/s (on CPU %.3f s)' % (tgid[tid], tid, n / span, runtime[tid]))
    print('\niop* processes: busiest thread, its involuntary switches and what ran instead:')
    for g, r in procs.most_common():
        busiest = max((tid for tid in runtime if tgid.get(tid) == g), key=lambda x: runtime[x])
        instead = collections.Counter()
        for prev, state, nxt in switches:
            if prev == busiest and state.startswith('R'):
                if nxt == 0:
                    k = 'idle (throttled)'
                elif tgid.get(nxt) == g:
                    k = 'own thread'
                elif tgid.get(nxt) in procs:
                    k = 'other iop process'
                else:
                    k = comm.get(nxt, '?').split('/')[0]
                instead[k] += 1
        n = sum(instead.values())
        print('  process %d: CPU %.3f s; thread %d: %.3f s, %d preemptions (%.0f/s): %s' % (
            g, r, busiest, runtime[busiest], n, n / span,
            ', '.join('%s %d' % kv for kv in instead.most_common(6))))


if __name__ == '__main__':
    main(sys.argv[1])
