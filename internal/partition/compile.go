package partition

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/tensor"
)

// placement is where a value's data is at some point of the compile: per
// device a local tensor and the region of the value it holds.
type placement struct {
	name    []string // local tensor per device ("" if none)
	box     []Box    // region held per device
	owner   []Box    // non-overlapping region each device is the source of
	partial bool     // P: each holder has a full-shape partial sum
	act     *graph.Node
}

type compiler struct {
	g     *graph.Graph
	p     *plan.Plan
	n     int
	progs []*Program
	place map[string]*placement // current primary placement per value
	// cache of derived local tensors: value + device + box → local name
	derived map[string]string
	tag     int
	trans   int
	uniq    int
	cur     string // model node being compiled (recorded on its steps)
	opt     Options
	// batch, when non-nil, collects the steps of one phase per device
	// (sends, other transfers, computes) so that every device issues its
	// sends before it waits for anything (see beginBatch).
	batch *batch
}

// batch holds the steps of one compile phase per device, in three groups.
type batch struct{ sends, rest, computes [][]Step }

// beginBatch starts collecting steps: until flushBatch, each device's sends
// are placed before its other transfer steps, and those before its compute
// steps. Without this, a device would send its part to a peer only after
// receiving and computing its own, and the devices of one operator would
// run one after another instead of in parallel.
func (c *compiler) beginBatch() {
	if c.batch != nil {
		panic("partition: nested compile batch")
	}
	c.batch = &batch{sends: make([][]Step, c.n), rest: make([][]Step, c.n), computes: make([][]Step, c.n)}
}

// flushBatch appends the collected steps to the programs.
func (c *compiler) flushBatch() {
	b := c.batch
	c.batch = nil
	for d := 0; d < c.n; d++ {
		p := c.progs[d]
		p.Steps = append(p.Steps, b.sends[d]...)
		p.Steps = append(p.Steps, b.rest[d]...)
		p.Steps = append(p.Steps, b.computes[d]...)
	}
}

// Options configure Compile.
type Options struct {
	// ShapesOnly skips slicing large weights: the programs carry weight
	// shards with shapes but no data. For planning and cost prediction.
	ShapesOnly bool
}

// Compile turns plan p for graph g (optimized and shape-inferred, the graph
// the plan was made for) into one program per device.
func Compile(g *graph.Graph, p *plan.Plan, opt Options) (*Programs, error) {
	n := p.Cluster.N()
	if len(p.Nodes) != len(g.Nodes) {
		return nil, fmt.Errorf("plan has %d nodes, the model has %d (was the plan made for this model?)", len(p.Nodes), len(g.Nodes))
	}
	if len(p.Inputs) != len(g.Inputs) {
		return nil, fmt.Errorf("plan has %d input layouts, the model has %d inputs", len(p.Inputs), len(g.Inputs))
	}
	c := &compiler{g: g, p: p, n: n, place: map[string]*placement{}, derived: map[string]string{}, opt: opt}
	for d := 0; d < n; d++ {
		c.progs = append(c.progs, &Program{Device: d, Name: p.Cluster.Devices[d].Name, Opset: g.Opset,
			Consts: map[string]*tensor.Tensor{}, Values: map[string]graph.ValueInfo{}})
	}
	for i, in := range g.Inputs {
		pl, err := c.layoutPlacement(in.Name, in, p.Inputs[i])
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		for d := 0; d < n; d++ {
			if pl.name[d] != "" {
				c.progs[d].Inputs = append(c.progs[d].Inputs, IOSlice{Index: i, Local: pl.name[d], Box: pl.box[d]})
				c.progs[d].Values[pl.name[d]] = graph.ValueInfo{Name: pl.name[d], DType: in.DType, Shape: pl.box[d].Shape()}
			}
		}
		c.place[in.Name] = pl
	}
	for i, node := range g.Nodes {
		np := p.Nodes[i]
		if np.Node != node.Name {
			return nil, fmt.Errorf("plan node %d is %q, the model's is %q (was the plan made for this model?)", i, np.Node, node.Name)
		}
		c.cur = node.Name
		if err := c.node(node, np); err != nil {
			return nil, fmt.Errorf("%v: %w", node, err)
		}
	}
	c.cur = ""
	if err := c.outputs(); err != nil {
		return nil, err
	}
	for _, pr := range c.progs {
		insertFrees(pr)
	}
	return &Programs{Devices: c.progs, Inputs: g.Inputs, Outputs: g.Outputs, Transitions: c.trans}, nil
}

// Regions returns each device's region of a value of the given shape in
// layout l (nil: none). For P every device is a holder of the full shape.
func Regions(l plan.Layout, shape tensor.Shape, n int) ([]Box, error) {
	out := make([]Box, n)
	switch l.Kind {
	case plan.R, plan.P:
		for d := range out {
			out[d] = Full(shape)
		}
	case plan.S:
		if l.Device < 0 || l.Device >= n {
			return nil, fmt.Errorf("layout %v names device %d of %d", l, l.Device, n)
		}
		out[l.Device] = Full(shape)
	case plan.C, plan.H:
		ax := l.Axis()
		if ax >= len(shape) {
			return nil, fmt.Errorf("layout %v splits axis %d of a rank-%d tensor", l, ax, len(shape))
		}
		if len(l.Splits) != n+1 || l.Splits[0] != 0 || l.Splits[n] != shape[ax] {
			return nil, fmt.Errorf("layout %v does not cover axis %d (size %d) with %d slices", l, ax, shape[ax], n)
		}
		for d := 0; d < n; d++ {
			if l.Splits[d+1] < l.Splits[d] {
				return nil, fmt.Errorf("layout %v has decreasing splits", l)
			}
			if l.Splits[d+1] > l.Splits[d] {
				b := Full(shape)
				b[ax] = Range{l.Splits[d], l.Splits[d+1]}
				out[d] = b
			}
		}
	default:
		return nil, fmt.Errorf("unknown layout kind %q", l.Kind)
	}
	return out, nil
}

// layoutPlacement is the placement of value name when each device holds
// its region of layout l under the value's own name.
func (c *compiler) layoutPlacement(name string, v graph.ValueInfo, l plan.Layout) (*placement, error) {
	boxes, err := Regions(l, v.Shape, c.n)
	if err != nil {
		return nil, err
	}
	pl := &placement{name: make([]string, c.n), box: boxes, owner: make([]Box, c.n), partial: l.Kind == plan.P}
	first := true
	for d, b := range boxes {
		if b == nil {
			continue
		}
		pl.name[d] = name
		if l.Kind == plan.R {
			if first {
				pl.owner[d] = b
			}
			first = false
		} else {
			pl.owner[d] = b
		}
	}
	return pl, nil
}

func (c *compiler) emit(d int, s Step) {
	if s.Orig == "" {
		s.Orig = c.cur
	}
	if b := c.batch; b != nil {
		switch s.Kind {
		case Send:
			b.sends[d] = append(b.sends[d], s)
		case Compute:
			b.computes[d] = append(b.computes[d], s)
		default:
			b.rest[d] = append(b.rest[d], s)
		}
		return
	}
	c.progs[d].Steps = append(c.progs[d].Steps, s)
}

func (c *compiler) newName(base string) string {
	c.uniq++
	return fmt.Sprintf("%s~%d", base, c.uniq)
}

func bytesOf(b Box, dt tensor.DType) int64 { return int64(b.Numel()) * int64(dt.Size()) }

// obtain makes device d hold region need of value v, transferring what it
// lacks from the value's current placement; it returns the local name.
func (c *compiler) obtain(v string, d int, need Box) (string, error) {
	pl := c.place[v]
	info := c.g.Values[v]
	if pl.partial {
		return "", fmt.Errorf("internal: obtain on partial value %q", v)
	}
	if pl.name[d] != "" && pl.box[d].Equal(need) {
		return pl.name[d], nil
	}
	key := fmt.Sprintf("%s|%d|%v", v, d, need)
	if name, ok := c.derived[key]; ok {
		return name, nil
	}
	dst := c.newName(v)
	c.progs[d].Values[dst] = graph.ValueInfo{Name: dst, DType: info.DType, Shape: need.Shape()}
	c.emit(d, Step{Kind: Alloc, Dst: dst, Shape: need.Shape()})
	covered := 0
	// Local part first.
	if pl.name[d] != "" {
		piece := need.Intersect(pl.box[d])
		if !piece.Empty() {
			c.emit(d, Step{Kind: Copy, Src: pl.name[d], SrcBox: piece.Rel(pl.box[d]), Dst: dst, DstBox: piece.Rel(need), Bytes: bytesOf(piece, info.DType)})
			covered += piece.Numel()
		}
	}
	for s := 0; s < c.n && covered < need.Numel(); s++ {
		if s == d || pl.owner[s] == nil {
			continue
		}
		piece := need.Intersect(pl.owner[s])
		if pl.name[d] != "" {
			// Skip what the local copy already provided.
			if pl.box[d].Contains(piece) {
				continue
			}
			if !piece.Intersect(pl.box[d]).Empty() {
				// Partially local: fetch only the rest along the split axis.
				piece = subtract(piece, pl.box[d])
			}
		}
		if piece.Empty() {
			continue
		}
		c.tag++
		b := bytesOf(piece, info.DType)
		c.emit(s, Step{Kind: Send, Peer: d, Tag: c.tag, Src: pl.name[s], SrcBox: piece.Rel(pl.box[s]), Bytes: b, Transition: c.trans})
		c.emit(d, Step{Kind: Recv, Peer: s, Tag: c.tag, Dst: dst, DstBox: piece.Rel(need), Bytes: b, Transition: c.trans})
		covered += piece.Numel()
	}
	if covered != need.Numel() {
		return "", fmt.Errorf("internal: region %v of %q on device %d covered %d of %d elements", need, v, d, covered, need.Numel())
	}
	c.derived[key] = dst
	return dst, nil
}

// subtract removes from a the part of it inside b, where the two differ on
// a single axis (the split axis); the result is one box.
func subtract(a, b Box) Box {
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

// reduce turns a partial value into a non-partial placement: device d
// receives the sum of region boxes[d] (boxes must not overlap); pending
// activations are applied to the sums.
func (c *compiler) reduce(v string, boxes []Box) error {
	pl := c.place[v]
	info := c.g.Values[v]
	if countHolders(pl) == 0 {
		return fmt.Errorf("internal: partial value %q has no holder", v)
	}
	c.trans++
	np := &placement{name: make([]string, c.n), box: boxes, owner: make([]Box, c.n)}
	c.beginBatch()
	defer c.flushBatch()
	for d, need := range boxes {
		if need == nil || need.Empty() {
			continue
		}
		dst := c.newName(v + "~sum")
		c.progs[d].Values[dst] = graph.ValueInfo{Name: dst, DType: info.DType, Shape: need.Shape()}
		c.emit(d, Step{Kind: Alloc, Dst: dst, Shape: need.Shape()})
		if pl.name[d] != "" {
			c.emit(d, Step{Kind: Copy, Src: pl.name[d], SrcBox: need, Dst: dst, DstBox: Full(need.Shape()), Bytes: bytesOf(need, info.DType)})
		}
		for s := 0; s < c.n; s++ {
			if s == d || pl.name[s] == "" {
				continue
			}
			c.tag++
			b := bytesOf(need, info.DType)
			c.emit(s, Step{Kind: Send, Peer: d, Tag: c.tag, Src: pl.name[s], SrcBox: need, Bytes: b, Transition: c.trans})
			c.emit(d, Step{Kind: Recv, Peer: s, Tag: c.tag, Dst: dst, DstBox: Full(need.Shape()), Add: true, Bytes: b, Transition: c.trans})
		}
		if pl.act != nil {
			dst = c.applyAct(d, pl.act, dst, need.Shape())
		}
		np.name[d], np.owner[d] = dst, need
	}
	c.place[v] = np
	return nil
}

func countHolders(pl *placement) int {
	k := 0
	for _, n := range pl.name {
		if n != "" {
			k++
		}
	}
	return k
}

// applyAct emits the activation a fused node deferred (IC partial sums are
// activated only after they are summed) and returns the activated tensor.
func (c *compiler) applyAct(d int, act *graph.Node, x string, shape tensor.Shape) string {
	op := act.Str(graph.FusedActivation, "")
	alpha, beta := act.Float(graph.FusedAlpha, 0), act.Float(graph.FusedBeta, 0)
	out := c.newName(x + "~act")
	ln := &graph.Node{Name: act.Name + "." + op, Op: op, Inputs: []string{x}, Outputs: []string{out}, Attrs: map[string]graph.Attr{}}
	switch op {
	case "LeakyRelu":
		ln.SetFloat("alpha", alpha)
	case "HardSigmoid":
		ln.SetFloat("alpha", alpha)
		ln.SetFloat("beta", beta)
	case "Clip":
		if c.g.Opset < 11 {
			ln.SetFloat("min", alpha)
			ln.SetFloat("max", beta)
		} else {
			lo, hi := c.newName("clip_min"), c.newName("clip_max")
			c.progs[d].Consts[lo] = tensor.FromFloat32(nil, []float32{alpha})
			c.progs[d].Consts[hi] = tensor.FromFloat32(nil, []float32{beta})
			ln.Inputs = append(ln.Inputs, lo, hi)
		}
	}
	c.progs[d].Values[out] = graph.ValueInfo{Name: out, DType: tensor.Float32, Shape: shape}
	c.emit(d, Step{Kind: Compute, Node: ln, Orig: act.Name})
	return out
}

// prepareInput makes value v readable for a consumer whose devices need
// regions need: partial values are summed (straight into the needed regions
// when they do not overlap, else reduce-scattered first), and a via layout
// routes the value through that layout.
func (c *compiler) prepareInput(v string, via *plan.Layout, need []Box) error {
	if c.place[v].partial {
		boxes := need
		if via != nil || overlapping(need) {
			l := c.scatterLayout(v)
			var err error
			if boxes, err = Regions(l, c.g.Values[v].Shape, c.n); err != nil {
				return err
			}
		}
		if err := c.reduce(v, boxes); err != nil {
			return err
		}
	}
	if via != nil {
		c.trans++
		info := c.g.Values[v]
		boxes, err := Regions(*via, info.Shape, c.n)
		if err != nil {
			return err
		}
		np := &placement{name: make([]string, c.n), box: boxes, owner: make([]Box, c.n)}
		first := true
		c.beginBatch()
		defer c.flushBatch()
		for d, b := range boxes {
			if b == nil {
				continue
			}
			name, err := c.obtain(v, d, b)
			if err != nil {
				return err
			}
			np.name[d] = name
			if via.Kind != plan.R || first {
				np.owner[d] = b
			}
			first = false
		}
		c.place[v] = np
	}
	return nil
}

// overlapping reports whether two of the boxes share an element (or none
// is given).
func overlapping(boxes []Box) bool {
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

// scatterLayout is the layout a partial value is reduce-scattered to: split
// evenly over its holders along its largest splittable axis.
func (c *compiler) scatterLayout(v string) plan.Layout {
	pl := c.place[v]
	shape := c.g.Values[v].Shape
	kind, ax := plan.C, 1
	if len(shape) == 4 && shape[2] > shape[1] {
		kind, ax = plan.H, 2
	}
	if len(shape) < 2 {
		return plan.Single(firstHolder(pl))
	}
	var holders []int
	for d := range pl.name {
		if pl.name[d] != "" {
			holders = append(holders, d)
		}
	}
	splits := make([]int, c.n+1)
	size := shape[ax]
	k := 0
	for d := 0; d < c.n; d++ {
		splits[d] = size * k / len(holders)
		if k < len(holders) && holders[k] == d {
			k++
		}
		splits[d+1] = size * k / len(holders)
	}
	return plan.Split(kind, splits)
}

func sameHolders(a, b *placement) bool {
	for d := range a.name {
		if (a.name[d] == "") != (b.name[d] == "") {
			return false
		}
	}
	return true
}

func firstHolder(pl *placement) int {
	for d, n := range pl.name {
		if n != "" {
			return d
		}
	}
	return 0
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

// shapesOnlyMax is the largest weight slice a ShapesOnly compile still
// copies (small constants such as shapes and clip bounds are needed for
// shape inference).
const shapesOnlyMax = 4096

// localConst gives device d region b of constant name (shared, not copied,
// when b is the whole tensor).
func (c *compiler) localConst(d int, name string, b Box) string {
	t := c.g.Constants[name]
	if b.Equal(Full(t.Shape)) {
		c.progs[d].Consts[name] = t
		return name
	}
	local := fmt.Sprintf("%s%v", name, b)
	if _, ok := c.progs[d].Consts[local]; !ok {
		if c.opt.ShapesOnly && b.Numel() > shapesOnlyMax {
			c.progs[d].Consts[local] = &tensor.Tensor{Shape: b.Shape(), DType: t.DType}
		} else {
			c.progs[d].Consts[local] = Extract(t, b)
		}
	}
	return local
}

func (c *compiler) node(node *graph.Node, np plan.NodePlan) error {
	if np.Out.Kind == plan.P {
		return c.icNode(node, np)
	}
	if len(node.Outputs) != 1 && np.Out.Kind != plan.R && np.Out.Kind != plan.S {
		return fmt.Errorf("a %d-output operator can only be replicated or placed on one device, not %v", len(node.Outputs), np.Out)
	}
	outInfo := c.g.Values[node.Outputs[0]]
	outBoxes, err := Regions(np.Out, outInfo.Shape, c.n)
	if err != nil {
		return err
	}
	inShapes := shapesOf(c.g, node.Inputs)
	// Needs per input per device.
	needs := make([][]Box, len(node.Inputs))
	for i, in := range node.Inputs {
		if in == "" {
			continue
		}
		needs[i] = make([]Box, c.n)
		for d, ob := range outBoxes {
			if ob == nil {
				continue
			}
			b, err := NeedBox(node, i, inShapes, outInfo.Shape, ob)
			if err != nil {
				return err
			}
			needs[i][d] = b
		}
	}
	for i, in := range node.Inputs {
		if in == "" || c.g.IsConst(in) {
			continue
		}
		var via *plan.Layout
		if i < len(np.Via) {
			via = np.Via[i]
		}
		if err := c.prepareInput(in, via, needs[i]); err != nil {
			return err
		}
	}
	c.trans++
	outPl := &placement{name: make([]string, c.n), box: outBoxes, owner: make([]Box, c.n)}
	extra := make([]*placement, len(node.Outputs))
	firstOwner := true
	c.beginBatch()
	defer c.flushBatch()
	for d, ob := range outBoxes {
		if ob == nil {
			continue
		}
		local := make([]string, len(node.Inputs))
		for i, in := range node.Inputs {
			if in == "" || needs[i][d] == nil || needs[i][d].Empty() {
				continue
			}
			if c.g.IsConst(in) {
				local[i] = c.localConst(d, in, needs[i][d])
				continue
			}
			name, err := c.obtain(in, d, needs[i][d])
			if err != nil {
				return err
			}
			local[i] = name
		}
		ln, err := LocalNode(node, inShapes, outInfo.Shape, ob, needs2(needs, d))
		if err != nil {
			return err
		}
		// Rename inputs (LocalNode may have dropped some, e.g. Concat).
		ln.Inputs = ln.Inputs[:0]
		for i := range node.Inputs {
			if node.Op == "Concat" && local[i] == "" {
				continue
			}
			ln.Inputs = append(ln.Inputs, local[i])
		}
		if node.Op == "Reshape" && len(ln.Inputs) > 1 {
			sh := ob.Shape()
			ints := make([]int64, len(sh))
			for k, v := range sh {
				ints[k] = int64(v)
			}
			cn := c.newName(node.Name + ".shape")
			c.progs[d].Consts[cn] = tensor.FromInt64(tensor.Shape{len(ints)}, ints)
			ln.Inputs[1] = cn
		}
		ln.Name = node.Name
		for k, o := range node.Outputs {
			if o == "" {
				continue
			}
			ln.Outputs[k] = o
			shape := ob.Shape()
			if k > 0 {
				shape = c.g.Values[o].Shape
			}
			c.progs[d].Values[o] = graph.ValueInfo{Name: o, DType: c.g.Values[o].DType, Shape: shape}
		}
		if err := c.checkLocal(d, ln); err != nil {
			return err
		}
		c.emit(d, Step{Kind: Compute, Node: ln, Orig: node.Name})
		outPl.name[d] = node.Outputs[0]
		if np.Out.Kind != plan.R || firstOwner {
			outPl.owner[d] = ob
		}
		firstOwner = false
	}
	c.place[node.Outputs[0]] = outPl
	for k := 1; k < len(node.Outputs); k++ {
		o := node.Outputs[k]
		if o == "" {
			continue
		}
		ex, _ := c.layoutPlacement(o, c.g.Values[o], np.Out)
		extra[k] = ex
		c.place[o] = ex
	}
	return nil
}

func needs2(needs [][]Box, d int) []Box {
	out := make([]Box, len(needs))
	for i := range needs {
		if needs[i] != nil {
			out[i] = needs[i][d]
		}
	}
	return out
}

// checkLocal infers the local node's output shapes from its local inputs
// and checks them against the regions the plan assigned: a partitioning rule
// that computes the wrong region fails here, at compile time.
func (c *compiler) checkLocal(d int, ln *graph.Node) error {
	def, ok := ops.Lookup(ln.Op)
	if !ok {
		return fmt.Errorf("unsupported operator %s", ln.Op)
	}
	pr := c.progs[d]
	in, _ := pr.NodeIO(ln)
	outs, err := def.Infer(ln, c.g.Opset, in)
	if err != nil {
		return fmt.Errorf("device %d: local operator: %w", d, err)
	}
	for k, o := range ln.Outputs {
		if o == "" || k >= len(outs) {
			continue
		}
		if want := pr.Values[o].Shape; !outs[k].Shape.Equal(want) {
			return fmt.Errorf("device %d: local operator computes %v, the plan assigns %v (partitioning rule error)", d, outs[k].Shape, want)
		}
	}
	return nil
}

// icNode compiles a node whose output stays a partial sum: Conv/Gemm/MatMul
// split by input channels (IC), or a linear operator applied to partial
// inputs (Add, GlobalAveragePool, Flatten, Reshape).
func (c *compiler) icNode(node *graph.Node, np plan.NodePlan) error {
	outInfo := c.g.Values[node.Outputs[0]]
	inShapes := shapesOf(c.g, node.Inputs)
	out := &placement{name: make([]string, c.n), box: make([]Box, c.n), owner: make([]Box, c.n), partial: true}
	c.trans++
	switch node.Op {
	case "Conv", "Gemm", "MatMul":
		if np.In == nil || np.In.Kind != plan.C {
			return fmt.Errorf("the IC scheme needs a C input layout")
		}
		if node.Op == "Conv" && node.Int("group", 1) != 1 {
			return fmt.Errorf("the IC scheme is for ungrouped convolutions")
		}
		if node.Op == "Gemm" && node.Int("transA", 0) != 0 {
			return fmt.Errorf("the IC scheme needs Gemm transA=0")
		}
		x := node.Inputs[0]
		xShape := inShapes[0]
		kAxis := 1
		if node.Op == "MatMul" {
			kAxis = len(xShape) - 1
		}
		if len(np.In.Splits) != c.n+1 || np.In.Splits[c.n] != xShape[kAxis] {
			return fmt.Errorf("IC input layout %v does not cover %d input channels", *np.In, xShape[kAxis])
		}
		var via *plan.Layout
		if len(np.Via) > 0 {
			via = np.Via[0]
		}
		need := make([]Box, c.n)
		for d := 0; d < c.n; d++ {
			if np.In.Splits[d+1] > np.In.Splits[d] {
				b := Full(xShape)
				b[kAxis] = Range{np.In.Splits[d], np.In.Splits[d+1]}
				need[d] = b
			}
		}
		if !c.g.IsConst(x) {
			if err := c.prepareInput(x, via, need); err != nil {
				return err
			}
		}
		first := true
		c.beginBatch()
		defer c.flushBatch()
		for d := 0; d < c.n; d++ {
			if need[d] == nil {
				continue
			}
			kr := need[d][kAxis]
			var xl string
			if c.g.IsConst(x) {
				xl = c.localConst(d, x, need[d])
			} else {
				var err error
				if xl, err = c.obtain(x, d, need[d]); err != nil {
					return err
				}
			}
			w := node.Inputs[1]
			wb := Full(inShapes[1])
			switch {
			case node.Op == "Conv":
				wb[1] = kr
			case node.Op == "Gemm" && node.Int("transB", 0) == 1:
				wb[1] = kr
			default:
				wb[len(wb)-2] = kr
			}
			var wl string
			if c.g.IsConst(w) {
				wl = c.localConst(d, w, wb)
			} else {
				var err error
				if wl, err = c.obtain(w, d, wb); err != nil {
					return err
				}
			}
			ln := node.Clone()
			delete(ln.Attrs, graph.FusedActivation)
			delete(ln.Attrs, graph.FusedAlpha)
			delete(ln.Attrs, graph.FusedBeta)
			ln.Inputs = []string{xl, wl}
			if len(node.Inputs) > 2 && node.Inputs[2] != "" && first {
				b := node.Inputs[2]
				if c.g.IsConst(b) {
					ln.Inputs = append(ln.Inputs, c.localConst(d, b, Full(inShapes[2])))
				} else {
					bl, err := c.obtain(b, d, Full(inShapes[2]))
					if err != nil {
						return err
					}
					ln.Inputs = append(ln.Inputs, bl)
				}
			}
			o := node.Outputs[0]
			c.progs[d].Values[o] = graph.ValueInfo{Name: o, DType: outInfo.DType, Shape: outInfo.Shape}
			if err := c.checkLocal(d, ln); err != nil {
				return err
			}
			c.emit(d, Step{Kind: Compute, Node: ln, Orig: node.Name})
			out.name[d], out.box[d] = o, Full(outInfo.Shape)
			first = false
		}
		if node.Has(graph.FusedActivation) {
			out.act = node
		}
	case "Add", "GlobalAveragePool", "Flatten", "Reshape":
		// Linear operators on partial sums: every holder applies the
		// operator to its partial; a non-partial Add operand is added by the
		// first holder only.
		var src *placement
		for _, in := range node.Inputs {
			if pl, ok := c.place[in]; ok && pl.partial {
				if pl.act != nil {
					return fmt.Errorf("operand %q must be summed and activated before it is read", in)
				}
				if src != nil && !sameHolders(src, pl) {
					return fmt.Errorf("partial operands are held by different devices")
				}
				src = pl
			}
		}
		if src == nil {
			return fmt.Errorf("a P output needs a partial input")
		}
		if node.Has(graph.FusedActivation) && node.Op != "Add" {
			return fmt.Errorf("a fused activation cannot stay on a partial sum")
		}
		first := firstHolder(src)
		for i, in := range node.Inputs {
			if pl, ok := c.place[in]; ok && !pl.partial && node.Op == "Add" {
				need := make([]Box, c.n)
				need[first] = Full(inShapes[i])
				if err := c.prepareInput(in, nil, need); err != nil {
					return err
				}
			}
		}
		c.beginBatch()
		defer c.flushBatch()
		for d := 0; d < c.n; d++ {
			if src.name[d] == "" {
				continue
			}
			ln := node.Clone()
			ln.Inputs = ln.Inputs[:0]
			for i, in := range node.Inputs {
				pl, isVal := c.place[in]
				switch {
				case in == "":
					ln.Inputs = append(ln.Inputs, "")
				case isVal && pl.partial:
					ln.Inputs = append(ln.Inputs, pl.name[d])
				case c.g.IsConst(in) && node.Op != "Add":
					ln.Inputs = append(ln.Inputs, c.localConst(d, in, Full(inShapes[i])))
				case d == first && c.g.IsConst(in):
					ln.Inputs = append(ln.Inputs, c.localConst(d, in, Full(inShapes[i])))
				case d == first:
					name, err := c.obtain(in, d, Full(inShapes[i]))
					if err != nil {
						return err
					}
					ln.Inputs = append(ln.Inputs, name)
				}
			}
			// A fused activation (Add+Relu) is deferred until the partial
			// sums are summed, as for IC outputs.
			delete(ln.Attrs, graph.FusedActivation)
			delete(ln.Attrs, graph.FusedAlpha)
			delete(ln.Attrs, graph.FusedBeta)
			if node.Op == "Add" && len(ln.Inputs) == 1 {
				ln.Op = "Identity"
			}
			if node.Op == "Reshape" && len(ln.Inputs) > 1 && !c.g.IsConst(node.Inputs[1]) {
				return fmt.Errorf("Reshape on a partial sum needs a constant shape")
			}
			o := node.Outputs[0]
			c.progs[d].Values[o] = graph.ValueInfo{Name: o, DType: outInfo.DType, Shape: outInfo.Shape}
			if err := c.checkLocal(d, ln); err != nil {
				return err
			}
			c.emit(d, Step{Kind: Compute, Node: ln, Orig: node.Name})
			out.name[d], out.box[d] = o, Full(outInfo.Shape)
		}
		if node.Has(graph.FusedActivation) {
			out.act = node
		}
	default:
		return fmt.Errorf("operator %s cannot produce a partial-sum (P) output", node.Op)
	}
	c.place[node.Outputs[0]] = out
	return nil
}

// outputs reduces partial outputs and records which device returns which
// region of each graph output.
func (c *compiler) outputs() error {
	for i, o := range c.g.Outputs {
		pl, ok := c.place[o.Name]
		if !ok {
			if t, isConst := c.g.Constants[o.Name]; isConst {
				c.progs[0].Consts[o.Name] = t
				c.progs[0].Outputs = append(c.progs[0].Outputs, IOSlice{Index: i, Local: o.Name, Box: Full(t.Shape)})
				continue
			}
			return fmt.Errorf("graph output %q is never computed", o.Name)
		}
		if pl.partial {
			boxes := make([]Box, c.n)
			boxes[firstHolder(pl)] = Full(o.Shape)
			if err := c.reduce(o.Name, boxes); err != nil {
				return err
			}
			pl = c.place[o.Name]
		}
		for d := 0; d < c.n; d++ {
			if pl.owner[d] != nil && !pl.owner[d].Empty() {
				c.progs[d].Outputs = append(c.progs[d].Outputs, IOSlice{Index: i, Local: pl.name[d], Box: pl.owner[d]})
			}
		}
	}
	return nil
}

// insertFrees adds Free steps after the last use of each local tensor that
// is not a weight or an output.
func insertFrees(p *Program) {
	last := map[string]int{}
	use := func(name string, i int) {
		if name != "" {
			last[name] = i
		}
	}
	for i, s := range p.Steps {
		switch s.Kind {
		case Compute:
			for _, in := range s.Node.Inputs {
				use(in, i)
			}
			for _, o := range s.Node.Outputs {
				use(o, i)
			}
		case Alloc:
			use(s.Dst, i)
		case Copy:
			use(s.Src, i)
			use(s.Dst, i)
		case Send:
			use(s.Src, i)
		case Recv:
			use(s.Dst, i)
		}
	}
	keep := map[string]bool{}
	for _, o := range p.Outputs {
		keep[o.Local] = true
	}
	for name := range p.Consts {
		keep[name] = true
	}
	frees := map[int][]string{}
	for name, i := range last {
		if !keep[name] {
			frees[i] = append(frees[i], name)
		}
	}
	out := make([]Step, 0, len(p.Steps)+len(frees))
	for i, s := range p.Steps {
		out = append(out, s)
		if names := frees[i]; len(names) > 0 {
			sortStrings(names)
			out = append(out, Step{Kind: Free, Names: names})
		}
	}
	p.Steps = out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
