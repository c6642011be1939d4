package graph

import "github.com/iop-edge/iop/internal/tensor"

// Attribute names the graph passes add to fused operators. They live only in
// the IR (the ONNX exporter never writes a fused graph).
const (
	// FusedActivation on Conv/Gemm/Add names an activation applied to the output:
	// "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh".
	FusedActivation = "iop.activation"
	// FusedAlpha and FusedBeta carry the activation's parameters
	// (LeakyRelu alpha; Clip min and max; HardSigmoid alpha and beta).
	FusedAlpha = "iop.alpha"
	FusedBeta  = "iop.beta"
)

// Int returns integer attribute name, or def when absent.
func (n *Node) Int(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInt {
		return a.Int
	}
	return def
}

// Float returns float attribute name, or def when absent.
func (n *Node) Float(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok {
		switch a.Kind {
		case AttrFloat:
			return a.Float
		case AttrInt:
			return float32(a.Int)
		}
	}
	return def
}

// Str returns string attribute name, or def when absent.
func (n *Node) Str(name, def string) string {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrString {
		return a.String
	}
	return def
}

// Ints returns integer-list attribute name as ints, or def when absent.
func (n *Node) Ints(name string, def []int) []int {
	a, ok := n.Attrs[name]
	if !ok || a.Kind != AttrInts {
		return def
	}
	out := make([]int, len(a.Ints))
	for i, v := range a.Ints {
		out[i] = int(v)
	}
	return out
}

// Floats returns float-list attribute name, or def when absent.
func (n *Node) Floats(name string, def []float32) []float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloats {
		return a.Floats
	}
	return def
}

// TensorAttr returns tensor attribute name, or nil.
func (n *Node) TensorAttr(name string) *tensor.Tensor {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrTensor {
		return a.Tensor
	}
	return nil
}

// Has reports whether the node has attribute name.
func (n *Node) Has(name string) bool { _, ok := n.Attrs[name]; return ok }

// SetInt sets an integer attribute.
func (n *Node) SetInt(name string, v int64) { n.setAttr(name, Attr{Kind: AttrInt, Int: v}) }

// SetFloat sets a float attribute.
func (n *Node) SetFloat(name string, v float32) { n.setAttr(name, Attr{Kind: AttrFloat, Float: v}) }

// SetStr sets a string attribute.
func (n *Node) SetStr(name, v string) { n.setAttr(name, Attr{Kind: AttrString, String: v}) }

// SetInts sets an integer-list attribute.
func (n *Node) SetInts(name string, v ...int) {
	a := Attr{Kind: AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	n.setAttr(name, a)
}

// SetFloats sets a float-list attribute.
func (n *Node) SetFloats(name string, v ...float32) {
	n.setAttr(name, Attr{Kind: AttrFloats, Floats: append([]float32(nil), v...)})
}

func (n *Node) setAttr(name string, a Attr) {
	if n.Attrs == nil {
		n.Attrs = map[string]Attr{}
	}
	n.Attrs[name] = a
}
