// Package exec runs a shape-inferred graph on one device: it prepares every
// node's kernel once, lays the activations out in a static memory plan (a
// buffer is reused as soon as its last reader has run) and then runs
// requests through it.
package exec

import (
	"fmt"
	"time"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/ops"
	"github.com/iop-edge/iop/internal/tensor"
)

// Program is a graph prepared for execution. A Program is not safe for
// concurrent Run calls (its activation buffers are reused).
type Program struct {
	g     *graph.Graph
	pool  *kernels.Pool
	steps []step
	// slot of every non-constant value; constants and inputs are bound per run.
	slot      map[string]int
	nslots    int
	inputs    []int // slots of graph inputs
	outputs   []int // slots of graph outputs
	consts    map[int]*tensor.Tensor
	buffers   [][]float32 // the arena
	plan      []valuePlan // per slot
	peakBytes int64
}

type step struct {
	node   *graph.Node
	kernel ops.Kernel
	view   bool
	in     []int // slot per input, -1 if absent
	out    []int
}

// valuePlan says where a value's data lives during a run.
type valuePlan struct {
	info   graph.ValueInfo
	buffer int // arena buffer index, -1 if allocated per run or bound
	alias  int // slot this value is a view of, -1 if none
}

// Options configure a Program.
type Options struct {
	// Threads is the number of kernel threads (<=0: all cores).
	Threads int
}

// Compile prepares g (which must have been through passes.InferShapes) for
// execution.
func Compile(g *graph.Graph, opt Options) (*Program, error) {
	p := &Program{g: g, pool: kernels.NewPool(opt.Threads), slot: map[string]int{}, consts: map[int]*tensor.Tensor{}}
	newSlot := func(name string) int {
		if s, ok := p.slot[name]; ok {
			return s
		}
		s := p.nslots
		p.nslots++
		p.slot[name] = s
		info, ok := g.Values[name]
		if !ok {
			if t, isConst := g.Constants[name]; isConst {
				info = graph.ValueInfo{Name: name, DType: t.DType, Shape: t.Shape}
			}
		}
		p.plan = append(p.plan, valuePlan{info: info, buffer: -1, alias: -1})
		if t, isConst := g.Constants[name]; isConst {
			p.consts[s] = t
		}
		return s
	}
	for _, in := range g.Inputs {
		p.inputs = append(p.inputs, newSlot(in.Name))
	}
	for _, n := range g.Nodes {
		def, ok := ops.Lookup(n.Op)
		if !ok {
			return nil, fmt.Errorf("%v: unsupported operator %s", n, n.Op)
		}
		st := step{node: n, view: def.View}
		for _, name := range n.Inputs {
			if name == "" {
				st.in = append(st.in, -1)
				continue
			}
			s, ok := p.slot[name]
			if !ok {
				if !g.IsConst(name) {
					return nil, fmt.Errorf("%v: input %q is not computed before it is read", n, name)
				}
				s = newSlot(name)
			}
			st.in = append(st.in, s)
		}
		for _, name := range n.Outputs {
			if name == "" {
				st.out = append(st.out, -1)
				continue
			}
			if _, ok := g.Values[name]; !ok {
				return nil, fmt.Errorf("%v: output %q has no inferred shape", n, name)
			}
			st.out = append(st.out, newSlot(name))
		}
		if st.view {
			if len(st.in) == 0 || st.in[0] < 0 {
				return nil, fmt.Errorf("%v: view operator without input", n)
			}
			p.plan[st.out[0]].alias = st.in[0]
		} else {
			k, err := def.Prepare(n, g.Opset, ops.InputsOf(g, n), ops.OutputsOf(g, n))
			if err != nil {
				return nil, err
			}
			st.kernel = k
		}
		p.steps = append(p.steps, st)
	}
	for _, o := range g.Outputs {
		s, ok := p.slot[o.Name]
		if !ok && g.IsConst(o.Name) {
			// The whole output folded at load time.
			s, ok = newSlot(o.Name), true
		}
		if !ok {
			return nil, fmt.Errorf("graph output %q is not computed", o.Name)
		}
		p.outputs = append(p.outputs, s)
	}
	p.planMemory()
	return p, nil
}

// root follows view aliases to the slot that owns the data.
func (p *Program) root(s int) int {
	for p.plan[s].alias >= 0 {
		s = p.plan[s].alias
	}
	return s
}

// planMemory assigns every float32 intermediate value to an arena buffer,
// reusing a buffer once the last reader of its previous value has run.
// Graph outputs get their own allocation per run (the caller keeps them).
func (p *Program) planMemory() {
	lastUse := make([]int, p.nslots)
	for i := range lastUse {
		lastUse[i] = -1
	}
	for i, st := range p.steps {
		for _, s := range append(append([]int{}, st.in...), st.out...) {
			if s >= 0 {
				lastUse[p.root(s)] = max(lastUse[p.root(s)], i)
			}
		}
	}
	pinned := map[int]bool{}
	for _, s := range p.outputs {
		pinned[p.root(s)] = true
	}
	for _, s := range p.inputs {
		pinned[p.root(s)] = true
	}
	var free []int // buffer indices
	var sizes []int
	for i, st := range p.steps {
		if !st.view {
			for _, s := range st.out {
				if s < 0 || pinned[s] || p.plan[s].info.DType != tensor.Float32 {
					continue
				}
				need := p.plan[s].info.Shape.Numel()
				// Best fit among free buffers; else grow the largest free one;
				// else a new buffer.
				best := -1
				for j, b := range free {
					if sizes[b] >= need && (best < 0 || sizes[b] < sizes[free[best]]) {
						best = j
					}
				}
				if best < 0 && len(free) > 0 {
					best = 0
					for j, b := range free {
						if sizes[b] > sizes[free[best]] {
							best = j
						}
					}
					sizes[free[best]] = need
				}
				if best >= 0 {
					p.plan[s].buffer = free[best]
					free = append(free[:best], free[best+1:]...)
				} else {
					p.plan[s].buffer = len(sizes)
					sizes = append(sizes, need)
				}
			}
		}
		// Release buffers whose values are dead after this step.
		for _, s := range append(append([]int{}, st.in...), st.out...) {
			if s < 0 {
				continue
			}
			r := p.root(s)
			if lastUse[r] == i && p.plan[r].buffer >= 0 && !contains(free, p.plan[r].buffer) {
				free = append(free, p.plan[r].buffer)
				lastUse[r] = -2 // released
			}
		}
	}
	p.buffers = make([][]float32, len(sizes))
	p.peakBytes = 0
	for i, n := range sizes {
		p.buffers[i] = make([]float32, n)
		p.peakBytes += int64(n) * 4
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Inputs returns the graph inputs the program expects, in order.
func (p *Program) Inputs() []graph.ValueInfo { return p.g.Inputs }

// Outputs returns the graph outputs the program produces, in order.
func (p *Program) Outputs() []graph.ValueInfo { return p.g.Outputs }

// Graph returns the graph the program runs.
func (p *Program) Graph() *graph.Graph { return p.g }

// ArenaBytes is the size of the reused activation buffers.
func (p *Program) ArenaBytes() int64 { return p.peakBytes }

// PeakActivationBytes is the most activation memory a run holds: the arena,
// the inputs and the outputs.
func (p *Program) PeakActivationBytes() int64 {
	b := p.peakBytes
	for _, s := range append(append([]int{}, p.inputs...), p.outputs...) {
		v := p.plan[s].info
		b += int64(v.Shape.Numel()) * int64(v.DType.Size())
	}
	return b
}

// WeightBytes is the size of the constants the program reads.
func (p *Program) WeightBytes() int64 {
	var b int64
	for _, t := range p.consts {
		b += t.Bytes()
	}
	return b
}

// Close releases the program's threads.
func (p *Program) Close() { p.pool.Close() }

// StepTime is the measured duration of one node in a profiled run.
type StepTime struct {
	Node     *graph.Node
	Duration time.Duration
}

// Run executes the program on inputs (in graph-input order) and returns the
// outputs in graph-output order.
func (p *Program) Run(inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	return p.run(inputs, nil)
}

// RunProfiled is Run that also returns each step's duration.
func (p *Program) RunProfiled(inputs ...*tensor.Tensor) ([]*tensor.Tensor, []StepTime, error) {
	var prof []StepTime
	out, err := p.run(inputs, &prof)
	return out, prof, err
}

func (p *Program) run(inputs []*tensor.Tensor, prof *[]StepTime) ([]*tensor.Tensor, error) {
	if len(inputs) != len(p.inputs) {
		return nil, fmt.Errorf("model takes %d input(s), got %d", len(p.inputs), len(inputs))
	}
	vals := make([]*tensor.Tensor, p.nslots)
	for s, t := range p.consts {
		vals[s] = t
	}
	for i, s := range p.inputs {
		want := p.plan[s].info
		got := inputs[i]
		if got == nil {
			return nil, fmt.Errorf("input %q is missing", want.Name)
		}
		if got.DType != want.DType {
			return nil, fmt.Errorf("input %q: element type %v, the model expects %v", want.Name, got.DType, want.DType)
		}
		if !got.Shape.Equal(want.Shape) {
			return nil, fmt.Errorf("input %q: shape %v, the model expects %v", want.Name, got.Shape, want.Shape)
		}
		vals[s] = got
	}
	ins := make([]*tensor.Tensor, 0, 8)
	outs := make([]*tensor.Tensor, 0, 4)
	for _, st := range p.steps {
		ins = ins[:0]
		for _, s := range st.in {
			if s < 0 {
				ins = append(ins, nil)
			} else {
				ins = append(ins, vals[s])
			}
		}
		if st.view {
			vals[st.out[0]] = ins[0].Reshaped(p.plan[st.out[0]].info.Shape)
			continue
		}
		outs = outs[:0]
		for _, s := range st.out {
			if s < 0 {
				outs = append(outs, nil)
				continue
			}
			vp := p.plan[s]
			if vp.buffer >= 0 {
				n := vp.info.Shape.Numel()
				vals[s] = &tensor.Tensor{Shape: vp.info.Shape, DType: tensor.Float32, F: p.buffers[vp.buffer][:n]}
			} else {
				vals[s] = tensor.New(vp.info.DType, vp.info.Shape)
			}
			outs = append(outs, vals[s])
		}
		var t0 time.Time
		if prof != nil {
			t0 = time.Now()
		}
		if err := st.kernel.Run(p.pool, ins, outs); err != nil {
			return nil, fmt.Errorf("%v: %w", st.node, err)
		}
		if prof != nil {
			*prof = append(*prof, StepTime{Node: st.node, Duration: time.Since(t0)})
		}
	}
	res := make([]*tensor.Tensor, len(p.outputs))
	for i, s := range p.outputs {
		t := vals[s]
		if t == nil {
			return nil, fmt.Errorf("graph output %q was not computed", p.g.Outputs[i].Name)
		}
		// Outputs that are views of arena buffers, inputs or constants are
		// copied so the caller owns them.
		if p.plan[p.root(s)].buffer >= 0 || p.root(s) != s || p.consts[s] != nil || isIn(p.inputs, p.root(s)) {
			t = t.Clone()
		}
		res[i] = t
	}
	return res, nil
}

func isIn(s []int, v int) bool { return contains(s, v) }
