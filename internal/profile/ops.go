// Package profile measures what the cost model needs to know about a
// cluster: each device's speed per operator class (conv, depthwise, gemm,
// pool, elementwise) and each link's bandwidth and per-message latency. It
// produces a cluster.Spec (`iop profile`).
//
// The measurement code runs where it measures: MeasureOps on the device
// (inside its CPU quota), MeasureLink on one end of a link. A worker only
// has to host it: ServeConn handles connections whose hello names the
// role "profile" (requests from `iop profile`) or "probe" (the far end of a
// link measurement). The same code runs standalone as `iop profile agent`.
package profile

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// Classes are the operator classes MeasureOps reports, in order.
var Classes = []ops.Class{ops.ClassConv, ops.ClassDepthwise, ops.ClassGemm, ops.ClassPool, ops.ClassElem}

// OpsRequest asks a device to measure its operator speed.
type OpsRequest struct {
	// Threads for the kernels (0: GOMAXPROCS, what the worker uses).
	Threads int `json:"threads,omitempty"`
	// BudgetMS is the total measuring time (0: DefaultBudget). Each class
	// gets a fifth; with a CPU quota a class needs several CFS periods
	// (100 ms) to show the sustained speed.
	BudgetMS int64 `json:"budget_ms,omitempty"`
}

// DefaultBudget is the measuring time of MeasureOps when none is given.
const DefaultBudget = 5 * time.Second

// OpsResult is a device's measured speed.
type OpsResult struct {
	// ByClass is GFLOP/s per operator class: the compute term of the
	// time model fitted to the class's representative layers, time =
	// FLOPs / speed + bytes / BytesPerSec (FLOPs counted as the cost model
	// counts them). A class whose layers do not tell the two terms apart
	// has no memory term, and its speed is total FLOPs over total time.
	ByClass map[string]float64 `json:"gflops_by_class"`
	// BytesPerSec is the memory term per class (bytes of inputs, weights
	// and outputs per second); absent when the fit has none.
	BytesPerSec map[string]float64 `json:"bytes_per_sec_by_class,omitempty"`
	// GFLOPS is the conv speed, the class that dominates CNN time; the
	// cluster spec uses it for classes not listed.
	GFLOPS  float64 `json:"gflops"`
	Threads int     `json:"threads"`
	// Share is the cores the process got while measuring (CPU time over
	// wall time; 0 when the OS gives no CPU clock).
	Share float64 `json:"share,omitempty"`
	// CPUQuota and CPUPeriodMS are the process's CFS bandwidth limit as
	// its cgroup states it (0 when none can be read).
	CPUQuota    float64 `json:"cpu_quota,omitempty"`
	CPUPeriodMS float64 `json:"cpu_period_ms,omitempty"`
	// Kernel is the micro-kernel the engine dispatched to (e.g. avx2).
	Kernel string  `json:"kernel"`
	Cases  []Case  `json:"cases"`
	WallMS float64 `json:"wall_ms"`
}

// Case is one measured layer.
type Case struct {
	Class string `json:"class"`
	Name  string `json:"name"`
	FLOPs int64  `json:"flops"`
	Bytes int64  `json:"bytes"`
	Runs  int    `json:"runs"`
	// MS is the layer's share of the class's wall time (by CPU time, see
	// MeasureOps) per run; WallMS and CPUMS are the measured means.
	MS     float64 `json:"ms"`
	WallMS float64 `json:"wall_ms"`
	CPUMS  float64 `json:"cpu_ms"`
	GFLOPS float64 `json:"gflops"`
}

// layer is a representative layer of one class.
type layer struct {
	name  string
	class ops.Class
	node  *graph.Node
	opset int64
	in    []*tensor.Tensor
	konst []bool
}

func conv(name string, cin, cout, hw, k, stride, group int) layer {
	n := newNode("Conv", 3)
	n.SetInts("kernel_shape", k, k)
	n.SetInts("strides", stride, stride)
	p := k / 2
	n.SetInts("pads", p, p, p, p)
	n.SetInt("group", int64(group))
	return layer{name: name, node: n, opset: 17,
		in:    []*tensor.Tensor{rnd(1, cin, hw, hw), rnd(cout, cin/group, k, k), rnd(cout)},
		konst: []bool{false, true, true}}
}

func newNode(op string, nin int) *graph.Node {
	n := &graph.Node{Name: "profile_" + op, Op: op, Attrs: map[string]graph.Attr{}, Outputs: []string{"y"}}
	for i := 0; i < nin; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("x%d", i))
	}
	return n
}

// layers returns the representative layers: shapes from ResNet-18/50,
// MobileNetV2 and VGG-16 at 224×224, batch 1.
func layers() []layer {
	var ls []layer
	add := func(c ops.Class, l layer) { l.class = c; ls = append(ls, l) }

	add(ops.ClassConv, conv("resnet 3x3 64@56", 64, 64, 56, 3, 1, 1))
	add(ops.ClassConv, conv("resnet 3x3 256@14", 256, 256, 14, 3, 1, 1))
	add(ops.ClassConv, conv("resnet50 1x1 256→64@56", 256, 64, 56, 1, 1, 1))
	add(ops.ClassConv, conv("resnet 3x3 512@7", 512, 512, 7, 3, 1, 1))
	// Output-channel slices (oc/iop partitions): the im2col of the whole
	// input for a quarter of the multiply-adds.
	add(ops.ClassConv, conv("resnet 3x3 64→16@56", 64, 16, 56, 3, 1, 1))
	add(ops.ClassConv, conv("resnet 3x3 256→64@14", 256, 64, 14, 3, 1, 1))
	// Low arithmetic intensity (few input channels): the memory term.
	add(ops.ClassConv, conv("stem 3x3 s2 3→32@224", 3, 32, 224, 3, 2, 1))
	add(ops.ClassConv, conv("mobilenetv2 1x1 16→96@112", 16, 96, 112, 1, 1, 1))
	add(ops.ClassConv, conv("mobilenetv2 1x1 96→24@56", 96, 24, 56, 1, 1, 1))

	add(ops.ClassDepthwise, conv("mobilenetv2 dw3x3 144@56", 144, 144, 56, 3, 1, 144))
	add(ops.ClassDepthwise, conv("mobilenetv2 dw3x3 s2 96@112", 96, 96, 112, 3, 2, 96))
	add(ops.ClassDepthwise, conv("mobilenetv2 dw3x3 384@14", 384, 384, 14, 3, 1, 384))

	// Fully-connected layers at batch 1 are matrix-vector products that
	// stream their weights: in a model each is read once per request, from
	// memory unless it is small. The 64 MiB case (VGG-16's and AlexNet's
	// fc7) cannot stay in cache between runs, so the class speed, total
	// FLOPs over total time, is set by it: with 2–16 MiB cases only, the
	// weights stayed in cache and AlexNet's 151 MB fc6 ran at 2.5× the
	// time the class speed gave it.
	for _, s := range [][2]int{{512, 1000}, {4096, 1024}, {4096, 4096}} {
		n := newNode("Gemm", 3)
		n.SetInt("transB", 1)
		add(ops.ClassGemm, layer{name: fmt.Sprintf("fc %d→%d", s[0], s[1]), node: n, opset: 17,
			in: []*tensor.Tensor{rnd(1, s[0]), rnd(s[1], s[0]), rnd(s[1])}, konst: []bool{false, true, true}})
	}

	mp := newNode("MaxPool", 1)
	mp.SetInts("kernel_shape", 3, 3)
	mp.SetInts("strides", 2, 2)
	mp.SetInts("pads", 1, 1, 1, 1)
	add(ops.ClassPool, layer{name: "maxpool 3x3 s2 64@112", node: mp, opset: 17, in: []*tensor.Tensor{rnd(1, 64, 112, 112)}, konst: []bool{false}})
	mp2 := newNode("MaxPool", 1)
	mp2.SetInts("kernel_shape", 2, 2)
	mp2.SetInts("strides", 2, 2)
	add(ops.ClassPool, layer{name: "maxpool 2x2 s2 128@112", node: mp2, opset: 17, in: []*tensor.Tensor{rnd(1, 128, 112, 112)}, konst: []bool{false}})
	add(ops.ClassPool, layer{name: "globalavgpool 512@7", node: newNode("GlobalAveragePool", 1), opset: 17, in: []*tensor.Tensor{rnd(1, 512, 7, 7)}, konst: []bool{false}})

	x := []int{1, 64, 56, 56}
	add(ops.ClassElem, layer{name: "add 64@56", node: newNode("Add", 2), opset: 17, in: []*tensor.Tensor{rnd(x...), rnd(x...)}, konst: []bool{false, false}})
	add(ops.ClassElem, layer{name: "relu 64@56", node: newNode("Relu", 1), opset: 17, in: []*tensor.Tensor{rnd(x...)}, konst: []bool{false}})
	bn := newNode("BatchNormalization", 5)
	va := rnd(64)
	for i := range va.F {
		va.F[i] = va.F[i]*va.F[i] + 1
	}
	add(ops.ClassElem, layer{name: "batchnorm 64@56", node: bn, opset: 17,
		in: []*tensor.Tensor{rnd(x...), rnd(64), rnd(64), rnd(64), va}, konst: []bool{false, true, true, true, true}})
	clip := newNode("Clip", 3)
	add(ops.ClassElem, layer{name: "relu6 (clip) 144@56", node: clip, opset: 17,
		in:    []*tensor.Tensor{rnd(1, 144, 56, 56), tensor.FromFloat32(nil, []float32{0}), tensor.FromFloat32(nil, []float32{6})},
		konst: []bool{false, true, true}})
	return ls
}

// rnd is a tensor of deterministic values in [-1, 1).
func rnd(shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	s := uint32(len(shape)*7919 + 1)
	for i := range t.F {
		s = s*1664525 + 1013904223
		t.F[i] = float32(s>>8)/float32(1<<23) - 1
	}
	return t
}

// prepared is a layer ready to run.
type prepared struct {
	layer
	kern  ops.Kernel
	outs  []*tensor.Tensor
	flops int64
	bytes int64 // memory traffic (ops.Def.TrafficBytes, cost.NodeWork's Bytes)
}

func prepare(l layer) (*prepared, error) {
	d, ok := ops.Lookup(l.node.Op)
	if !ok {
		return nil, fmt.Errorf("profile: operator %s is not registered", l.node.Op)
	}
	in := layerInputs(l)
	vi, err := d.Infer(l.node, l.opset, in)
	if err != nil {
		return nil, fmt.Errorf("profile: %s: %w", l.name, err)
	}
	for i := range vi {
		vi[i].Name = l.node.Outputs[i]
	}
	if c := d.ClassFor(l.node, in); c != l.class {
		return nil, fmt.Errorf("profile: %s: operator class %s, want %s", l.name, c, l.class)
	}
	k, err := d.Prepare(l.node, l.opset, in, vi)
	if err != nil {
		return nil, fmt.Errorf("profile: %s: %w", l.name, err)
	}
	p := &prepared{layer: l, kern: k, flops: d.FLOPs(l.node, in, vi), bytes: d.TrafficBytes(l.node, in, vi)}
	for _, v := range vi {
		p.outs = append(p.outs, tensor.New(v.DType, v.Shape))
	}
	return p, nil
}

// MeasureOps measures this machine's (this process's) speed per operator
// class by running representative layers through the engine's operators.
// Each class runs its layers round-robin for a fifth of the budget and
// reports total FLOPs over total wall time: under a CPU quota that is the
// sustained speed, not the speed of a burst inside one CFS period.
func MeasureOps(ctx context.Context, req OpsRequest) (*OpsResult, error) {
	budget := time.Duration(req.BudgetMS) * time.Millisecond
	if budget <= 0 {
		budget = DefaultBudget
	}
	pool := kernels.NewPool(req.Threads)
	defer pool.Close()
	res := &OpsResult{ByClass: map[string]float64{}, Threads: pool.Threads(), Kernel: kernels.KernelName()}
	start := time.Now()
	all := layers()
	var shares []float64
	for _, class := range Classes {
		var ps []*prepared
		for _, l := range all {
			if l.class != class {
				continue
			}
			p, err := prepare(l)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		// Warm up: one run each (page faults, packing scratch).
		for _, p := range ps {
			if err := p.kern.Run(pool, p.in, p.outs); err != nil {
				return nil, fmt.Errorf("profile: %s: %w", p.name, err)
			}
		}
		tm, err := timeLayers(ctx, pool, ps, budget/time.Duration(len(Classes)), 2)
		if err != nil {
			return nil, err
		}
		shares = append(shares, tm.share)
		var flops, spent float64 // spent: seconds attributed to the layers
		var fs, bs, ts []float64
		for i, p := range ps {
			flops += float64(p.flops) * float64(tm.runs[i])
			spent += tm.sec[i] * float64(tm.runs[i])
			ms := tm.sec[i] * 1e3
			res.Cases = append(res.Cases, Case{Class: string(class), Name: p.name, FLOPs: p.flops, Bytes: p.bytes, Runs: tm.runs[i], MS: ms,
				WallMS: tm.wall[i] * 1e3, CPUMS: tm.cpu[i] * 1e3, GFLOPS: float64(p.flops) / (ms * 1e6)})
			fs, bs, ts = append(fs, float64(p.flops)), append(bs, float64(p.bytes)), append(ts, ms/1e3)
		}
		speed := flops / spent
		if a, b := FitTime(fs, bs, ts); a > 0 && b > 0 {
			speed = 1 / a
			if res.BytesPerSec == nil {
				res.BytesPerSec = map[string]float64{}
			}
			res.BytesPerSec[string(class)] = round3(1 / b)
		}
		res.ByClass[string(class)] = round3(speed / 1e9)
	}
	res.GFLOPS = res.ByClass[string(ops.ClassConv)]
	res.Share = round3(median(shares))
	if q, per, ok := cputime.Limit(); ok {
		res.CPUQuota, res.CPUPeriodMS = round3(q), float64(per.Microseconds())/1e3
	}
	res.WallMS = time.Since(start).Seconds() * 1e3
	return res, nil
}

// timing is what timeLayers measured, per layer and run (seconds).
type timing struct {
	runs []int
	sec  []float64 // the layer's share of the window's wall time
	wall []float64 // measured wall time
	cpu  []float64 // measured process CPU time
	// share is CPU time over wall time for the window: the cores this
	// process got (e.g. 0.45 under a 0.45-core quota with one thread).
	share float64
}

// timeLayers runs the prepared layers round-robin, in order, for window
// (and at least minRounds rounds). Under a CPU quota one run's wall time
// depends on where in the CFS period it falls, and a throttled thread
// tends to stop at a system call (an accounting point) such as the
// CPU-time reading between runs; a run's CPU time depends on neither. Each
// layer therefore gets the window's wall time in proportion to its CPU
// time: the sum (the sustained speed) is what the window measured, and
// the split between layers is as steady as without a quota. Without a CPU
// clock the measured wall times are used.
func timeLayers(ctx context.Context, pool *kernels.Pool, ps []*prepared, window time.Duration, minRounds int) (*timing, error) {
	n := len(ps)
	runs := make([]int, n)
	times := make([]time.Duration, n)
	cpus := make([]time.Duration, n)
	t0 := time.Now()
	for k := 0; time.Since(t0) < window || k < minRounds*n; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i := k % n
		p := ps[i]
		s, c := time.Now(), cputime.Process()
		if err := p.kern.Run(pool, p.in, p.outs); err != nil {
			return nil, fmt.Errorf("profile: %s: %w", p.name, err)
		}
		times[i] += time.Since(s)
		cpus[i] += cputime.Process() - c
		runs[i]++
	}
	elapsed := time.Since(t0)
	var totalCPU time.Duration
	for _, c := range cpus {
		totalCPU += c
	}
	tm := &timing{runs: runs, sec: make([]float64, n), wall: make([]float64, n), cpu: make([]float64, n)}
	scale := 0.0
	if totalCPU > 0 {
		scale = elapsed.Seconds() / totalCPU.Seconds()
		tm.share = totalCPU.Seconds() / elapsed.Seconds()
	}
	for i := range ps {
		r := float64(max(runs[i], 1))
		tm.wall[i] = times[i].Seconds() / r
		tm.cpu[i] = cpus[i].Seconds() / r
		tm.sec[i] = tm.wall[i]
		if scale > 0 && cpus[i] > 0 {
			tm.sec[i] = tm.cpu[i] * scale
		}
	}
	return tm, nil
}

// FitTime fits t ≈ a·flops + b·bytes with a, b ≥ 0 to measured layers,
// minimizing the squared relative errors (small layers count as much as
// large ones). It returns b = 0 when the layers do not separate the terms
// (fewer than three, or arithmetic intensities within a factor of 4): then
// a is the flops-only fit.
func FitTime(flops, bytes, t []float64) (a, b float64) {
	var xx, xy, yy, x1, y1 float64
	lo, hi := math.Inf(1), 0.0 // arithmetic intensity range
	for i := range t {
		if bytes[i] > 0 {
			lo, hi = min(lo, flops[i]/bytes[i]), max(hi, flops[i]/bytes[i])
		}
	}
	for i := range t {
		if t[i] <= 0 {
			continue
		}
		x, y := flops[i]/t[i], bytes[i]/t[i]
		xx, xy, yy, x1, y1 = xx+x*x, xy+x*y, yy+y*y, x1+x, y1+y
	}
	if xx == 0 {
		return 0, 0
	}
	flopsOnly := x1 / xx
	det := xx*yy - xy*xy
	if len(t) < 3 || hi < 4*lo || det <= 1e-9*xx*yy {
		return flopsOnly, 0
	}
	a, b = (x1*yy-y1*xy)/det, (y1*xx-x1*xy)/det
	if a <= 0 || b <= 0 {
		return flopsOnly, 0
	}
	return a, b
}

// round3 keeps three significant digits (measurements are not more exact).
func round3(v float64) float64 {
	if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return r
}

// median of a non-empty slice (sorted in place).
func median(x []float64) float64 {
	sort.Float64s(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}
