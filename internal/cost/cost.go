// Package cost predicts what a partitioned model costs on a cluster: a
// per-device timeline of compute and transfers (a discrete-event simulation
// of exactly the programs the devices will run) and each device's peak
// memory.
package cost

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
)

// Params are the cost model's constants that are not in the cluster spec.
type Params struct {
	// CopyBytesPerSec is the speed of local memory copies (slicing,
	// assembling regions).
	CopyBytesPerSec float64
	// RuntimeOverheadBytes is the fixed memory of a worker process (Go
	// runtime, binary, connection buffers): the VmHWM of a worker deployed
	// with an empty program, measured on the testbed (docs/VALIDATION.md).
	RuntimeOverheadBytes int64
	// ComputeOverheadBytes is what a worker adds once its program computes
	// (kernel thread pool and packing scratch, peer-connection buffers,
	// the request's trace): the median of measured minus predicted peak
	// over the devices of the validation runs that compute.
	ComputeOverheadBytes int64
	// GCPercent is the workers' garbage-collector target (GOGC,
	// worker.DefaultGCPercent). What a request allocates outside the arena
	// (its input and output regions, received and extracted send regions)
	// is freed by the collector, which lets the heap grow to
	// (1+GCPercent/100) times the live heap before it collects. A worker
	// makes those pages resident when it is deployed (so that requests do
	// not fault them in), and keeps them.
	GCPercent int
	// Calibration is, per device, measured / estimated time of the model's
	// nodes (CalibrationFor): a compute step of node n on device d takes
	// Calibration[d][n].Factor times the class model's estimate. Nil or
	// missing: the class model alone.
	Calibration []map[string]Calibration
}

// DefaultParams: RuntimeOverheadBytes and GCPercent measured on the
// netns testbed (docs/VALIDATION.md; the VmHWM of a worker that holds an
// empty program is 12.6–13.0 MiB after 6 requests and 13.0–13.9 MiB after
// 50, the middle of which is used); CopyBytesPerSec for a
// Raspberry-Pi-class board.
var DefaultParams = Params{CopyBytesPerSec: 2e9, RuntimeOverheadBytes: 13<<20 + 512<<10, ComputeOverheadBytes: 6 << 20, GCPercent: 10}

// Span is one interval of a device's predicted timeline.
type Span struct {
	Kind    string  `json:"kind"` // compute, copy, send, recv-wait, net-cpu, throttled (a device under a CFS limit waiting for its next period), input, output
	Node    string  `json:"node"`
	Op      string  `json:"op,omitempty"`
	Peer    int     `json:"peer,omitempty"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	Bytes   int64   `json:"bytes,omitempty"`
	FLOPs   int64   `json:"flops,omitempty"`
}

// Timeline is the predicted Gantt chart: spans per device.
type Timeline struct {
	Devices [][]Span `json:"devices"`
}

// Work is what one operator application costs: its FLOPs, its operator
// class and the bytes it moves through memory (ops.Def.TrafficBytes: every
// input, weights included, and every output; a convolution's im2col matrix
// in place of its image).
type Work struct {
	FLOPs int64
	Class ops.Class
	Bytes int64
}

// NodeWork is the work of node n on inputs in producing outs.
func NodeWork(n *graph.Node, in []ops.Input, outs []graph.ValueInfo) Work {
	def, ok := ops.Lookup(n.Op)
	if !ok || def.FLOPs == nil || def.View {
		return Work{Class: ops.ClassElem}
	}
	return Work{FLOPs: def.FLOPs(n, in, outs), Class: def.ClassFor(n, in), Bytes: def.TrafficBytes(n, in, outs)}
}

// Seconds is the time work takes on device d: FLOPs at the device's speed
// for the class plus, when the spec has a memory term for the class, the
// bytes at that rate. Operators without FLOPs (shape operations) are free.
func Seconds(spec *cluster.Spec, d int, w Work) float64 {
	if w.FLOPs <= 0 {
		return 0
	}
	t := float64(w.FLOPs) / spec.Speed(d, string(w.Class))
	if bps := spec.MemorySpeed(d, string(w.Class)); bps > 0 {
		t += float64(w.Bytes) / bps
	}
	return t
}

// Calibration scales the class model's estimate for one node.
type Calibration struct {
	Op     string  // the node's operator (a step of another operator for the same node, e.g. a deferred activation, is not scaled)
	Factor float64 // measured / estimated
}

// NodeSeconds is Seconds for a compute step running op for node (the
// graph node it computes, whole or a slice of it) on device d, scaled by
// the node's calibration factor when prm has one.
func NodeSeconds(spec *cluster.Spec, prm *Params, d int, node, op string, w Work) float64 {
	t := Seconds(spec, d, w)
	if d < len(prm.Calibration) {
		if c, ok := prm.Calibration[d][node]; ok && c.Op == op {
			t *= c.Factor
		}
	}
	return t
}

// Calibration factors are kept within [1/maxCalibration, maxCalibration]:
// a layer measured that far from its class is more likely a bad
// measurement than a kernel that bad.
const maxCalibration = 4

// CalibrationFor returns, per device of spec, measured / estimated time
// of every node of g that spec.LayerMS[model] times on that device (see
// Params.Calibration); nil when the spec has no times for the model.
func CalibrationFor(g *graph.Graph, spec *cluster.Spec, model string) []map[string]Calibration {
	times := spec.LayerMS[model]
	if len(times) == 0 {
		return nil
	}
	nodes := map[string]*graph.Node{}
	for _, n := range g.Nodes {
		nodes[n.Name] = n
	}
	cal := make([]map[string]Calibration, spec.N())
	for d, dev := range spec.Devices {
		cal[d] = map[string]Calibration{}
		for name, ms := range times[dev.Name] {
			n, ok := nodes[name]
			if !ok || ms <= 0 {
				continue
			}
			est := Seconds(spec, d, NodeWork(n, ops.InputsOf(g, n), ops.OutputsOf(g, n)))
			if est <= 0 {
				continue
			}
			cal[d][name] = Calibration{Op: n.Op, Factor: min(max(ms/1e3/est, 1.0/maxCalibration), maxCalibration)}
		}
	}
	return cal
}

// StepWork is the work of a compute step of program p.
func StepWork(p *partition.Program, s *partition.Step) Work {
	in, outs := p.NodeIO(s.Node)
	return NodeWork(s.Node, in, outs)
}

type devState struct {
	pc   int
	time float64 // seconds
	// debt is device time owed to communication: the CPU a device spends
	// sending and receiving (spec.NetSecondsPerByte) is paid out of the
	// time it waits for a message, and what is left delays its next
	// computation.
	debt float64
}

type msgKey struct{ from, to, tag int }

// Predict simulates the programs on the cluster and returns the predicted
// latency, per-device load and memory, and the timeline.
//
// Devices under a CFS bandwidth limit (spec.CFS) are simulated period by
// period, and where their periods start relative to each other and to the
// request is chance; so are the shares connections get of a link (the
// spec's share_spread). Predict then simulates CFSSamples requests with
// different period phases and connection weights (fixed seeds: the same
// programs and spec always give the same answer) and reports their mean
// latency with the timeline of the sample closest to it.
func Predict(ps *partition.Programs, spec *cluster.Spec, prm Params) (*plan.Prediction, *Timeline, error) {
	n := len(ps.Devices)
	if n != spec.N() {
		return nil, nil, fmt.Errorf("programs for %d devices, cluster has %d", n, spec.N())
	}
	limited, uneven := false, false
	for d := 0; d < n; d++ {
		if _, _, ok := spec.CFS(d); ok {
			limited = true
		}
		for e := 0; e < n; e++ {
			if e != d && spec.LinkBetween(d, e).ShareSpread > 0 {
				uneven = true
			}
		}
	}
	if !limited && !uneven {
		return predict(ps, spec, prm, nil, nil)
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	type sample struct {
		pred *plan.Prediction
		tl   *Timeline
	}
	var samples []sample
	mean := 0.0
	for k := 0; k < CFSSamples; k++ {
		var phase []float64
		if limited {
			phase = make([]float64, n)
			for d := range phase {
				if _, per, ok := spec.CFS(d); ok {
					phase[d] = rng.Float64() * per
				}
			}
		}
		var weights *rand.Rand
		if uneven {
			weights = rand.New(rand.NewPCG(2, uint64(k)))
		}
		pred, tl, err := predict(ps, spec, prm, phase, weights)
		if err != nil {
			return nil, nil, err
		}
		samples = append(samples, sample{pred, tl})
		mean += pred.LatencyMS / CFSSamples
	}
	best := samples[0]
	for _, s := range samples[1:] {
		if math.Abs(s.pred.LatencyMS-mean) < math.Abs(best.pred.LatencyMS-mean) {
			best = s
		}
	}
	best.pred.LatencyMS = mean
	return best.pred, best.tl, nil
}

// predict is one simulation; phase[d] is device d's period phase (nil:
// every device is fluid, running steadily at its profiled speed); weights
// draws the connections' shares (nil: even, see newNetwork).
func predict(ps *partition.Programs, spec *cluster.Spec, prm Params, phase []float64, weights *rand.Rand) (*plan.Prediction, *Timeline, error) {
	n := len(ps.Devices)
	st := make([]devState, n)
	lim := make([]*cfs, n)
	for d := range lim {
		if q, per, ok := spec.CFS(d); ok && phase != nil {
			lim[d] = &cfs{share: q, quota: q * per, period: per, phase: phase[d], k: math.MinInt64}
		}
	}
	tl := &Timeline{Devices: make([][]Span, n)}
	arrival := map[msgKey]float64{}
	pred := &plan.Prediction{Devices: make([]plan.DevicePrediction, n)}
	for d := range pred.Devices {
		pred.Devices[d].Name = spec.Devices[d].Name
	}
	// The coordinator sends every device its input regions at once: the
	// transfers share its link (each device's finishes when its bytes are
	// through at an equal share of the rate), and a device starts when its
	// inputs are in. A device without inputs starts when the request
	// message arrives.
	coord := spec.CoordinatorLink()
	inBytes, outBytes := make([]int64, n), make([]int64, n)
	for d, p := range ps.Devices {
		inBytes[d], outBytes[d] = ioBytes(p, p.Inputs), ioBytes(p, p.Outputs)
	}
	for d, at := range SharedArrivals(inBytes, float64(coord.Bandwidth)) {
		st[d].time = at + coord.LatencyMS/1e3
		if inBytes[d] > 0 {
			tl.Devices[d] = append(tl.Devices[d], Span{Kind: "input", StartMS: 0, EndMS: st[d].time * 1e3, Bytes: inBytes[d]})
		}
	}
	// The CPU a device spends on its messages, per byte (device time), and
	// settling what it still owes before it computes or finishes.
	sendSec, recvSec, msgSec := make([]float64, n), make([]float64, n), make([]float64, n)
	for d := range sendSec {
		sendSec[d], recvSec[d] = spec.NetSecondsPerByte(d)
		msgSec[d] = spec.NetSecondsPerMessage(d)
	}
	// Under a CFS limit a step's CPU time is its device time (at the
	// sustained share) × the quota's fraction of the period, run period
	// by period.
	advance := func(d int, t, dur float64) float64 {
		if c := lim[d]; c != nil {
			return c.run(t, dur*c.share)
		}
		return t + dur
	}
	settle := func(d int, node string) {
		if debt := st[d].debt; debt > 0 {
			t := st[d].time
			end := advance(d, t, debt)
			tl.Devices[d] = append(tl.Devices[d], Span{Kind: "net-cpu", Node: node, StartMS: t * 1e3, EndMS: end * 1e3})
			st[d].time, st[d].debt = end, 0
		}
	}
	// Discrete-event simulation: the next event is either the device with
	// the smallest clock running one step, or the next message completing
	// in the fluid network model (whichever is earlier), so messages start
	// and share the links in time order.
	nw := newNetwork(spec, weights)
	h := &clockHeap{}
	for d := 0; d < n; d++ {
		if len(ps.Devices[d].Steps) > 0 {
			heap.Push(h, clockItem{d, st[d].time})
		}
	}
	blocked := map[msgKey]int{} // message a device waits for → device
	arrive := func(k msgKey, at float64) {
		arrival[k] = at
		if w, ok := blocked[k]; ok {
			delete(blocked, k)
			heap.Push(h, clockItem{w, st[w].time})
		}
	}
	for {
		tf, flowing := nw.next()
		if h.Len() == 0 && !flowing {
			break
		}
		if flowing && (h.Len() == 0 || tf <= (*h)[0].time) {
			nw.advance(tf)
			for _, f := range nw.completed() {
				end := nw.now + f.latency
				tl.Devices[f.key.from][f.span].EndMS = end * 1e3
				arrive(f.key, end)
			}
			continue
		}
		d := heap.Pop(h).(clockItem).dev
		p := ps.Devices[d]
		s := &p.Steps[st[d].pc]
		t := st[d].time
		if c := lim[d]; c != nil {
			// A device whose quota is spent does nothing (no computing,
			// no sending) until its next period.
			if r := c.ready(t); r > t {
				tl.Devices[d] = append(tl.Devices[d], Span{Kind: "throttled", Node: s.Orig, StartMS: t * 1e3, EndMS: r * 1e3})
				st[d].time = r
				heap.Push(h, clockItem{d, r})
				continue
			}
		}
		nw.advance(t)
		switch s.Kind {
		case partition.Compute:
			settle(d, s.Orig)
			t = st[d].time
			w := StepWork(p, s)
			dur := NodeSeconds(spec, &prm, d, s.Orig, s.Node.Op, w)
			end := advance(d, t, dur)
			tl.Devices[d] = append(tl.Devices[d], Span{Kind: "compute", Node: s.Orig, Op: s.Node.Op, StartMS: t * 1e3, EndMS: end * 1e3, FLOPs: w.FLOPs})
			pred.Devices[d].ComputeMS += dur * 1e3
			st[d].time = end
		case partition.Copy:
			dur := float64(s.Bytes) / prm.CopyBytesPerSec
			if dur > 0 {
				tl.Devices[d] = append(tl.Devices[d], Span{Kind: "copy", Node: s.Orig, StartMS: t * 1e3, EndMS: (t + dur) * 1e3, Bytes: s.Bytes})
			}
			st[d].time += dur
		case partition.Send:
			link := spec.LinkBetween(d, s.Peer)
			k := msgKey{d, s.Peer, s.Tag}
			lat := link.LatencyMS / 1e3
			tl.Devices[d] = append(tl.Devices[d], Span{Kind: "send", Node: s.Orig, Peer: s.Peer, StartMS: t * 1e3, EndMS: (t + lat) * 1e3, Bytes: s.Bytes})
			if s.Bytes > 0 {
				nw.add(&flow{key: k, remaining: float64(s.Bytes), cap: float64(link.Bandwidth), latency: lat, span: len(tl.Devices[d]) - 1})
			} else {
				arrive(k, t+lat)
			}
			st[d].debt += float64(s.Bytes)*sendSec[d] + msgSec[d]
			pred.BytesSent += s.Bytes
			pred.Messages++
			pred.Devices[d].BytesSent += s.Bytes
			pred.Devices[s.Peer].BytesReceived += s.Bytes
		case partition.Recv:
			k := msgKey{s.Peer, d, s.Tag}
			a, ok := arrival[k]
			if !ok {
				blocked[k] = d
				continue // resumed by arrive
			}
			st[d].debt += float64(s.Bytes)*recvSec[d] + msgSec[d]
			if a > t {
				tl.Devices[d] = append(tl.Devices[d], Span{Kind: "recv-wait", Node: s.Orig, Peer: s.Peer, StartMS: t * 1e3, EndMS: a * 1e3, Bytes: s.Bytes})
				st[d].time = a
				paid := min(st[d].debt, a-t) // waiting pays the debt
				st[d].debt -= paid
				if c := lim[d]; c != nil && paid > 0 {
					c.use(a, paid*c.share)
				}
			}
			// Adding or placing the received region is a local copy.
			st[d].time += float64(s.Bytes) / prm.CopyBytesPerSec
		}
		st[d].pc++
		if st[d].pc < len(p.Steps) {
			heap.Push(h, clockItem{d, st[d].time})
		}
	}
	for d := 0; d < n; d++ {
		if st[d].pc < len(ps.Devices[d].Steps) {
			s := ps.Devices[d].Steps[st[d].pc]
			return nil, nil, fmt.Errorf("internal: device %d waits forever at step %d (%s from device %d, node %s)", d, st[d].pc, s.Kind, s.Peer, s.Orig)
		}
		// What the device still owes its sends and receives delays its
		// result; then its outputs go back to the coordinator.
		settle(d, "")
		end := st[d].time + float64(outBytes[d])/float64(coord.Bandwidth) + coord.LatencyMS/1e3
		if outBytes[d] > 0 {
			tl.Devices[d] = append(tl.Devices[d], Span{Kind: "output", StartMS: st[d].time * 1e3, EndMS: end * 1e3, Bytes: outBytes[d]})
		}
		if t := end * 1e3; t > pred.LatencyMS {
			pred.LatencyMS = t
		}
	}
	for d, p := range ps.Devices {
		pred.Devices[d].WeightBytes = p.WeightBytes()
		pred.Devices[d].PeakMemoryBytes = PeakMemoryBytes(p, prm, int64(spec.Devices[d].Memory))
	}
	pred.ComputeMS, pred.CommMS = criticalSplit(tl, pred.LatencyMS)
	return pred, tl, nil
}

// ioBytes is the size of a device's graph-input or graph-output regions.
func ioBytes(p *partition.Program, io []partition.IOSlice) int64 {
	var b int64
	for _, s := range io {
		dt := p.Values[s.Local].DType
		if t, ok := p.Consts[s.Local]; ok {
			dt = t.DType
		}
		b += int64(s.Box.Numel()) * int64(dt.Size())
	}
	return b
}

// SharedArrivals returns when each of several transfers started together
// over one link of rate bytes/s completes, the active transfers sharing the
// rate equally (processor sharing).
func SharedArrivals(bytes []int64, rate float64) []float64 {
	idx := make([]int, len(bytes))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return bytes[idx[a]] < bytes[idx[b]] })
	at := make([]float64, len(bytes))
	var t float64
	var done int64
	active := 0
	for _, i := range idx {
		if bytes[i] > 0 {
			active++
		}
	}
	for _, i := range idx {
		if bytes[i] <= 0 {
			continue
		}
		t += float64(bytes[i]-done) * float64(active) / rate
		done = bytes[i]
		active--
		at[i] = t
	}
	return at
}

// criticalSplit attributes the latency of the slowest device to compute and
// to waiting for communication.
func criticalSplit(tl *Timeline, latency float64) (compute, comm float64) {
	best := -1.0
	for _, spans := range tl.Devices {
		var c, w, end float64
		for _, s := range spans {
			switch s.Kind {
			case "compute", "copy", "throttled":
				c += s.EndMS - s.StartMS
			case "recv-wait", "net-cpu":
				w += s.EndMS - s.StartMS
			}
			end = max(end, s.EndMS)
		}
		if end > best {
			best, compute, comm = end, c, w
		}
	}
	return compute, comm
}

// PeakMemoryBytes is a device's predicted peak resident memory: its weight
// shards, the kernels' packed copies of them, its peak live activations,
// the garbage collector's headroom over that live heap and the runtime's
// fixed overhead. limit is the device's memory (0: none): a worker with a
// memory limit sets it as the garbage collector's soft limit, which
// collects before the headroom would cross it.
func PeakMemoryBytes(p *partition.Program, prm Params, limit int64) int64 {
	arena := partition.PlanArena(p)
	live := p.WeightBytes() + PackedWeightBytes(p) + peakActivationBytes(p, arena)
	over := prm.RuntimeOverheadBytes
	for _, s := range p.Steps {
		if s.Kind == partition.Compute {
			over += prm.ComputeOverheadBytes
			break
		}
	}
	h := gcHeadroomBytes(live, prm)
	if limit > 0 {
		h = max(0, min(h, limit-live-over))
	}
	return live + h + over
}

// gcHeadroomBytes is the garbage the heap holds on top of live bytes:
// GCPercent of the live heap, made resident by the worker at deployment.
func gcHeadroomBytes(live int64, prm Params) int64 {
	return live * int64(prm.GCPercent) / 100
}

// PackedWeightBytes is the memory of the GEMM-panel copies the kernels make
// of convolution weights when they are prepared (kernels.NewConv packs the
// weights once and keeps the original too; depthwise convolutions are not
// packed).
func PackedWeightBytes(p *partition.Program) int64 {
	var b int64
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.Kind != partition.Compute || s.Node.Op != "Conv" || len(s.Node.Inputs) < 2 {
			continue
		}
		w, ok := p.Consts[s.Node.Inputs[1]]
		if !ok || len(w.Shape) != 4 || seen[s.Node.Inputs[1]] {
			continue
		}
		group := int(s.Node.Int("group", 1))
		if group > 1 && w.Shape[1] == 1 {
			continue // depthwise: direct kernel, no packing
		}
		seen[s.Node.Inputs[1]] = true
		b += w.Bytes()
	}
	return b
}

// PeakActivationBytes is the activation memory of a program: its arena
// (partition.PlanArena: the buffers every computed or allocated float32
// tensor lives in) plus the most that the tensors outside it (inputs, graph
// outputs, received and extracted send regions) take at any step.
func PeakActivationBytes(p *partition.Program) int64 {
	return peakActivationBytes(p, partition.PlanArena(p))
}

func peakActivationBytes(p *partition.Program, arena *partition.Arena) int64 {
	live := map[string]int64{}
	var cur, peak int64
	add := func(name string) {
		if _, ok := live[name]; ok {
			return
		}
		if _, isConst := p.Consts[name]; isConst {
			return
		}
		if _, inArena := arena.Buffer[name]; inArena {
			live[name] = 0
			return
		}
		v := p.Values[name]
		b := int64(v.Shape.Numel()) * int64(v.DType.Size())
		live[name] = b
		cur += b
	}
	for _, in := range p.Inputs {
		add(in.Local)
	}
	peak = cur
	for _, s := range p.Steps {
		switch s.Kind {
		case partition.Compute:
			if isView(s.Node.Op) {
				live[s.Node.Outputs[0]] = 0
				continue
			}
			for _, o := range s.Node.Outputs {
				if o != "" {
					add(o)
				}
			}
		case partition.Alloc:
			add(s.Dst)
		case partition.Send:
			// The extracted region is a temporary buffer until it is sent.
			peak = max(peak, cur+s.Bytes)
		case partition.Recv:
			peak = max(peak, cur+s.Bytes)
		case partition.Free:
			for _, name := range s.Names {
				cur -= live[name]
				delete(live, name)
			}
		}
		peak = max(peak, cur)
	}
	return arena.Bytes() + peak
}

func isView(op string) bool {
	d, ok := ops.Lookup(op)
	return ok && d.View
}

// NodeTimes sums a timeline's compute per model node and device, and its
// communication waits per node.
func NodeTimes(tl *Timeline) (compute map[string][]float64, comm map[string]float64) {
	compute, comm = map[string][]float64{}, map[string]float64{}
	n := len(tl.Devices)
	for d, spans := range tl.Devices {
		for _, s := range spans {
			switch s.Kind {
			case "compute", "copy", "throttled":
				if compute[s.Node] == nil {
					compute[s.Node] = make([]float64, n)
				}
				compute[s.Node][d] += s.EndMS - s.StartMS
			case "recv-wait", "net-cpu":
				comm[s.Node] = max(comm[s.Node], s.EndMS-s.StartMS)
			}
		}
	}
	return compute, comm
}

// SortedNames returns the keys of m in order.
func SortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type clockItem struct {
	dev  int
	time float64
}

type clockHeap []clockItem

func (h clockHeap) Len() int { return len(h) }
func (h clockHeap) Less(i, j int) bool {
	if h[i].time != h[j].time {
		return h[i].time < h[j].time
	}
	return h[i].dev < h[j].dev
}
func (h clockHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *clockHeap) Push(x any)   { *h = append(*h, x.(clockItem)) }
func (h *clockHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
