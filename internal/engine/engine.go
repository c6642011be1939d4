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
}

// Session is a model ready to run on this machine.
type Session struct {
	g    *graph.Graph
	prog *exec.Program
}

// New optimizes a copy of g for the given options and prepares it.
func New(g *graph.Graph, opt Options) (*Session, error) {
	g = g.Clone()
	if err := passes.Optimize(g, opt.InputShapes, passes.Options{NoFuse: opt.NoFuse}); err != nil {
		return nil, err
	}
	prog, err := exec.Compile(g, exec.Options{Threads: opt.Threads})
	if err != nil {
		return nil, err
	}
	return &Session{g: g, prog: prog}, nil
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
