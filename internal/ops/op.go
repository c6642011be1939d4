// Package ops defines every operator the engine runs: its shape and type
// inference, its FLOP count and its kernel. Operators are looked up by ONNX
// operator name (Lookup); the executor, the constant folder and the planner
// all go through this one registry.
package ops

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// Input describes one input of a node when it is inferred or prepared.
type Input struct {
	graph.ValueInfo
	// Present is false for an omitted optional input (name "").
	Present bool
	// Const holds the value when the input is a constant (a weight or a
	// folded shape), else nil.
	Const *tensor.Tensor
}

// Kernel runs one prepared node. Outputs are allocated by the caller with
// the inferred shapes; Run fills them and must not keep references to them.
type Kernel interface {
	Run(p *kernels.Pool, in, out []*tensor.Tensor) error
}

// Class is the operator class the cost model measures speed for.
type Class string

// Operator classes.
const (
	ClassConv      Class = "conv"      // dense / grouped convolution
	ClassDepthwise Class = "depthwise" // depthwise convolution
	ClassGemm      Class = "gemm"      // Gemm, MatMul
	ClassPool      Class = "pool"      // pooling, LRN
	ClassElem      Class = "elementwise"
	ClassMemory    Class = "memory" // reshape, concat, slice: data movement only
)

// Def is one operator's definition.
type Def struct {
	// Infer returns the outputs' types and shapes (names are filled by the
	// caller). It sees constant input values, so shape arithmetic resolves.
	Infer func(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error)
	// Prepare returns a kernel for these input and output shapes; constant
	// inputs (weights) may be packed here.
	Prepare func(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error)
	// FLOPs counts floating-point operations (a multiply-add is 2).
	FLOPs func(n *graph.Node, in []Input, out []graph.ValueInfo) int64
	// Bytes, when set, is the memory traffic the cost model charges (else
	// the bytes of the present inputs and the outputs). Use TrafficBytes.
	Bytes func(n *graph.Node, in []Input, out []graph.ValueInfo) int64
	// View marks operators whose single output is input 0's data under a new
	// shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout in
	// inference). The executor aliases the buffer and does not call Run.
	View bool
	// Class is the operator class for the cost model.
	Class Class
	// ClassOf, when set, refines Class for one node (Conv: depthwise when
	// each group has a single input channel). Use ClassFor.
	ClassOf func(n *graph.Node, in []Input) Class
}

// TrafficBytes is the memory traffic of node n for the cost model's
// memory term.
func (d *Def) TrafficBytes(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	if d.Bytes != nil {
		return d.Bytes(n, in, out)
	}
	return defaultBytes(n, in, out)
}

// defaultBytes is the size of the present inputs and of the outputs.
func defaultBytes(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	var b int64
	for _, x := range in {
		if x.Present {
			b += int64(x.Shape.Numel()) * int64(x.DType.Size())
		}
	}
	for _, o := range out {
		b += int64(o.Shape.Numel()) * int64(o.DType.Size())
	}
	return b
}

// ClassFor returns the cost class of node n with inputs in.
func (d *Def) ClassFor(n *graph.Node, in []Input) Class {
	if d.ClassOf != nil {
		return d.ClassOf(n, in)
	}
	return d.Class
}

var registry = map[string]*Def{}

// Register adds an operator definition; it panics on a duplicate name.
func Register(op string, d *Def) {
	if _, dup := registry[op]; dup {
		panic("ops: duplicate operator " + op)
	}
	registry[op] = d
}

// Lookup returns the definition of an ONNX operator.
func Lookup(op string) (*Def, bool) {
	d, ok := registry[op]
	return d, ok
}

// Supported lists the registered operator names.
func Supported() []string {
	names := make([]string, 0, len(registry))
	for k := range registry {
		names = append(names, k)
	}
	return names
}

// Errorf returns an error that names the node and its operator.
func Errorf(n *graph.Node, format string, args ...any) error {
	return fmt.Errorf("%v: %s", n, fmt.Sprintf(format, args...))
}

// KernelFunc adapts a function to the Kernel interface.
type KernelFunc func(p *kernels.Pool, in, out []*tensor.Tensor) error

// Run calls f.
func (f KernelFunc) Run(p *kernels.Pool, in, out []*tensor.Tensor) error { return f(p, in, out) }
