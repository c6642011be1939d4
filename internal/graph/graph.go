// Package graph holds the model's intermediate representation: a topologically
// ordered list of nodes over named values, the constant tensors (weights and
// folded values), and the inferred type and shape of every value.
//
// The IR is deliberately close to ONNX: a node keeps its ONNX operator name
// and attributes, so an imported model, a zoo model and a per-device slice of
// a partitioned model are all the same kind of object, run by the same
// executor. Fusions done by the passes are expressed as extra attributes on
// ordinary operators (see the Fused* attribute names).
package graph

import (
	"fmt"
	"sort"

	"github.com/iop-edge/iop/internal/tensor"
)

// AttrKind says which field of an Attr holds its value.
type AttrKind int

// Attribute kinds (a subset of ONNX's AttributeType).
const (
	AttrInt AttrKind = iota + 1
	AttrFloat
	AttrString
	AttrInts
	AttrFloats
	AttrStrings
	AttrTensor
)

// Attr is one operator attribute.
type Attr struct {
	Kind    AttrKind
	Int     int64
	Float   float32
	String  string
	Ints    []int64
	Floats  []float32
	Strings []string
	Tensor  *tensor.Tensor
}

// Node is one operator application.
type Node struct {
	Name    string
	Op      string   // ONNX operator type, e.g. "Conv"
	Inputs  []string // value names; "" marks an omitted optional input
	Outputs []string
	Attrs   map[string]Attr
}

// ValueInfo is the element type and static shape of a value.
type ValueInfo struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
}

// Graph is a model: inputs, outputs, nodes in execution order, and constants.
type Graph struct {
	Name string
	// Opset is the default-domain operator set version the model was written
	// against; operators whose meaning changed across opsets consult it.
	Opset int64
	// Inputs are the graph inputs that are not constants, in order.
	Inputs []ValueInfo
	// Outputs are the graph outputs, in order.
	Outputs []ValueInfo
	// Nodes are in a valid execution (topological) order.
	Nodes []*Node
	// Constants holds initializers and folded values by name.
	Constants map[string]*tensor.Tensor
	// Values holds the inferred type and shape of every value (after shape
	// inference; see package ops).
	Values map[string]ValueInfo
}

// New returns an empty graph at the given opset.
func New(name string, opset int64) *Graph {
	return &Graph{Name: name, Opset: opset, Constants: map[string]*tensor.Tensor{}, Values: map[string]ValueInfo{}}
}

// IsConst reports whether name is a constant of g.
func (g *Graph) IsConst(name string) bool {
	_, ok := g.Constants[name]
	return ok
}

// Producers maps each value name to the node producing it.
func (g *Graph) Producers() map[string]*Node {
	m := make(map[string]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				m[o] = n
			}
		}
	}
	return m
}

// Consumers maps each value name to the nodes reading it, in execution order.
func (g *Graph) Consumers() map[string][]*Node {
	m := make(map[string][]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				m[in] = append(m[in], n)
			}
		}
	}
	return m
}

// IsOutput reports whether name is a graph output.
func (g *Graph) IsOutput(name string) bool {
	for _, o := range g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// ParamBytes is the total size of the constants that nodes read.
func (g *Graph) ParamBytes() int64 {
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	var b int64
	for name, t := range g.Constants {
		if used[name] {
			b += t.Bytes()
		}
	}
	return b
}

// Prune removes nodes whose outputs nothing needs and constants nothing
// reads.
func (g *Graph) Prune() {
	need := map[string]bool{}
	for _, o := range g.Outputs {
		need[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		for _, o := range n.Outputs {
			if need[o] {
				keep[i] = true
				break
			}
		}
		if keep[i] {
			for _, in := range n.Inputs {
				if in != "" {
					need[in] = true
				}
			}
		}
	}
	nodes := g.Nodes[:0]
	for i, n := range g.Nodes {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Nodes = nodes
	for name := range g.Constants {
		if !need[name] {
			delete(g.Constants, name)
		}
	}
}

// Rename replaces every use of value old (as a node input or graph output)
// with new.
func (g *Graph) Rename(old, new string) {
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == old {
				n.Inputs[i] = new
			}
		}
	}
	for i, o := range g.Outputs {
		if o.Name == old {
			g.Outputs[i].Name = new
		}
	}
}

// Validate checks that every node input is defined before it is read, that
// every value is produced once, and that every output is defined.
func (g *Graph) Validate() error {
	defined := map[string]bool{}
	for _, in := range g.Inputs {
		defined[in.Name] = true
	}
	for name := range g.Constants {
		defined[name] = true
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" && !defined[in] {
				return fmt.Errorf("node %q (%s): input %q is not defined before it is used", n.Name, n.Op, in)
			}
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if defined[o] {
				return fmt.Errorf("node %q (%s): output %q is defined more than once", n.Name, n.Op, o)
			}
			defined[o] = true
		}
	}
	for _, o := range g.Outputs {
		if !defined[o.Name] {
			return fmt.Errorf("graph output %q is not produced by any node", o.Name)
		}
	}
	return nil
}

// TopoSort reorders g.Nodes so that every node follows its producers. It
// keeps the given order where it is already valid and fails on a cycle.
func (g *Graph) TopoSort() error {
	prod := g.Producers()
	state := map[*Node]int{} // 1 visiting, 2 done
	order := make([]*Node, 0, len(g.Nodes))
	var visit func(n *Node) error
	visit = func(n *Node) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("graph has a cycle through node %q (%s)", n.Name, n.Op)
		case 2:
			return nil
		}
		state[n] = 1
		for _, in := range n.Inputs {
			if p, ok := prod[in]; ok && in != "" {
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range g.Nodes {
		if err := visit(n); err != nil {
			return err
		}
	}
	g.Nodes = order
	return nil
}

// UniqueName returns a value or node name starting with prefix that no
// value, constant or node of g uses yet.
func (g *Graph) UniqueName(prefix string) string {
	used := map[string]bool{}
	for _, n := range g.Nodes {
		used[n.Name] = true
		for _, o := range n.Outputs {
			used[o] = true
		}
	}
	for name := range g.Constants {
		used[name] = true
	}
	for _, in := range g.Inputs {
		used[in.Name] = true
	}
	if !used[prefix] {
		return prefix
	}
	for i := 1; ; i++ {
		s := fmt.Sprintf("%s_%d", prefix, i)
		if !used[s] {
			return s
		}
	}
}

// ConstNames returns the constant names in sorted order (for deterministic
// output).
func (g *Graph) ConstNames() []string {
	names := make([]string, 0, len(g.Constants))
	for n := range g.Constants {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Clone returns a copy of g that shares constant tensor data but not the
// node list, nodes or maps.
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, Opset: g.Opset,
		Inputs:    append([]ValueInfo(nil), g.Inputs...),
		Outputs:   append([]ValueInfo(nil), g.Outputs...),
		Constants: make(map[string]*tensor.Tensor, len(g.Constants)),
		Values:    make(map[string]ValueInfo, len(g.Values)),
	}
	for k, v := range g.Constants {
		c.Constants[k] = v
	}
	for k, v := range g.Values {
		c.Values[k] = v
	}
	for _, n := range g.Nodes {
		c.Nodes = append(c.Nodes, n.Clone())
	}
	return c
}

// Clone copies the node (attribute values are shared).
func (n *Node) Clone() *Node {
	c := &Node{Name: n.Name, Op: n.Op,
		Inputs:  append([]string(nil), n.Inputs...),
		Outputs: append([]string(nil), n.Outputs...),
		Attrs:   make(map[string]Attr, len(n.Attrs)),
	}
	for k, v := range n.Attrs {
		c.Attrs[k] = v
	}
	return c
}

func (n *Node) String() string {
	if n.Name != "" {
		return fmt.Sprintf("node %q (%s)", n.Name, n.Op)
	}
	return fmt.Sprintf("%s node with output %q", n.Op, first(n.Outputs))
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
