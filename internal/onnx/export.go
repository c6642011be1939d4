package onnx

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx/onnxpb"
	"github.com/iop-edge/iop/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// ProducerName is written into the producer_name field of exported models.
const ProducerName = "iop"

// maxProtoBytes is the protobuf message size limit (2 GiB). Models with more
// weight data than this would need ONNX external data, which Encode does not
// write.
const maxProtoBytes = 1<<31 - 1

// fusedPrefix starts the names of the IR-only attributes the graph passes add
// (graph.FusedActivation and friends); they have no ONNX meaning.
const fusedPrefix = "iop."

// irVersionFor returns the ONNX IR version to write for a default-domain
// opset: 8 (ONNX 1.12/1.13) up to opset 18, and the version that introduced
// each newer opset beyond it, so that runtimes which check the pair accept
// the file.
func irVersionFor(opset int64) int64 {
	switch {
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	case opset <= 22:
		return 10
	default:
		return 11
	}
}

// SaveFile writes g to path as an ONNX model (see Encode).
func SaveFile(g *graph.Graph, path string) error {
	b, err := Encode(g)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing ONNX model: %w", err)
	}
	return nil
}

// Encode serializes g as an ONNX ModelProto: IR version 8 (higher only for
// opsets newer than 18), the default-domain opset g.Opset, producer "iop".
// The graph inputs carry their element types and shapes (an unknown
// dimension, -1, becomes the symbolic dimension "N" on axis 0 and "d<axis>"
// elsewhere), the constants become initializers with raw data (in name
// order), the nodes keep their order, names and attributes, and the known
// types of intermediate values (g.Values) are written as value_info.
//
// The output is deterministic. Graphs whose nodes carry the IR-only fused
// attributes ("iop.*", see graph.FusedActivation) are rejected: they would
// silently change meaning in any other runtime.
func Encode(g *graph.Graph) ([]byte, error) {
	m, err := ToProto(g)
	if err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding ONNX model %q: %w", g.Name, err)
	}
	return b, nil
}

// ToProto converts g to a ModelProto (see Encode for what is written).
func ToProto(g *graph.Graph) (*onnxpb.ModelProto, error) {
	if g.Opset < MinOpset || g.Opset > MaxOpset {
		return nil, fmt.Errorf("graph %q: opset %d cannot be exported (supported: %d to %d)", g.Name, g.Opset, MinOpset, MaxOpset)
	}
	var total int64
	for _, t := range g.Constants {
		total += t.Bytes()
	}
	if total > maxProtoBytes {
		return nil, fmt.Errorf("graph %q: %d bytes of constants exceed the 2 GiB protobuf limit (external data is not supported)", g.Name, total)
	}

	gp := &onnxpb.GraphProto{Name: proto.String(g.Name)}
	special := map[string]bool{}
	for _, vi := range g.Inputs {
		if g.IsConst(vi.Name) {
			return nil, fmt.Errorf("graph %q: input %q is also a constant", g.Name, vi.Name)
		}
		p, err := valueInfoProto(vi)
		if err != nil {
			return nil, fmt.Errorf("graph %q: input %q: %w", g.Name, vi.Name, err)
		}
		gp.Input = append(gp.Input, p)
		special[vi.Name] = true
	}
	for _, vi := range g.Outputs {
		if vi.DType == 0 {
			if known, ok := g.Values[vi.Name]; ok {
				vi.DType, vi.Shape = known.DType, known.Shape
			}
		}
		p, err := valueInfoProto(vi)
		if err != nil {
			return nil, fmt.Errorf("graph %q: output %q: %w", g.Name, vi.Name, err)
		}
		gp.Output = append(gp.Output, p)
		special[vi.Name] = true
	}
	for _, name := range g.ConstNames() {
		t := g.Constants[name]
		if err := checkTensor(t); err != nil {
			return nil, fmt.Errorf("graph %q: constant %q: %w", g.Name, name, err)
		}
		gp.Initializer = append(gp.Initializer, TensorToProto(name, t))
		special[name] = true
	}
	for _, n := range g.Nodes {
		np, err := nodeProto(n)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	// value_info: intermediate values with a known type, in node order.
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			vi, ok := g.Values[o]
			if o == "" || special[o] || !ok || vi.DType == 0 {
				continue
			}
			special[o] = true
			vi.Name = o
			p, err := valueInfoProto(vi)
			if err != nil {
				return nil, fmt.Errorf("graph %q: value %q: %w", g.Name, o, err)
			}
			gp.ValueInfo = append(gp.ValueInfo, p)
		}
	}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(irVersionFor(g.Opset)),
		ProducerName: proto.String(ProducerName),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(g.Opset)}},
		Graph:        gp,
	}, nil
}

// checkTensor verifies that t's buffer matches its shape and type, so a
// malformed tensor fails here instead of producing a corrupt file.
func checkTensor(t *tensor.Tensor) error {
	if t == nil {
		return fmt.Errorf("tensor is nil")
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", t.Shape)
		}
	}
	n, have := t.Shape.Numel(), -1
	switch t.DType {
	case tensor.Float32:
		have = len(t.F)
	case tensor.Int64:
		have = len(t.I)
	case tensor.Bool:
		have = len(t.B)
	default:
		return fmt.Errorf("element type %v cannot be exported", t.DType)
	}
	if have != n {
		return fmt.Errorf("%v holds %d values, shape needs %d", t.DType, have, n)
	}
	return nil
}

// elemType maps an engine element type to ONNX's.
func elemType(dt tensor.DType) (int32, error) {
	switch dt {
	case tensor.Float32:
		return int32(onnxpb.TensorProto_FLOAT), nil
	case tensor.Int64:
		return int32(onnxpb.TensorProto_INT64), nil
	case tensor.Bool:
		return int32(onnxpb.TensorProto_BOOL), nil
	}
	return 0, fmt.Errorf("element type %v cannot be exported", dt)
}

// valueInfoProto writes a value's type. An unknown element type (0) writes
// an untyped value; a nil shape writes a tensor type without shape (unknown
// rank), an empty non-nil shape a scalar.
func valueInfoProto(vi graph.ValueInfo) (*onnxpb.ValueInfoProto, error) {
	p := &onnxpb.ValueInfoProto{Name: proto.String(vi.Name)}
	if vi.DType == 0 {
		return p, nil
	}
	et, err := elemType(vi.DType)
	if err != nil {
		return nil, err
	}
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(et)}
	if vi.Shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for i, d := range vi.Shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d >= 0:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			case i == 0:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
			default:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("d%d", i)}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	p.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
	return p, nil
}

// nodeProto converts one node; attributes are written in name order.
func nodeProto(n *graph.Node) (*onnxpb.NodeProto, error) {
	if n.Op == "" {
		return nil, fmt.Errorf("%v: node has no operator type", n)
	}
	if strings.HasPrefix(n.Op, fusedPrefix) {
		return nil, fmt.Errorf("%v: IR-only operator cannot be exported to ONNX", n)
	}
	np := &onnxpb.NodeProto{
		Name:   proto.String(n.Name),
		OpType: proto.String(n.Op),
		Input:  append([]string(nil), n.Inputs...),
		Output: append([]string(nil), n.Outputs...),
	}
	names := make([]string, 0, len(n.Attrs))
	for name := range n.Attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasPrefix(name, fusedPrefix) {
			return nil, fmt.Errorf("%v: fused attribute %q cannot be exported to ONNX (export the graph before fusing)", n, name)
		}
		ap, err := attrProto(name, n.Attrs[name])
		if err != nil {
			return nil, fmt.Errorf("%v: attribute %q: %w", n, name, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func attrProto(name string, a graph.Attr) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(name)}
	var t onnxpb.AttributeProto_AttributeType
	switch a.Kind {
	case graph.AttrInt:
		t = onnxpb.AttributeProto_INT
		ap.I = proto.Int64(a.Int)
	case graph.AttrFloat:
		t = onnxpb.AttributeProto_FLOAT
		ap.F = proto.Float32(a.Float)
	case graph.AttrString:
		t = onnxpb.AttributeProto_STRING
		ap.S = []byte(a.String)
	case graph.AttrInts:
		t = onnxpb.AttributeProto_INTS
		ap.Ints = append([]int64(nil), a.Ints...)
	case graph.AttrFloats:
		t = onnxpb.AttributeProto_FLOATS
		ap.Floats = append([]float32(nil), a.Floats...)
	case graph.AttrStrings:
		t = onnxpb.AttributeProto_STRINGS
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	case graph.AttrTensor:
		t = onnxpb.AttributeProto_TENSOR
		if err := checkTensor(a.Tensor); err != nil {
			return nil, err
		}
		ap.T = TensorToProto("", a.Tensor)
	default:
		return nil, fmt.Errorf("unknown attribute kind %d", a.Kind)
	}
	ap.Type = t.Enum()
	return ap, nil
}

// CompareGraphs returns nil if a and b describe the same model: name, opset,
// inputs and outputs (names, types, shapes), nodes in order (names,
// operators, inputs, outputs, attributes) and constants, with tensor data
// compared bit for bit. It ignores g.Values (inferred, not part of the
// model). Otherwise the error names the first difference. It is what an
// export/import round trip must satisfy.
func CompareGraphs(a, b *graph.Graph) error {
	if a.Name != b.Name {
		return fmt.Errorf("graph name %q != %q", a.Name, b.Name)
	}
	if a.Opset != b.Opset {
		return fmt.Errorf("opset %d != %d", a.Opset, b.Opset)
	}
	if err := compareValueInfos("input", a.Inputs, b.Inputs); err != nil {
		return err
	}
	if err := compareValueInfos("output", a.Outputs, b.Outputs); err != nil {
		return err
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Errorf("%d nodes != %d nodes", len(a.Nodes), len(b.Nodes))
	}
	for i := range a.Nodes {
		if err := compareNodes(a.Nodes[i], b.Nodes[i]); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	if len(a.Constants) != len(b.Constants) {
		return fmt.Errorf("%d constants != %d constants", len(a.Constants), len(b.Constants))
	}
	for _, name := range a.ConstNames() {
		bt, ok := b.Constants[name]
		if !ok {
			return fmt.Errorf("constant %q is missing from the second graph", name)
		}
		if err := compareTensors(a.Constants[name], bt); err != nil {
			return fmt.Errorf("constant %q: %w", name, err)
		}
	}
	return nil
}

func compareValueInfos(what string, a, b []graph.ValueInfo) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d %ss != %d", len(a), what, len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DType != b[i].DType || !a[i].Shape.Equal(b[i].Shape) || (a[i].Shape == nil) != (b[i].Shape == nil) {
			return fmt.Errorf("%s %d: %q %v%v != %q %v%v", what, i, a[i].Name, a[i].DType, a[i].Shape, b[i].Name, b[i].DType, b[i].Shape)
		}
	}
	return nil
}

func compareStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func compareNodes(a, b *graph.Node) error {
	if a.Name != b.Name || a.Op != b.Op {
		return fmt.Errorf("%v != %v", a, b)
	}
	if !compareStrings(a.Inputs, b.Inputs) {
		return fmt.Errorf("%v: inputs %q != %q", a, a.Inputs, b.Inputs)
	}
	if !compareStrings(a.Outputs, b.Outputs) {
		return fmt.Errorf("%v: outputs %q != %q", a, a.Outputs, b.Outputs)
	}
	if len(a.Attrs) != len(b.Attrs) {
		return fmt.Errorf("%v: %d attributes != %d", a, len(a.Attrs), len(b.Attrs))
	}
	for name, x := range a.Attrs {
		y, ok := b.Attrs[name]
		if !ok {
			return fmt.Errorf("%v: attribute %q is missing", a, name)
		}
		if err := compareAttrs(x, y); err != nil {
			return fmt.Errorf("%v: attribute %q: %w", a, name, err)
		}
	}
	return nil
}

func compareAttrs(a, b graph.Attr) error {
	if a.Kind != b.Kind {
		return fmt.Errorf("kind %d != %d", a.Kind, b.Kind)
	}
	switch a.Kind {
	case graph.AttrInt:
		if a.Int != b.Int {
			return fmt.Errorf("%d != %d", a.Int, b.Int)
		}
	case graph.AttrFloat:
		if math.Float32bits(a.Float) != math.Float32bits(b.Float) {
			return fmt.Errorf("%g != %g", a.Float, b.Float)
		}
	case graph.AttrString:
		if a.String != b.String {
			return fmt.Errorf("%q != %q", a.String, b.String)
		}
	case graph.AttrInts:
		if len(a.Ints) != len(b.Ints) {
			return fmt.Errorf("%v != %v", a.Ints, b.Ints)
		}
		for i := range a.Ints {
			if a.Ints[i] != b.Ints[i] {
				return fmt.Errorf("%v != %v", a.Ints, b.Ints)
			}
		}
	case graph.AttrFloats:
		if len(a.Floats) != len(b.Floats) {
			return fmt.Errorf("%v != %v", a.Floats, b.Floats)
		}
		for i := range a.Floats {
			if math.Float32bits(a.Floats[i]) != math.Float32bits(b.Floats[i]) {
				return fmt.Errorf("%v != %v", a.Floats, b.Floats)
			}
		}
	case graph.AttrStrings:
		if !compareStrings(a.Strings, b.Strings) {
			return fmt.Errorf("%q != %q", a.Strings, b.Strings)
		}
	case graph.AttrTensor:
		return compareTensors(a.Tensor, b.Tensor)
	}
	return nil
}

func compareTensors(a, b *tensor.Tensor) error {
	if (a == nil) != (b == nil) {
		return fmt.Errorf("one tensor is nil")
	}
	if a == nil {
		return nil
	}
	if a.DType != b.DType || !a.Shape.Equal(b.Shape) {
		return fmt.Errorf("%v != %v", a, b)
	}
	switch a.DType {
	case tensor.Float32:
		if len(a.F) != len(b.F) {
			return fmt.Errorf("%d values != %d", len(a.F), len(b.F))
		}
		for i := range a.F {
			if math.Float32bits(a.F[i]) != math.Float32bits(b.F[i]) {
				return fmt.Errorf("element %d: %g != %g", i, a.F[i], b.F[i])
			}
		}
	case tensor.Int64:
		if len(a.I) != len(b.I) {
			return fmt.Errorf("%d values != %d", len(a.I), len(b.I))
		}
		for i := range a.I {
			if a.I[i] != b.I[i] {
				return fmt.Errorf("element %d: %d != %d", i, a.I[i], b.I[i])
			}
		}
	case tensor.Bool:
		if len(a.B) != len(b.B) {
			return fmt.Errorf("%d values != %d", len(a.B), len(b.B))
		}
		for i := range a.B {
			if a.B[i] != b.B[i] {
				return fmt.Errorf("element %d: %v != %v", i, a.B[i], b.B[i])
			}
		}
	}
	return nil
}
