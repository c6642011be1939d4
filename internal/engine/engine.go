// Package engine is the single-device inference entry point: it takes a
// graph (imported from ONNX or built by the zoo), optimizes it for the given
// input shapes and runs it.
package engine

import (
	"fmt"

	"github.com/iop-edge/iop/internal/exec"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/tensor"
)

// Options configure a Session.
type Options struct {
	// Threads is the number of kernel threads (<=0: all cores).
	Threads int
	// InputShapes fixes input shapes by name; others take their declared
	// shape with unknown dimensions set to 1.
	InputShapes map[string]tensor.Shape
	// NoFuse disables BatchNormalization folding and activation fusion.
	NoFuse bool
	// Bind fixes the values of some inputs (by name) at load time: they
	// become constants, so shape arithmetic on them folds, and Run no
	// longer takes them.
	Bind map[string]*tensor.Tensor
}

// Session is a model ready to run on this machine.
type Session struct {
	g    *graph.Graph
	prog *exec.Program
}

// New optimizes a copy of g for the given options and prepares it.
func New(g *graph.Graph, opt Options) (*Session, error) {
	g = g.Clone()
	if err := bind(g, opt.Bind); err != nil {
		return nil, err
	}
	if err := passes.Optimize(g, opt.InputShapes, passes.Options{NoFuse: opt.NoFuse}); err != nil {
		return nil, err
	}
	prog, err := exec.Compile(g, exec.Options{Threads: opt.Threads})
	if err != nil {
		return nil, err
	}
	return &Session{g: g, prog: prog}, nil
}

// bind turns the named inputs into constants.
func bind(g *graph.Graph, values map[string]*tensor.Tensor) error {
	if len(values) == 0 {
		return nil
	}
	kept := g.Inputs[:0]
	for _, in := range g.Inputs {
		t, ok := values[in.Name]
		if !ok {
			kept = append(kept, in)
			continue
		}
		if in.DType != 0 && t.DType != in.DType {
			return fmt.Errorf("input %q: element type %v, the model expects %v", in.Name, t.DType, in.DType)
		}
		g.Constants[in.Name] = t
	}
	if len(g.Inputs)-len(kept) != len(values) {
		return fmt.Errorf("cannot bind inputs: %d given, %d of them are model inputs", len(values), len(g.Inputs)-len(kept))
	}
	g.Inputs = kept
	return nil
}

// BindIntegerInputs splits inputs (in graph-input order) into the integer
// ones, to bind at load time (they carry shapes, axes or indices), and the
// float ones, which Run takes.
func BindIntegerInputs(g *graph.Graph, inputs []*tensor.Tensor) (map[string]*tensor.Tensor, []*tensor.Tensor) {
	bound := map[string]*tensor.Tensor{}
	var rest []*tensor.Tensor
	for i, t := range inputs {
		if i < len(g.Inputs) && t.DType == tensor.Int64 {
			bound[g.Inputs[i].Name] = t
			continue
		}
		rest = append(rest, t)
	}
	return bound, rest
}

// ShapesOf returns an InputShapes map giving g's inputs the shapes of ts
// (in graph-input order).
func ShapesOf(g *graph.Graph, ts []*tensor.Tensor) (map[string]tensor.Shape, error) {
	if len(ts) != len(g.Inputs) {
		return nil, fmt.Errorf("model %s takes %d input(s), got %d", g.Name, len(g.Inputs), len(ts))
	}
	m := map[string]tensor.Shape{}
	for i, in := range g.Inputs {
		if in.DType != 0 && ts[i].DType != in.DType {
			return nil, fmt.Errorf("input %q: element type %v, the model expects %v", in.Name, ts[i].DType, in.DType)
		}
		m[in.Name] = ts[i].Shape
	}
	return m, nil
}

// Run runs one inference; inputs and outputs are in graph order.
func (s *Session) Run(inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	return s.prog.Run(inputs...)
}

// RunProfiled is Run that also returns per-node timings.
func (s *Session) RunProfiled(inputs ...*tensor.Tensor) ([]*tensor.Tensor, []exec.StepTime, error) {
	return s.prog.RunProfiled(inputs...)
}

// Graph is the optimized graph the session runs.
func (s *Session) Graph() *graph.Graph { return s.g }

// PeakActivationBytes is the activation memory one run holds at most.
func (s *Session) PeakActivationBytes() int64 { return s.prog.PeakActivationBytes() }

// WeightBytes is the size of the weights the session holds.
func (s *Session) WeightBytes() int64 { return s.prog.WeightBytes() }

// Close releases the session's threads.
func (s *Session) Close() { s.prog.Close() }
