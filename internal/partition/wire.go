package partition

import (
	"fmt"
	"math"
	"sort"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// ProgramSpec is a Program without its weight data, in a form that
// encodes to JSON exactly (float attributes travel as bit patterns, so
// infinities and NaNs survive). The coordinator sends it to a worker ahead
// of the weight shards, which follow as raw tensors in the order of Consts.
type ProgramSpec struct {
	Device  int                        `json:"device"`
	Name    string                     `json:"name"`
	Opset   int64                      `json:"opset"`
	Steps   []StepSpec                 `json:"steps"`
	Consts  []ConstSpec                `json:"consts"`
	Values  map[string]graph.ValueInfo `json:"values"`
	Inputs  []IOSlice                  `json:"inputs"`
	Outputs []IOSlice                  `json:"outputs"`
}

// StepSpec is a Step with its compute node in encodable form.
type StepSpec struct {
	Step
	Node *NodeSpec `json:"node,omitempty"`
}

// NodeSpec is an encodable graph.Node.
type NodeSpec struct {
	Name    string              `json:"name"`
	Op      string              `json:"op"`
	Inputs  []string            `json:"inputs"`
	Outputs []string            `json:"outputs"`
	Attrs   map[string]AttrSpec `json:"attrs,omitempty"`
}

// AttrSpec is an encodable graph.Attr; Float and Floats hold IEEE-754 bits.
type AttrSpec struct {
	Kind    graph.AttrKind `json:"kind"`
	Int     int64          `json:"i,omitempty"`
	Float   uint32         `json:"f,omitempty"`
	String  string         `json:"s,omitempty"`
	Ints    []int64        `json:"ints,omitempty"`
	Floats  []uint32       `json:"floats,omitempty"`
	Strings []string       `json:"strings,omitempty"`
	Tensor  *TensorSpec    `json:"t,omitempty"`
}

// TensorSpec is a small tensor (an attribute value) in encodable form.
type TensorSpec struct {
	DType tensor.DType `json:"dtype"`
	Shape tensor.Shape `json:"shape"`
	F     []uint32     `json:"f,omitempty"`
	I     []int64      `json:"i,omitempty"`
	B     []bool       `json:"b,omitempty"`
}

// ConstSpec names a weight shard and its type.
type ConstSpec struct {
	Name  string       `json:"name"`
	DType tensor.DType `json:"dtype"`
	Shape tensor.Shape `json:"shape"`
}

// Bytes is the shard's size.
func (c ConstSpec) Bytes() int64 { return int64(c.Shape.Numel()) * int64(c.DType.Size()) }

// Spec returns p's encodable description; its Consts are in name order.
func (p *Program) Spec() *ProgramSpec {
	s := &ProgramSpec{Device: p.Device, Name: p.Name, Opset: p.Opset, Values: p.Values, Inputs: p.Inputs, Outputs: p.Outputs}
	for _, name := range p.ConstNames() {
		t := p.Consts[name]
		s.Consts = append(s.Consts, ConstSpec{Name: name, DType: t.DType, Shape: t.Shape})
	}
	for _, st := range p.Steps {
		ss := StepSpec{Step: st}
		ss.Step.Node = nil
		if st.Node != nil {
			ss.Node = nodeSpec(st.Node)
		}
		s.Steps = append(s.Steps, ss)
	}
	return s
}

// ConstNames returns the names of p's weight shards in order.
func (p *Program) ConstNames() []string {
	names := make([]string, 0, len(p.Consts))
	for n := range p.Consts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WeightBytes is the total size of the shards s lists.
func (s *ProgramSpec) WeightBytes() int64 {
	var b int64
	for _, c := range s.Consts {
		b += c.Bytes()
	}
	return b
}

// Program rebuilds the program with the given weight shards (which must be
// exactly those s lists, with their shapes).
func (s *ProgramSpec) Program(consts map[string]*tensor.Tensor) (*Program, error) {
	if len(consts) != len(s.Consts) {
		return nil, fmt.Errorf("program lists %d weight shards, %d given", len(s.Consts), len(consts))
	}
	for _, c := range s.Consts {
		t, ok := consts[c.Name]
		if !ok {
			return nil, fmt.Errorf("weight shard %q is missing", c.Name)
		}
		if t.DType != c.DType || !t.Shape.Equal(c.Shape) {
			return nil, fmt.Errorf("weight shard %q is %v%v, the program expects %v%v", c.Name, t.DType, t.Shape, c.DType, c.Shape)
		}
	}
	p := &Program{Device: s.Device, Name: s.Name, Opset: s.Opset, Consts: consts, Values: s.Values, Inputs: s.Inputs, Outputs: s.Outputs}
	if p.Values == nil {
		p.Values = map[string]graph.ValueInfo{}
	}
	for i, ss := range s.Steps {
		st := ss.Step
		if st.Kind < Compute || st.Kind > Free {
			return nil, fmt.Errorf("step %d: unknown kind %d", i, st.Kind)
		}
		if st.Kind == Compute {
			if ss.Node == nil {
				return nil, fmt.Errorf("step %d: compute step without a node", i)
			}
			n, err := ss.Node.node()
			if err != nil {
				return nil, fmt.Errorf("step %d: %w", i, err)
			}
			st.Node = n
		}
		p.Steps = append(p.Steps, st)
	}
	return p, nil
}

// NodeSpecOf encodes n.
func NodeSpecOf(n *graph.Node) *NodeSpec { return nodeSpec(n) }

// Node decodes the node.
func (ns *NodeSpec) Node() (*graph.Node, error) { return ns.node() }

// TensorSpecOf encodes a small tensor.
func TensorSpecOf(t *tensor.Tensor) *TensorSpec {
	ts := &TensorSpec{DType: t.DType, Shape: t.Shape, I: t.I, B: t.B}
	for _, f := range t.F {
		ts.F = append(ts.F, math.Float32bits(f))
	}
	return ts
}

// Tensor decodes the tensor.
func (ts *TensorSpec) Tensor() (*tensor.Tensor, error) {
	if ts.DType.Size() == 0 {
		return nil, fmt.Errorf("bad tensor type %d", ts.DType)
	}
	t := &tensor.Tensor{DType: ts.DType, Shape: ts.Shape, I: ts.I, B: ts.B}
	for _, f := range ts.F {
		t.F = append(t.F, math.Float32frombits(f))
	}
	if have := len(t.F) + len(t.I) + len(t.B); have != ts.Shape.Numel() {
		return nil, fmt.Errorf("%d values for shape %v", have, ts.Shape)
	}
	return t, nil
}

func nodeSpec(n *graph.Node) *NodeSpec {
	ns := &NodeSpec{Name: n.Name, Op: n.Op, Inputs: n.Inputs, Outputs: n.Outputs}
	if len(n.Attrs) > 0 {
		ns.Attrs = make(map[string]AttrSpec, len(n.Attrs))
	}
	for k, a := range n.Attrs {
		as := AttrSpec{Kind: a.Kind, Int: a.Int, Float: math.Float32bits(a.Float), String: a.String, Ints: a.Ints, Strings: a.Strings}
		for _, f := range a.Floats {
			as.Floats = append(as.Floats, math.Float32bits(f))
		}
		if a.Tensor != nil {
			as.Tensor = TensorSpecOf(a.Tensor)
		}
		ns.Attrs[k] = as
	}
	return ns
}

func (ns *NodeSpec) node() (*graph.Node, error) {
	n := &graph.Node{Name: ns.Name, Op: ns.Op, Inputs: ns.Inputs, Outputs: ns.Outputs, Attrs: map[string]graph.Attr{}}
	for k, as := range ns.Attrs {
		a := graph.Attr{Kind: as.Kind, Int: as.Int, Float: math.Float32frombits(as.Float), String: as.String, Ints: as.Ints, Strings: as.Strings}
		for _, f := range as.Floats {
			a.Floats = append(a.Floats, math.Float32frombits(f))
		}
		if ts := as.Tensor; ts != nil {
			t, err := ts.Tensor()
			if err != nil {
				return nil, fmt.Errorf("node %s: attribute %s: %w", ns.Name, k, err)
			}
			a.Tensor = t
		}
		n.Attrs[k] = a
	}
	return n, nil
}
