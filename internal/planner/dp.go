package planner

// The dynamic program behind the optimal strategy.
//
// State. Between two operators (in the graph's execution order) the state
// is the placement of every live activation: for each device the region it
// holds, the region it is the source of, whether the value is a partial sum
// (P, with or without a pending fused activation), and the regions devices
// already fetched for earlier consumers (the compiler caches those, so a
// second consumer needing the same region gets it for free). A chain has one
// live value; a residual block two; an Inception block one per open branch.
// The DP is a frontier DP over the execution order, which handles chains and
// series–parallel blocks (forks and joins) alike: a fork keeps the forked
// value live next to the branch, the join reads both.
//
// Choices. Per operator the output layout: R, S(d) for every d, C and H with
// split points from a few ratio vectors (device speed, equal, memory), IC
// (Conv/Gemm/MatMul: input channels split as the input's C layout, output
// P), and P-preserving linear operators (Add, GlobalAveragePool, Flatten,
// Reshape on partial sums). Which input regions each device needs follows
// from the operator rules (partition.NeedBox), exactly as the compiler
// derives them; a P input is reduced the way the compiler reduces it (into
// the consumer's regions when they do not overlap, else reduce-scattered
// first: a P→C reduce-scatter feeding an IC layer chains IC layers).
//
// Cost of an operator. The DP emulates the compiler's transfers for the
// chosen layouts (the same boxes, the same sources, the same byte counts and
// message counts) and the compute each device does (ops FLOPs on the local
// shapes, divided by the device's speed for the operator class), then runs
// the cost model's event simulation on just this operator's steps, all
// devices starting together. The operator's cost is when its slowest device
// finishes; the plan's cost is the sum. This is the cost model of
// cost.Predict with a barrier between operators, so it is exact for the
// simulator whenever the simulator's devices do reach every operator
// together (a chain where every step keeps all devices busy); otherwise it
// is an upper bound on that operator's share. The final plans are always
// re-evaluated by the full simulator (planner.Evaluate).
//
// Exactness. Where at most two values are live (chains, residual blocks,
// two-branch blocks such as SqueezeNet's Fire) no state is dropped (the
// beam, 3000, is far above the few hundred states that occur), so the DP's
// optimum is the true minimum of its cost over every assignment in its
// state space (the exhaustive test checks this on chains). Where more
// values are live (Inception's four branches, DenseNet's dense blocks) the
// number of states grows exponentially with the width; there only the
// cheapest states are kept, about work/options per stage (a beam search),
// which is always valid but may miss the optimum. dpCtx.truncated reports
// whether that happened.
//
// Memory. Weights of the chosen shards accumulate per device along a path,
// and the activations a step touches are estimated per device; a state whose
// weights plus peak activations plus the runtime overhead exceed a device's
// limit is dropped. A per-device price on weight bytes (a Lagrangian
// penalty raised by Optimal while the simulator still reports an overflow)
// steers the DP toward plans that fit.

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/tensor"
)

type box = partition.Box

// dpConfig tunes the dynamic program.
type dpConfig struct {
	// beam is the most states kept per stage (exact below it).
	beam int
	// work bounds states × options per stage (0: no bound), but never
	// below minBeam states.
	work, minBeam int
	// keep is how many of the best final states become candidate plans.
	keep int
	// penalty prices a weight byte on each device (seconds per byte).
	penalty []float64
	// ratios are the split-ratio vectors C and H layouts are built from
	// (nil: speed-proportional, equal and memory-proportional).
	ratios [][]float64
	// noPrune disables the memory pruning (tests).
	noPrune bool
	// skew carries every device's and link's clock along a path instead of
	// starting each operator with all devices together: a path's cost is
	// then the cost model's own timeline (devices that finish early start
	// their transfers early), but two paths reaching one state keep only
	// the one that finishes first, so the search is a heuristic.
	skew bool
}

// place is one value's placement in a DP state. Places are interned: two
// equal placements are the same pointer.
type place struct {
	id      int32
	key     string
	box     []box // region held per device (nil: none)
	owner   []box // region each device is the source of
	partial bool
	act     bool // partial with a pending fused activation
	derived []derivedBox
	dsize   int64
}

// derivedBox is a region device d already fetched (the compiler's cache).
type derivedBox struct {
	d int
	b box
}

func (p *place) holds(d int) bool { return p.box[d] != nil }

// clone returns a mutable copy (not interned).
func (p *place) clone() *place {
	q := *p
	q.id, q.key = -1, ""
	q.box = append([]box(nil), p.box...)
	q.owner = append([]box(nil), p.owner...)
	q.derived = append([]derivedBox(nil), p.derived...)
	return &q
}

func (p *place) hasDerived(d int, b box) bool {
	for _, x := range p.derived {
		if x.d == d && x.b.Equal(b) {
			return true
		}
	}
	return false
}

// optKind says how an option computes the operator.
type optKind int

const (
	optOwner optKind = iota // owner computes its region of a non-P output
	optIC                   // input-channel split, P output
	optLinP                 // linear operator applied to partial sums
)

// option is one way to compute an operator.
type option struct {
	kind   optKind
	out    plan.Layout
	in     *plan.Layout // IC: the input-channel layout
	scheme string
	// Precomputed for optOwner and optIC (independent of the input state).
	outBoxes []box
	needs    [][]box // per node input, per device
	compute  []float64
	weights  []int64
	outBytes []int64
	holders  []bool // IC: devices holding a partial sum
	// outPlaces caches the output placements of an owner option.
	outPlaces []*place
}

// dpNode is one operator with its options.
type dpNode struct {
	node     *graph.Node
	inShapes []tensor.Shape
	outShape tensor.Shape
	opts     []*option
	inVals   []int // distinct non-constant input values (value indices)
	// dupInputs: some value is read by two inputs.
	dupInputs bool
	outVals   []int // output value indices (-1: unused output)
}

// stepResult is the cost and effect of one option on one input state.
type stepResult struct {
	time    float64
	ins     []*place // new placements of dpNode.inVals
	outs    []*place // placements of dpNode.outVals
	weights []int64
	act     []int64 // activation bytes the step allocates per device
	phases  []*phase
}

// dpState is a node of the DP: the placements of the live values.
type dpState struct {
	places  []*place
	cost    float64 // time + memory penalty
	time    float64
	weights []int64
	peak    []int64
	parent  *dpState
	choice  int32     // option index at this stage's operator (-1: initial)
	clk     *simClock // skew mode: the clocks after this state
	input   int       // initial state: the device the input arrives at
}

// dpCtx holds one run of the DP.
type dpCtx struct {
	pr       *Problem
	g        *graph.Graph
	n        int
	cfg      dpConfig
	nodes    []*dpNode
	valIdx   map[string]int
	valNames []string
	// frontier[i] lists the values live before operator i, sorted
	// (frontier[len(nodes)]: after the last operator).
	frontier [][]int
	places   map[string]*place
	memo     map[memoKey]*stepResult
	contribs map[contribKey]*contrib
	limit    []int64
	overhead int64
	// candC caches the C layouts offered for a value.
	candC map[int][]plan.Layout
	prod  map[string]*graph.Node
	index map[*graph.Node]int
	// Statistics of the last run.
	transitions int
	misses      int
	maxStates   int
	truncated   bool  // the beam cut states: the result may not be optimal
	pruned      []int // states dropped per device for memory
}

// beamAt is the most states kept before operator i: cfg.beam where at most
// two values are live (chains, residual blocks, two-branch blocks: exact),
// else lowered so that states × options stays within cfg.work.
func (dp *dpCtx) beamAt(i int) int {
	b := dp.cfg.beam
	if i < len(dp.nodes) && dp.cfg.work > 0 && len(dp.frontier[i]) > 2 {
		b = min(b, max(dp.cfg.minBeam, dp.cfg.work/max(1, len(dp.nodes[i].opts))))
	}
	return b
}

func newDP(pr *Problem, cfg dpConfig) (*dpCtx, error) {
	g := pr.Graph
	n := pr.Cluster.N()
	if cfg.beam <= 0 {
		cfg.beam = 3000
	}
	if cfg.work == 0 {
		cfg.work = 1500
	}
	if cfg.minBeam <= 0 {
		cfg.minBeam = 64
	}
	if cfg.keep <= 0 {
		cfg.keep = 1
	}
	if cfg.penalty == nil {
		cfg.penalty = make([]float64, n)
	}
	dp := &dpCtx{pr: pr, g: g, n: n, cfg: cfg, valIdx: map[string]int{}, places: map[string]*place{},
		memo: map[memoKey]*stepResult{}, contribs: map[contribKey]*contrib{}, limit: make([]int64, n), overhead: pr.Params.RuntimeOverheadBytes,
		candC: map[int][]plan.Layout{}, prod: g.Producers(), index: map[*graph.Node]int{}}
	for i, nd := range g.Nodes {
		dp.index[nd] = i
	}
	if dp.cfg.ratios == nil {
		dp.cfg.ratios = defaultRatios(pr)
	}
	for d := range dp.limit {
		dp.limit[d] = int64(pr.Cluster.Devices[d].Memory)
	}
	addVal := func(name string) {
		if _, ok := dp.valIdx[name]; !ok && name != "" {
			dp.valIdx[name] = len(dp.valNames)
			dp.valNames = append(dp.valNames, name)
		}
	}
	for _, in := range g.Inputs {
		addVal(in.Name)
	}
	for _, nd := range g.Nodes {
		for _, o := range nd.Outputs {
			addVal(o)
		}
	}
	// Liveness.
	last := make([]int, len(dp.valNames))
	def := make([]int, len(dp.valNames))
	for i := range last {
		last[i], def[i] = -2, -1
	}
	for i, nd := range g.Nodes {
		for _, o := range nd.Outputs {
			if o != "" {
				def[dp.valIdx[o]] = i
			}
		}
		for _, in := range nd.Inputs {
			if v, ok := dp.valIdx[in]; ok {
				last[v] = i
			}
		}
	}
	for _, o := range g.Outputs {
		if v, ok := dp.valIdx[o.Name]; ok {
			last[v] = len(g.Nodes)
		}
	}
	dp.frontier = make([][]int, len(g.Nodes)+1)
	for i := 0; i <= len(g.Nodes); i++ {
		for v := range dp.valNames {
			if def[v] < i && last[v] >= i {
				dp.frontier[i] = append(dp.frontier[i], v)
			}
		}
	}
	for i, nd := range g.Nodes {
		dn := &dpNode{node: nd, inShapes: shapesOf(g, nd.Inputs), outShape: g.Values[nd.Outputs[0]].Shape}
		seen := map[int]bool{}
		for _, in := range nd.Inputs {
			if v, ok := dp.valIdx[in]; ok {
				if seen[v] {
					dn.dupInputs = true
					continue
				}
				seen[v] = true
				dn.inVals = append(dn.inVals, v)
			}
		}
		for _, o := range nd.Outputs {
			v, ok := dp.valIdx[o]
			if !ok || last[v] < i {
				v = -1 // nobody reads it
			}
			dn.outVals = append(dn.outVals, v)
		}
		dp.nodes = append(dp.nodes, dn)
	}
	for i := range dp.nodes {
		if err := dp.buildOptions(i); err != nil {
			return nil, fmt.Errorf("%v: %w", g.Nodes[i], err)
		}
	}
	return dp, nil
}

func shapesOf(g *graph.Graph, names []string) []tensor.Shape {
	s := make([]tensor.Shape, len(names))
	for i, n := range names {
		if n == "" {
			continue
		}
		if t, ok := g.Constants[n]; ok {
			s[i] = t.Shape
		} else {
			s[i] = g.Values[n].Shape
		}
	}
	return s
}

// defaultRatios are the split-ratio vectors: proportional to conv speed,
// equal, and (with memory limits) proportional to each device's memory.
func defaultRatios(pr *Problem) [][]float64 {
	n := pr.Cluster.N()
	sp := make([]float64, n)
	eq := make([]float64, n)
	mem := make([]float64, n)
	limited := true
	for d := 0; d < n; d++ {
		sp[d] = pr.Cluster.Speed(d, string(ops.ClassConv))
		eq[d] = 1
		mem[d] = float64(pr.Cluster.Devices[d].Memory)
		if mem[d] <= 0 {
			limited = false
		}
	}
	out := [][]float64{sp}
	add := func(w []float64) {
		for _, o := range out {
			if sameRatio(o, w) {
				return
			}
		}
		out = append(out, w)
	}
	add(eq)
	if limited {
		add(mem)
	}
	return out
}

func sameRatio(a, b []float64) bool {
	var sa, sb float64
	for i := range a {
		sa += a[i]
		sb += b[i]
	}
	for i := range a {
		if math.Abs(a[i]/sa-b[i]/sb) > 1e-9 {
			return false
		}
	}
	return true
}

// ratiosFor are the ratio vectors for one operator (its class's speeds
// added when they differ from the conv speeds).
func (dp *dpCtx) ratiosFor(nd *graph.Node) [][]float64 {
	out := append([][]float64(nil), dp.cfg.ratios...)
	cls := speeds(dp.pr, nd)
	for _, o := range out {
		if sameRatio(o, cls) {
			return out
		}
	}
	return append(out, cls)
}

// splitLayouts are the C (axis 1) or H (axis 2) layouts offered for n's
// output: one per ratio vector and split unit.
func (dp *dpCtx) splitLayouts(i int, axis int) []plan.Layout {
	g := dp.g
	nd := g.Nodes[i]
	if !partition.Splittable(g, nd, axis) {
		return nil
	}
	size := dp.nodes[i].outShape[axis]
	units := []int{partition.SplitUnit(g, nd, axis)}
	if axis == 1 && len(nd.Inputs) > 0 {
		// Keep the producer's alignment so that a channel split passes
		// through channel-wise operators unchanged.
		if p, ok := dp.prod[nd.Inputs[0]]; ok && partition.Splittable(g, p, 1) {
			if ps := g.Values[p.Outputs[0]].Shape; len(ps) > 1 && ps[1] == size {
				units = append(units, partition.SplitUnit(g, p, 1))
			}
		}
	}
	kind := plan.C
	if axis == 2 {
		kind = plan.H
	}
	var out []plan.Layout
	for _, u := range units {
		for _, w := range dp.ratiosFor(nd) {
			l := plan.Split(kind, Proportional(size, u, w))
			dup := false
			for _, o := range out {
				dup = dup || o.Equal(l)
			}
			if !dup {
				out = append(out, l)
			}
		}
	}
	return out
}

// cLayoutsOf are the C layouts value v can be read in as IC input channels
// (the producer's C layouts, plus unit-1 splits of the input's size).
func (dp *dpCtx) cLayoutsOf(v int, size int, consumer *graph.Node) []plan.Layout {
	if ls, ok := dp.candC[v]; ok {
		return ls
	}
	var out []plan.Layout
	name := dp.valNames[v]
	if p, ok := dp.prod[name]; ok && p.Outputs[0] == name {
		for _, l := range dp.splitLayouts(dp.index[p], 1) {
			if l.Splits[dp.n] == size {
				out = append(out, l)
			}
		}
	}
	if len(out) == 0 {
		for _, w := range dp.ratiosFor(consumer) {
			l := plan.Split(plan.C, Proportional(size, 1, w))
			dup := false
			for _, o := range out {
				dup = dup || o.Equal(l)
			}
			if !dup {
				out = append(out, l)
			}
		}
	}
	dp.candC[v] = out
	return out
}

// buildOptions lists operator i's options and precomputes what does not
// depend on the input state.
func (dp *dpCtx) buildOptions(i int) error {
	dn := dp.nodes[i]
	nd := dn.node
	var layouts []plan.Layout
	layouts = append(layouts, plan.Replicated())
	for d := 0; d < dp.n; d++ {
		layouts = append(layouts, plan.Single(d))
	}
	if len(nd.Outputs) == 1 {
		layouts = append(layouts, dp.splitLayouts(i, 1)...)
		if len(dn.outShape) == 4 {
			layouts = append(layouts, dp.splitLayouts(i, 2)...)
		}
	}
	for _, l := range layouts {
		o, err := dp.ownerOption(dn, l)
		if err != nil {
			if l.Kind == plan.R || l.Kind == plan.S {
				return err
			}
			continue // this split does not work for the operator
		}
		dn.opts = append(dn.opts, o)
	}
	if icCapable(dp.g, nd) {
		x := dp.valIdx[nd.Inputs[0]]
		kAxis := 1
		size := dn.inShapes[0][kAxis]
		for _, l := range dp.cLayoutsOf(x, size, nd) {
			if o, err := dp.icOption(dn, l); err == nil {
				dn.opts = append(dn.opts, o)
			}
		}
	}
	if linearOnPartial(dp.g, nd) {
		dn.opts = append(dn.opts, &option{kind: optLinP, out: plan.Partial(), scheme: "LINEAR-P"})
	}
	return nil
}

// icCapable reports whether n can take the IC scheme in the compiler.
func icCapable(g *graph.Graph, n *graph.Node) bool {
	if len(n.Inputs) < 2 || g.IsConst(n.Inputs[0]) || !g.IsConst(n.Inputs[1]) || len(n.Outputs) != 1 {
		return false
	}
	if g.Values[n.Outputs[0]].DType != tensor.Float32 {
		return false
	}
	switch n.Op {
	case "Conv":
		return n.Int("group", 1) == 1 && len(g.Values[n.Inputs[0]].Shape) == 4
	case "Gemm":
		return n.Int("transA", 0) == 0
	case "MatMul":
		return len(g.Values[n.Inputs[0]].Shape) == 2 && len(g.Constants[n.Inputs[1]].Shape) == 2
	}
	return false
}

// linearOnPartial reports whether n may be applied to partial sums.
func linearOnPartial(g *graph.Graph, n *graph.Node) bool {
	if len(n.Outputs) != 1 || g.Values[n.Outputs[0]].DType != tensor.Float32 {
		return false
	}
	if n.Has(graph.FusedActivation) { // deferred until summed: Add+Relu only
		return n.Op == "Add"
	}
	switch n.Op {
	case "Add", "GlobalAveragePool", "Flatten":
		return true
	case "Reshape":
		return len(n.Inputs) > 1 && g.IsConst(n.Inputs[1])
	}
	return false
}

func dtypeSize(g *graph.Graph, v string) int64 {
	if t, ok := g.Constants[v]; ok {
		return int64(t.DType.Size())
	}
	return int64(g.Values[v].DType.Size())
}

func boxBytes(b box, size int64) int64 { return int64(b.Numel()) * size }

// computeTime is the time device d needs for local operator ln.
func (dp *dpCtx) computeTime(d int, ln *graph.Node, in []ops.Input, outs []graph.ValueInfo) float64 {
	return cost.NodeSeconds(dp.pr.Cluster, &dp.pr.Params, d, ln.Name, ln.Op, cost.NodeWork(ln, in, outs))
}

// localInput describes input k of a local operator.
func (dp *dpCtx) localInput(name string, b box) ops.Input {
	in := ops.Input{Present: true}
	in.Name = name
	if t, ok := dp.g.Constants[name]; ok {
		in.DType = t.DType
		in.Shape = b.Shape()
		if b.Equal(partition.Full(t.Shape)) {
			in.Const = t
		} else if t.DType != tensor.Float32 || b.Numel() <= 4096 {
			in.Const = partition.Extract(t, b)
		}
		return in
	}
	in.DType = dp.g.Values[name].DType
	in.Shape = b.Shape()
	return in
}

// ownerOption precomputes the owner-computes option with output layout l.
func (dp *dpCtx) ownerOption(dn *dpNode, l plan.Layout) (*option, error) {
	nd := dn.node
	g := dp.g
	o := &option{kind: optOwner, out: l, scheme: schemeOf(nd, l), compute: make([]float64, dp.n), weights: make([]int64, dp.n), outBytes: make([]int64, dp.n)}
	ob, err := partition.Regions(l, dn.outShape, dp.n)
	if err != nil {
		return nil, err
	}
	o.outBoxes = ob
	o.needs = make([][]box, len(nd.Inputs))
	for k, in := range nd.Inputs {
		if in == "" {
			continue
		}
		o.needs[k] = make([]box, dp.n)
		for d, b := range ob {
			if b == nil {
				continue
			}
			nb, err := partition.NeedBox(nd, k, dn.inShapes, dn.outShape, b)
			if err != nil {
				return nil, err
			}
			o.needs[k][d] = nb
		}
	}
	for d, b := range ob {
		if b == nil {
			continue
		}
		need := make([]box, len(nd.Inputs))
		for k := range nd.Inputs {
			if o.needs[k] != nil {
				need[k] = o.needs[k][d]
			}
		}
		ln, err := partition.LocalNode(nd, dn.inShapes, dn.outShape, b, need)
		if err != nil {
			return nil, err
		}
		var in []ops.Input
		for k, name := range nd.Inputs {
			nb := need[k]
			empty := name == "" || nb == nil || nb.Empty()
			if nd.Op == "Concat" && empty {
				continue
			}
			if empty {
				in = append(in, ops.Input{})
				continue
			}
			if nd.Op == "Reshape" && k == 1 {
				sh := b.Shape()
				ints := make([]int64, len(sh))
				for j, v := range sh {
					ints[j] = int64(v)
				}
				t := tensor.FromInt64(tensor.Shape{len(ints)}, ints)
				in = append(in, ops.Input{ValueInfo: graph.ValueInfo{Name: name, DType: tensor.Int64, Shape: t.Shape}, Present: true, Const: t})
				continue
			}
			in = append(in, dp.localInput(name, nb))
			if g.IsConst(name) {
				o.weights[d] += boxBytes(nb, dtypeSize(g, name))
			}
		}
		def, ok := ops.Lookup(ln.Op)
		if !ok {
			return nil, fmt.Errorf("unsupported operator %s", ln.Op)
		}
		outs := make([]graph.ValueInfo, len(nd.Outputs))
		for k, name := range nd.Outputs {
			outs[k] = g.Values[name]
			if k == 0 {
				outs[k].Shape = b.Shape()
			}
		}
		if !b.Equal(partition.Full(dn.outShape)) {
			inf, err := def.Infer(ln, g.Opset, in)
			if err != nil {
				return nil, err
			}
			if len(inf) == 0 || !inf[0].Shape.Equal(b.Shape()) {
				return nil, fmt.Errorf("local operator computes the wrong region")
			}
		}
		o.compute[d] = dp.computeTime(d, ln, in, outs)
		if !def.View {
			o.outBytes[d] = boxBytes(b, dtypeSize(g, nd.Outputs[0]))
		}
	}
	return o, nil
}

func schemeOf(n *graph.Node, l plan.Layout) string {
	lin := isLinearLayer(n)
	switch l.Kind {
	case plan.R:
		return "REPL"
	case plan.S:
		return "LOCAL"
	case plan.C:
		if lin {
			return "OC"
		}
		return "FOLLOW"
	case plan.H:
		return "SP"
	}
	return string(l.Kind)
}

// icOption precomputes the IC option reading input 0 in C layout in.
func (dp *dpCtx) icOption(dn *dpNode, in plan.Layout) (*option, error) {
	nd := dn.node
	g := dp.g
	xShape := dn.inShapes[0]
	kAxis := 1
	if nd.Op == "MatMul" {
		kAxis = len(xShape) - 1
	}
	if len(in.Splits) != dp.n+1 || in.Splits[dp.n] != xShape[kAxis] {
		return nil, fmt.Errorf("IC layout does not cover the input")
	}
	l := in
	o := &option{kind: optIC, out: plan.Partial(), in: &l, scheme: "IC", compute: make([]float64, dp.n), weights: make([]int64, dp.n),
		outBytes: make([]int64, dp.n), holders: make([]bool, dp.n), needs: make([][]box, len(nd.Inputs))}
	o.needs[0] = make([]box, dp.n)
	first := true
	outInfo := g.Values[nd.Outputs[0]]
	for d := 0; d < dp.n; d++ {
		if in.Splits[d+1] <= in.Splits[d] {
			continue
		}
		b := partition.Full(xShape)
		kr := partition.Range{Lo: in.Splits[d], Hi: in.Splits[d+1]}
		b[kAxis] = kr
		o.needs[0][d] = b
		o.holders[d] = true
		wb := partition.Full(dn.inShapes[1])
		switch {
		case nd.Op == "Conv":
			wb[1] = kr
		case nd.Op == "Gemm" && nd.Int("transB", 0) == 1:
			wb[1] = kr
		default:
			wb[len(wb)-2] = kr
		}
		ln := nd.Clone()
		delete(ln.Attrs, graph.FusedActivation)
		delete(ln.Attrs, graph.FusedAlpha)
		delete(ln.Attrs, graph.FusedBeta)
		ins := []ops.Input{dp.localInput(nd.Inputs[0], b), dp.localInput(nd.Inputs[1], wb)}
		o.weights[d] += boxBytes(wb, dtypeSize(g, nd.Inputs[1]))
		if len(nd.Inputs) > 2 && nd.Inputs[2] != "" && first {
			if !g.IsConst(nd.Inputs[2]) {
				return nil, fmt.Errorf("IC with a computed bias")
			}
			ins = append(ins, dp.localInput(nd.Inputs[2], partition.Full(dn.inShapes[2])))
			o.weights[d] += g.Constants[nd.Inputs[2]].Bytes()
		}
		first = false
		def, _ := ops.Lookup(nd.Op)
		inf, err := def.Infer(ln, g.Opset, ins)
		if err != nil {
			return nil, err
		}
		if !inf[0].Shape.Equal(outInfo.Shape) {
			return nil, fmt.Errorf("IC local operator computes the wrong shape")
		}
		o.compute[d] = dp.computeTime(d, ln, ins, []graph.ValueInfo{outInfo})
		o.outBytes[d] = int64(outInfo.Shape.Numel()) * int64(outInfo.DType.Size())
	}
	if first {
		return nil, fmt.Errorf("IC layout gives no device any channel")
	}
	return o, nil
}

// intern returns the canonical place equal to p.
func (dp *dpCtx) intern(p *place) *place {
	if len(p.derived) > 1 {
		sort.Slice(p.derived, func(a, b int) bool { return lessDerived(p.derived[a], p.derived[b]) })
	}
	buf := make([]byte, 0, 64)
	flags := byte(0)
	if p.partial {
		flags |= 1
	}
	if p.act {
		flags |= 2
	}
	buf = append(buf, flags)
	putBox := func(b box) {
		if b == nil {
			buf = append(buf, 0xff)
			return
		}
		buf = append(buf, byte(len(b)))
		for _, r := range b {
			buf = binary.AppendUvarint(buf, uint64(r.Lo))
			buf = binary.AppendUvarint(buf, uint64(r.Hi))
		}
	}
	for d := range p.box {
		putBox(p.box[d])
		putBox(p.owner[d])
	}
	for _, x := range p.derived {
		buf = append(buf, byte(x.d))
		putBox(x.b)
	}
	if q, ok := dp.places[string(buf)]; ok {
		return q
	}
	p.key = string(buf)
	p.id = int32(len(dp.places))
	dp.places[p.key] = p
	return p
}

func lessDerived(a, b derivedBox) bool {
	if a.d != b.d {
		return a.d < b.d
	}
	if len(a.b) != len(b.b) {
		return len(a.b) < len(b.b)
	}
	for i := range a.b {
		if a.b[i].Lo != b.b[i].Lo {
			return a.b[i].Lo < b.b[i].Lo
		}
		if a.b[i].Hi != b.b[i].Hi {
			return a.b[i].Hi < b.b[i].Hi
		}
	}
	return false
}

// layoutPlace is the placement of a value of shape sh in layout l.
func (dp *dpCtx) layoutPlace(l plan.Layout, sh tensor.Shape, dsize int64) (*place, error) {
	boxes, err := partition.Regions(l, sh, dp.n)
	if err != nil {
		return nil, err
	}
	p := &place{box: boxes, owner: make([]box, dp.n), partial: l.Kind == plan.P, dsize: dsize}
	first := true
	for d, b := range boxes {
		if b == nil {
			continue
		}
		if l.Kind != plan.R || first {
			p.owner[d] = b
		}
		first = false
	}
	return dp.intern(p), nil
}

// --- Emulation of the compiler's transfers and the cost model's timing.

// item is one transfer step of a device in a phase: a local copy (from < 0)
// or a receive from device from (whose send the simulation derives).
type item struct {
	from  int
	bytes int64
}

// phase is one batch of the compiler: per device the transfers it receives
// or copies, in order, and the compute it does after them. The senders'
// order follows the compiler's: receivers in device order, each receiver's
// items in order; every device sends before it receives.
type phase struct {
	items   [][]item
	compute []float64
}

func (dp *dpCtx) newPhase() *phase {
	return &phase{items: make([][]item, dp.n), compute: make([]float64, dp.n)}
}

// obtain emulates compiler.obtain: device d gets region need of the value
// placed at p, appending its transfer steps to items; it returns whether p
// changed (the region is now cached on d) and the bytes allocated.
func (dp *dpCtx) obtain(items []item, p *place, d int, need box) ([]item, bool, int64) {
	if p.partial {
		panic("planner: obtain on a partial value")
	}
	if p.box[d] != nil && p.box[d].Equal(need) {
		return items, false, 0
	}
	if p.hasDerived(d, need) {
		return items, false, 0
	}
	covered := 0
	if p.box[d] != nil {
		piece := need.Intersect(p.box[d])
		if !piece.Empty() {
			items = append(items, item{-1, boxBytes(piece, p.dsize)})
			covered += piece.Numel()
		}
	}
	for s := 0; s < dp.n && covered < need.Numel(); s++ {
		if s == d || p.owner[s] == nil {
			continue
		}
		piece := need.Intersect(p.owner[s])
		if p.box[d] != nil {
			if p.box[d].Contains(piece) {
				continue
			}
			if !piece.Intersect(p.box[d]).Empty() {
				piece = subtractBox(piece, p.box[d])
			}
		}
		if piece.Empty() {
			continue
		}
		items = append(items, item{s, boxBytes(piece, p.dsize)})
		covered += piece.Numel()
	}
	p.derived = append(p.derived, derivedBox{d, need})
	return items, true, boxBytes(need, p.dsize)
}

// subtractBox is partition's subtract: a minus the part inside b, where the
// two differ on one axis.
func subtractBox(a, b box) box {
	out := a.Clone()
	for i := range a {
		if a[i] == b[i] || (b[i].Lo <= a[i].Lo && b[i].Hi >= a[i].Hi) {
			continue
		}
		switch {
		case b[i].Lo <= a[i].Lo:
			out[i].Lo = max(a[i].Lo, b[i].Hi)
		case b[i].Hi >= a[i].Hi:
			out[i].Hi = min(a[i].Hi, b[i].Lo)
		}
	}
	return out
}

// reduce emulates compiler.reduce: device d receives the sum of boxes[d].
// It returns the phase, the new (non-partial) placement and the bytes
// allocated per device.
func (dp *dpCtx) reduce(p *place, boxes []box, actNode *graph.Node) (*phase, *place, []int64) {
	ph := dp.newPhase()
	act := make([]int64, dp.n)
	np := &place{box: make([]box, dp.n), owner: make([]box, dp.n), dsize: p.dsize}
	for d, need := range boxes {
		np.box[d] = need
		if need == nil || need.Empty() {
			continue
		}
		b := boxBytes(need, p.dsize)
		act[d] += b
		if p.holds(d) {
			ph.items[d] = append(ph.items[d], item{-1, b})
		}
		for s := 0; s < dp.n; s++ {
			if s != d && p.holds(s) {
				ph.items[d] = append(ph.items[d], item{s, b})
			}
		}
		if p.act && actNode != nil {
			ph.compute[d] += dp.actTime(d, actNode, need.Shape())
		}
		np.owner[d] = need
	}
	return ph, np, act
}

// actTime is the time of a deferred fused activation on a region.
func (dp *dpCtx) actTime(d int, n *graph.Node, sh tensor.Shape) float64 {
	op := n.Str(graph.FusedActivation, "")
	ln := &graph.Node{Op: op, Attrs: map[string]graph.Attr{}}
	in := []ops.Input{{ValueInfo: graph.ValueInfo{DType: tensor.Float32, Shape: sh}, Present: true}}
	return dp.computeTime(d, ln, in, []graph.ValueInfo{{DType: tensor.Float32, Shape: sh}})
}

// overlappingBoxes is the compiler's overlapping: two boxes share an
// element, or none is given.
func overlappingBoxes(boxes []box) bool {
	k := 0
	for i, a := range boxes {
		if a == nil || a.Empty() {
			continue
		}
		k++
		for _, b := range boxes[i+1:] {
			if b != nil && !b.Empty() && !a.Intersect(b).Empty() {
				return true
			}
		}
	}
	return k == 0
}

// scatterBoxes is the compiler's scatterLayout as regions.
func (dp *dpCtx) scatterBoxes(p *place, shape tensor.Shape) []box {
	var holders []int
	for d := range p.box {
		if p.holds(d) {
			holders = append(holders, d)
		}
	}
	var l plan.Layout
	if len(shape) < 2 {
		l = plan.Single(holders[0])
	} else {
		kind, ax := plan.C, 1
		if len(shape) == 4 && shape[2] > shape[1] {
			kind, ax = plan.H, 2
		}
		splits := make([]int, dp.n+1)
		size := shape[ax]
		k := 0
		for d := 0; d < dp.n; d++ {
			splits[d] = size * k / len(holders)
			if k < len(holders) && holders[k] == d {
				k++
			}
			splits[d+1] = size * k / len(holders)
		}
		l = plan.Split(kind, splits)
	}
	boxes, _ := partition.Regions(l, shape, dp.n)
	return boxes
}

// simClock is the simulated time of every device and link.
type simClock struct {
	clock, up, down []float64
	medium          float64
}

func (dp *dpCtx) zeroClock() *simClock {
	return &simClock{clock: make([]float64, dp.n), up: make([]float64, dp.n), down: make([]float64, dp.n)}
}

func (c *simClock) copy() *simClock {
	return &simClock{clock: append([]float64(nil), c.clock...), up: append([]float64(nil), c.up...),
		down: append([]float64(nil), c.down...), medium: c.medium}
}

// makespan is the latest device clock.
func (c *simClock) makespan() float64 {
	var t float64
	for _, x := range c.clock {
		t = max(t, x)
	}
	return t
}

// simulate times the phases with all devices starting at zero and returns
// when the last one finishes.
func (dp *dpCtx) simulate(phases []*phase) float64 {
	c := dp.zeroClock()
	dp.advance(c, phases)
	return c.makespan()
}

// advance runs the phases on clock c with the cost model's rules: sends book
// the sender's uplink and the receiver's downlink (switched) or the one
// medium (shared) and arrive after the link's latency; receives wait for
// arrival and then copy; copies and computes take the device's time.
func (dp *dpCtx) advance(c *simClock, phases []*phase) {
	n := dp.n
	spec := dp.pr.Cluster
	clock, up, down := c.clock, c.up, c.down
	copyRate := dp.pr.Params.CopyBytesPerSec
	type send struct {
		to, idx int
		bytes   int64
	}
	sends := make([][]send, n)
	order := make([]int, n)
	var arrival [][]float64
	for _, ph := range phases {
		for d := range sends {
			sends[d] = sends[d][:0]
		}
		arrival = arrival[:0]
		for d, items := range ph.items {
			arrival = append(arrival, make([]float64, len(items)))
			for j, it := range items {
				if it.from >= 0 {
					sends[it.from] = append(sends[it.from], send{d, j, it.bytes})
				}
			}
		}
		for d := range order {
			order[d] = d
		}
		sort.SliceStable(order, func(a, b int) bool { return clock[order[a]] < clock[order[b]] })
		for _, d := range order {
			for _, m := range sends[d] {
				link := spec.LinkBetween(d, m.to)
				dur := float64(m.bytes) / float64(link.Bandwidth)
				var start float64
				if spec.Topology == cluster.Shared {
					start = max(clock[d], c.medium)
					c.medium = start + dur
				} else {
					start = max(clock[d], up[d], down[m.to])
					up[d], down[m.to] = start+dur, start+dur
				}
				arrival[m.to][m.idx] = start + dur + link.LatencyMS/1e3
			}
		}
		for d := 0; d < n; d++ {
			for j, it := range ph.items[d] {
				if it.from >= 0 {
					clock[d] = max(clock[d], arrival[d][j])
				}
				clock[d] += float64(it.bytes) / copyRate
			}
			clock[d] += ph.compute[d]
		}
	}
}

// memoKey identifies a step: operator, option and the input placements
// (the first four by id, any others encoded in rest).
type memoKey struct {
	i, oi int32
	ids   [4]int32
	rest  string
}

func makeKey(i, oi int, ins []*place) memoKey {
	k := memoKey{i: int32(i), oi: int32(oi)}
	for j, p := range ins {
		if j < len(k.ids) {
			k.ids[j] = p.id
			continue
		}
		var b []byte
		for _, q := range ins[j:] {
			b = binary.LittleEndian.AppendUint32(b, uint32(q.id))
		}
		k.rest = string(b)
		break
	}
	return k
}

// step computes (memoized) the effect of option oi of operator i on the
// placements ins of its input values.
func (dp *dpCtx) step(i, oi int, ins []*place) (*stepResult, error) {
	key := makeKey(i, oi, ins)
	if r, ok := dp.memo[key]; ok {
		if r == nil {
			return nil, errInvalid
		}
		return r, nil
	}
	dp.misses++
	r, err := dp.computeStep(i, oi, ins)
	if err != nil {
		dp.memo[key] = nil
		return nil, errInvalid
	}
	dp.memo[key] = r
	return r, nil
}

var errInvalid = fmt.Errorf("option not valid for this input state")

// errNoFit: every path of the DP overflows some device's memory.
var errNoFit = fmt.Errorf("memory limits")

// floorTime is the compute floor: total FLOPs over total conv speed.
func (dp *dpCtx) floorTime() float64 {
	var fl, sp float64
	for _, n := range dp.g.Nodes {
		fl += float64(ops.NodeFLOPs(dp.g, n))
	}
	for d := 0; d < dp.n; d++ {
		sp += dp.pr.Cluster.Speed(d, string(ops.ClassConv))
	}
	return fl / sp
}

// contrib is what reading one input contributes to an owner or IC step:
// a reduce phase if the input is partial, the main phase's transfer steps
// per device, the input's new placement and the bytes allocated.
type contrib struct {
	reduce *phase
	items  [][]item
	place  *place
	act    []int64
}

type contribKey struct {
	i, oi, k int32
	id       int32
}

// inputContrib computes (memoized) input k's contribution to option oi of
// operator i when the input is placed at p. Valid when no value is read
// twice by the operator (then inputs do not share the compiler's cache).
func (dp *dpCtx) inputContrib(i, oi, k int, p *place) *contrib {
	key := contribKey{int32(i), int32(oi), int32(k), p.id}
	if c, ok := dp.contribs[key]; ok {
		return c
	}
	dn := dp.nodes[i]
	o := dn.opts[oi]
	in := dn.node.Inputs[k]
	c := &contrib{items: make([][]item, dp.n), act: make([]int64, dp.n)}
	if p.partial {
		boxes := o.needs[k]
		if overlappingBoxes(boxes) {
			boxes = dp.scatterBoxes(p, dp.g.Values[in].Shape)
		}
		var np *place
		c.reduce, np, c.act = dp.reduce(p, boxes, dp.prod[in])
		p = dp.intern(np)
	}
	w := p
	for d := 0; d < dp.n; d++ {
		if !o.active(d) || o.needs[k] == nil || o.needs[k][d] == nil || o.needs[k][d].Empty() {
			continue
		}
		if w == p {
			w = p.clone()
		}
		var b int64
		c.items[d], _, b = dp.obtain(c.items[d], w, d, o.needs[k][d])
		c.act[d] += b
	}
	if w != p {
		p = dp.intern(w)
	}
	c.place = p
	dp.contribs[key] = c
	return c
}

// active reports whether device d computes part of an owner or IC option.
func (o *option) active(d int) bool {
	if o.kind == optIC {
		return o.holders[d]
	}
	return o.outBoxes[d] != nil
}

func (dp *dpCtx) computeStep(i, oi int, ins []*place) (*stepResult, error) {
	dn := dp.nodes[i]
	nd := dn.node
	o := dn.opts[oi]
	g := dp.g
	res := &stepResult{weights: make([]int64, dp.n), act: make([]int64, dp.n)}
	var phases []*phase
	var outP *place
	switch o.kind {
	case optOwner, optIC:
		// Input k of the operator reads value inVals[slot[k]].
		main := dp.newPhase()
		res.ins = append([]*place(nil), ins...)
		slotOf := func(name string) int {
			for j, v := range dn.inVals {
				if dp.valNames[v] == name {
					return j
				}
			}
			return -1
		}
		if dn.dupInputs {
			return dp.computeStepShared(i, oi, ins)
		}
		var cs []*contrib
		for k, in := range nd.Inputs {
			j := slotOf(in)
			if j < 0 {
				cs = append(cs, nil)
				continue
			}
			c := dp.inputContrib(i, oi, k, ins[j])
			cs = append(cs, c)
			res.ins[j] = c.place
			if c.reduce != nil {
				phases = append(phases, c.reduce)
			}
			for d := range c.act {
				res.act[d] += c.act[d]
			}
		}
		for d := 0; d < dp.n; d++ {
			if !o.active(d) {
				continue
			}
			for _, c := range cs {
				if c != nil {
					main.items[d] = append(main.items[d], c.items[d]...)
				}
			}
			main.compute[d] += o.compute[d]
			res.weights[d] += o.weights[d]
			res.act[d] += o.outBytes[d]
		}
		phases = append(phases, main)
		if o.kind == optIC {
			outP = &place{box: make([]box, dp.n), owner: make([]box, dp.n), partial: true, act: nd.Has(graph.FusedActivation)}
			for d := 0; d < dp.n; d++ {
				if o.holders[d] {
					outP.box[d] = partition.Full(dn.outShape)
				}
			}
		}
	case optLinP:
		cur := map[string]*place{}
		for k, v := range dn.inVals {
			cur[dp.valNames[v]] = ins[k].clone()
		}
		var src *place
		for _, in := range nd.Inputs {
			if p, ok := cur[in]; ok && p.partial {
				if p.act {
					return nil, errInvalid
				}
				if src != nil {
					for d := range p.box {
						if p.holds(d) != src.holds(d) {
							return nil, errInvalid
						}
					}
				}
				src = p
			}
		}
		if src == nil {
			return nil, errInvalid
		}
		first := -1
		for d := range src.box {
			if src.holds(d) {
				first = d
				break
			}
		}
		ph := dp.newPhase()
		outP = &place{box: make([]box, dp.n), owner: make([]box, dp.n), partial: true, act: nd.Has(graph.FusedActivation)}
		for d := 0; d < dp.n; d++ {
			if !src.holds(d) {
				continue
			}
			ln := nd.Clone()
			delete(ln.Attrs, graph.FusedActivation)
			var lin []ops.Input
			ln.Inputs = ln.Inputs[:0]
			for k, in := range nd.Inputs {
				p, isVal := cur[in]
				switch {
				case in == "":
					ln.Inputs = append(ln.Inputs, "")
					lin = append(lin, ops.Input{})
				case isVal && p.partial:
					ln.Inputs = append(ln.Inputs, in)
					lin = append(lin, dp.localInput(in, partition.Full(dn.inShapes[k])))
				case g.IsConst(in) && (nd.Op != "Add" || d == first):
					ln.Inputs = append(ln.Inputs, in)
					lin = append(lin, dp.localInput(in, partition.Full(dn.inShapes[k])))
					res.weights[d] += g.Constants[in].Bytes()
				case d == first && isVal:
					var b int64
					ph.items[d], _, b = dp.obtain(ph.items[d], p, d, partition.Full(dn.inShapes[k]))
					res.act[d] += b
					ln.Inputs = append(ln.Inputs, in)
					lin = append(lin, dp.localInput(in, partition.Full(dn.inShapes[k])))
				}
			}
			if nd.Op == "Add" && len(ln.Inputs) == 1 {
				ln.Op = "Identity"
			}
			outInfo := g.Values[nd.Outputs[0]]
			ph.compute[d] += dp.computeTime(d, ln, lin, []graph.ValueInfo{outInfo})
			outP.box[d] = partition.Full(dn.outShape)
			if def, ok := ops.Lookup(ln.Op); ok && !def.View {
				res.act[d] += int64(outInfo.Shape.Numel()) * int64(outInfo.DType.Size())
			}
		}
		phases = append(phases, ph)
		for _, v := range dn.inVals {
			res.ins = append(res.ins, dp.intern(cur[dp.valNames[v]]))
		}
	}
	res.time = dp.simulate(phases)
	res.phases = phases
	return dp.finishStep(i, oi, res, outP)
}

// computeStepShared is computeStep for an owner or IC option of an
// operator that reads one value twice (the reads share the cache).
func (dp *dpCtx) computeStepShared(i, oi int, ins []*place) (*stepResult, error) {
	dn := dp.nodes[i]
	nd := dn.node
	o := dn.opts[oi]
	g := dp.g
	res := &stepResult{weights: make([]int64, dp.n), act: make([]int64, dp.n)}
	cur := map[string]*place{}
	for k, v := range dn.inVals {
		cur[dp.valNames[v]] = ins[k].clone()
	}
	var phases []*phase
	for k, in := range nd.Inputs {
		p, ok := cur[in]
		if !ok || !p.partial {
			continue
		}
		boxes := o.needs[k]
		if overlappingBoxes(boxes) {
			boxes = dp.scatterBoxes(p, g.Values[in].Shape)
		}
		ph, np, act := dp.reduce(p, boxes, dp.prod[in])
		phases = append(phases, ph)
		cur[in] = np
		for d := range act {
			res.act[d] += act[d]
		}
	}
	main := dp.newPhase()
	for d := 0; d < dp.n; d++ {
		if !o.active(d) {
			continue
		}
		for k, in := range nd.Inputs {
			p, ok := cur[in]
			if !ok || o.needs[k] == nil || o.needs[k][d] == nil || o.needs[k][d].Empty() {
				continue
			}
			var b int64
			main.items[d], _, b = dp.obtain(main.items[d], p, d, o.needs[k][d])
			res.act[d] += b
		}
		main.compute[d] += o.compute[d]
		res.weights[d] += o.weights[d]
		res.act[d] += o.outBytes[d]
	}
	phases = append(phases, main)
	for _, v := range dn.inVals {
		res.ins = append(res.ins, dp.intern(cur[dp.valNames[v]]))
	}
	var outP *place
	if o.kind == optIC {
		outP = &place{box: make([]box, dp.n), owner: make([]box, dp.n), partial: true, act: nd.Has(graph.FusedActivation)}
		for d := 0; d < dp.n; d++ {
			if o.holders[d] {
				outP.box[d] = partition.Full(dn.outShape)
			}
		}
	}
	res.time = dp.simulate(phases)
	res.phases = phases
	return dp.finishStep(i, oi, res, outP)
}

// finishStep fills in the output placements of a step.
func (dp *dpCtx) finishStep(i, oi int, res *stepResult, outP *place) (*stepResult, error) {
	dn := dp.nodes[i]
	o := dn.opts[oi]
	g := dp.g
	for k, v := range dn.outVals {
		if v < 0 {
			res.outs = append(res.outs, nil)
			continue
		}
		name := dn.node.Outputs[k]
		if outP != nil {
			q := *outP
			q.dsize = dtypeSize(g, name)
			res.outs = append(res.outs, dp.intern(&q))
			continue
		}
		if o.outPlaces == nil {
			o.outPlaces = make([]*place, len(dn.outVals))
		}
		if o.outPlaces[k] == nil {
			p, err := dp.layoutPlace(o.out, g.Values[name].Shape, dtypeSize(g, name))
			if err != nil {
				return nil, err
			}
			o.outPlaces[k] = p
		}
		res.outs = append(res.outs, o.outPlaces[k])
	}
	return res, nil
}

// finalTime is the cost of collecting the graph outputs: partial outputs
// are summed on their first holder.
func (dp *dpCtx) finalTime(st *dpState) float64 {
	var phases []*phase
	for k, v := range dp.frontier[len(dp.nodes)] {
		p := st.places[k]
		if !p.partial {
			continue
		}
		name := dp.valNames[v]
		boxes := make([]box, dp.n)
		for d := range p.box {
			if p.holds(d) {
				boxes[d] = partition.Full(dp.g.Values[name].Shape)
				break
			}
		}
		ph, _, _ := dp.reduce(p, boxes, dp.prod[name])
		phases = append(phases, ph)
	}
	if len(phases) == 0 {
		return 0
	}
	if dp.cfg.skew {
		c := st.clk.copy()
		dp.advance(c, phases)
		return c.makespan() - st.time
	}
	return dp.simulate(phases)
}

// dpResult is one plan the DP found, with the DP's own cost.
type dpResult struct {
	plan *plan.Plan
	cost float64 // DP time estimate (seconds)
}

// run executes the DP and returns up to cfg.keep best plans.
func (dp *dpCtx) run() ([]dpResult, error) {
	n := dp.n
	dp.transitions, dp.misses, dp.maxStates, dp.truncated = 0, 0, 0, false
	dp.pruned = make([]int, n)
	g := dp.g
	// Initial states: the input arrives at one device (as single does).
	var states []*dpState
	for d := 0; d < n; d++ {
		st := &dpState{choice: -1, input: d, weights: make([]int64, n), peak: make([]int64, n), clk: dp.zeroClock()}
		ok := true
		for _, v := range dp.frontier[0] {
			name := dp.valNames[v]
			info, isIn := inputInfo(g, name)
			if !isIn {
				ok = false
				break
			}
			p, err := dp.layoutPlace(plan.Single(d), info.Shape, int64(info.DType.Size()))
			if err != nil {
				return nil, err
			}
			st.places = append(st.places, p)
			st.peak[d] += boxBytes(partition.Full(info.Shape), int64(info.DType.Size()))
		}
		if ok {
			states = append(states, st)
		}
	}
	for i := range dp.nodes {
		dn := dp.nodes[i]
		pos := map[int]int{}
		for k, v := range dp.frontier[i] {
			pos[v] = k
		}
		next := dp.frontier[i+1]
		newPos := make([]int, len(next)) // where each next value comes from: -1-k for output k, else old position
		for k, v := range next {
			newPos[k] = -1000000
			for j, ov := range dn.outVals {
				if ov == v {
					newPos[k] = -1 - j
				}
			}
			if newPos[k] == -1000000 {
				newPos[k] = pos[v]
			}
		}
		inPos := make([]int, len(dn.inVals))
		for k, v := range dn.inVals {
			inPos[k] = pos[v]
		}
		table := map[string]*dpState{}
		ins := make([]*place, len(dn.inVals))
		keyBuf := make([]byte, 4*len(next))
		live := make([]int64, n)
		weights := make([]int64, n)
		peak := make([]int64, n)
		// Output values replace nothing; an input value that stays live
		// takes its new placement (P reduced, regions cached).
		fromIn := make([]int, len(next))
		for k := range next {
			fromIn[k] = -1
			for j, v := range dn.inVals {
				if v == next[k] {
					fromIn[k] = j
				}
			}
		}
		placeOf := func(st *dpState, r *stepResult, k int) *place {
			switch np := newPos[k]; {
			case np < 0:
				return r.outs[-1-np]
			case fromIn[k] >= 0:
				return r.ins[fromIn[k]]
			default:
				return st.places[np]
			}
		}
		for _, st := range states {
			for k := range inPos {
				ins[k] = st.places[inPos[k]]
			}
			clear(live)
			for _, p := range st.places {
				for d := range p.box {
					if p.box[d] != nil {
						live[d] += boxBytes(p.box[d], p.dsize)
					}
				}
			}
			for oi := range dn.opts {
				r, err := dp.step(i, oi, ins)
				if err != nil {
					continue
				}
				dp.transitions++
				stepTime := r.time
				var clk *simClock
				if dp.cfg.skew {
					clk = st.clk.copy()
					dp.advance(clk, r.phases)
					stepTime = clk.makespan() - st.time
				}
				cost := st.cost + stepTime
				feasible := true
				for d := 0; d < n; d++ {
					weights[d] = st.weights[d] + r.weights[d]
					cost += dp.cfg.penalty[d] * float64(r.weights[d])
					peak[d] = max(st.peak[d], live[d]+r.act[d])
					if lim := dp.limit[d]; lim > 0 && !dp.cfg.noPrune && weights[d]+peak[d]+dp.overhead > lim {
						feasible = false
						dp.pruned[d]++
					}
				}
				if !feasible {
					continue
				}
				for k := range next {
					binary.LittleEndian.PutUint32(keyBuf[4*k:], uint32(placeOf(st, r, k).id))
				}
				if old, ok := table[string(keyBuf)]; ok && old.cost <= cost {
					continue
				}
				places := make([]*place, len(next))
				for k := range next {
					places[k] = placeOf(st, r, k)
				}
				table[string(keyBuf)] = &dpState{places: places, cost: cost, time: st.time + stepTime, clk: clk,
					weights: append([]int64(nil), weights...), peak: append([]int64(nil), peak...),
					parent: st, choice: int32(oi)}
			}
		}
		if len(table) == 0 {
			return nil, fmt.Errorf("%w: no layout of %v fits", errNoFit, dn.node)
		}
		states = states[:0]
		for _, st := range table {
			states = append(states, st)
		}
		sort.Slice(states, func(a, b int) bool { return states[a].cost < states[b].cost })
		dp.maxStates = max(dp.maxStates, len(states))
		if beam := dp.beamAt(i + 1); len(states) > beam {
			states = states[:beam]
			dp.truncated = true
		}
	}
	for _, st := range states {
		t := dp.finalTime(st)
		st.cost += t
		st.time += t
	}

	sort.Slice(states, func(a, b int) bool { return states[a].cost < states[b].cost })
	var out []dpResult
	for _, st := range states {
		if len(out) >= dp.cfg.keep {
			break
		}
		out = append(out, dpResult{plan: dp.planOf(st), cost: st.time})
	}
	return out, nil
}

func inputInfo(g *graph.Graph, name string) (graph.ValueInfo, bool) {
	for _, in := range g.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return graph.ValueInfo{}, false
}

// planOf follows a final state back to the initial one and writes the plan.
func (dp *dpCtx) planOf(st *dpState) *plan.Plan {
	choices := make([]int, len(dp.nodes))
	i := len(dp.nodes) - 1
	for ; st.parent != nil; st = st.parent {
		choices[i] = int(st.choice)
		i--
	}
	return dp.planOfChoices(choices, st.input)
}

// planOfChoices writes the plan that takes option choices[i] at operator i
// with the input arriving at device input.
func (dp *dpCtx) planOfChoices(choices []int, input int) *plan.Plan {
	p := newPlan(dp.pr, "optimal")
	for i, c := range choices {
		o := dp.nodes[i].opts[c]
		np := &p.Nodes[i]
		np.Out, np.Scheme = o.out, o.scheme
		if o.in != nil {
			l := *o.in
			np.In = &l
		}
	}
	for k := range p.Inputs {
		p.Inputs[k] = plan.Single(input)
	}
	return p
}

// enumerate calls f for every assignment of options to the operators (and
// every input device) that is valid in the DP's state space, with the DP's
// operator-barrier cost of that assignment (what run minimizes). For tests:
// it is exponential in the number of operators.
func (dp *dpCtx) enumerate(f func(choices []int, input int, cost float64)) error {
	choices := make([]int, len(dp.nodes))
	var rec func(i int, places []*place, cost float64, input int)
	rec = func(i int, places []*place, cost float64, input int) {
		if i == len(dp.nodes) {
			st := &dpState{places: places, clk: dp.zeroClock()}
			f(choices, input, cost+dp.finalTime(st))
			return
		}
		dn := dp.nodes[i]
		pos := map[int]int{}
		for k, v := range dp.frontier[i] {
			pos[v] = k
		}
		ins := make([]*place, len(dn.inVals))
		for k, v := range dn.inVals {
			ins[k] = places[pos[v]]
		}
		for oi := range dn.opts {
			r, err := dp.step(i, oi, ins)
			if err != nil {
				continue
			}
			next := make([]*place, len(dp.frontier[i+1]))
			for k, v := range dp.frontier[i+1] {
				switch {
				case slices.Contains(dn.outVals, v):
					next[k] = r.outs[slices.Index(dn.outVals, v)]
				case slices.Contains(dn.inVals, v):
					next[k] = r.ins[slices.Index(dn.inVals, v)]
				default:
					next[k] = places[pos[v]]
				}
			}
			choices[i] = oi
			rec(i+1, next, cost+r.time, input)
		}
	}
	for d := 0; d < dp.n; d++ {
		var places []*place
		for _, v := range dp.frontier[0] {
			info, ok := inputInfo(dp.g, dp.valNames[v])
			if !ok {
				return fmt.Errorf("value %q is live before the first operator but is not an input", dp.valNames[v])
			}
			p, err := dp.layoutPlace(plan.Single(d), info.Shape, int64(info.DType.Size()))
			if err != nil {
				return err
			}
			places = append(places, p)
		}
		rec(0, places, 0, d)
	}
	return nil
}
