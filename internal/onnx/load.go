package onnx

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx/onnxpb"
	"github.com/iop-edge/iop/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// Supported default-domain opset range.
const (
	MinOpset = 6
	MaxOpset = 25
)

// LoadFile reads an ONNX model file into the graph IR. External tensor data
// is resolved relative to the file's directory.
func LoadFile(path string) (*graph.Graph, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := Decode(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if g.Name == "" {
		g.Name = filepath.Base(path)
	}
	return g, nil
}

// Decode parses a serialized ModelProto. dir is where external data lives
// ("" if none may be used).
func Decode(b []byte, dir string) (*graph.Graph, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: cannot parse protobuf: %v", ErrNotONNX, err)
	}
	if m.Graph == nil || (len(m.Graph.Node) == 0 && len(m.Graph.Output) == 0) {
		return nil, fmt.Errorf("%w: file holds no graph", ErrNotONNX)
	}
	return FromProto(m, dir)
}

// FromProto converts a parsed ModelProto to the graph IR.
func FromProto(m *onnxpb.ModelProto, dir string) (*graph.Graph, error) {
	opset := int64(-1)
	for _, o := range m.OpsetImport {
		switch o.GetDomain() {
		case "", "ai.onnx":
			opset = o.GetVersion()
		}
	}
	if opset < 0 {
		if m.GetIrVersion() <= 2 { // ancient models imply opset 1
			opset = 1
		} else {
			return nil, fmt.Errorf("model imports no default-domain (ai.onnx) opset")
		}
	}
	if opset < MinOpset || opset > MaxOpset {
		return nil, fmt.Errorf("unsupported opset %d (supported: %d to %d)", opset, MinOpset, MaxOpset)
	}
	gp := m.Graph
	g := graph.New(gp.GetName(), opset)
	if len(gp.SparseInitializer) > 0 {
		return nil, fmt.Errorf("sparse initializers are not supported (%q)", gp.SparseInitializer[0].GetValues().GetName())
	}
	for _, tp := range gp.Initializer {
		t, err := TensorFromProto(tp, dir)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", tp.GetName(), err)
		}
		g.Constants[tp.GetName()] = t
	}
	for _, vi := range gp.Input {
		if g.IsConst(vi.GetName()) {
			continue
		}
		v, err := valueInfo(vi)
		if err != nil {
			return nil, fmt.Errorf("graph input %q: %w", vi.GetName(), err)
		}
		g.Inputs = append(g.Inputs, v)
	}
	for _, vi := range gp.Output {
		v, err := valueInfo(vi)
		if err != nil {
			return nil, fmt.Errorf("graph output %q: %w", vi.GetName(), err)
		}
		g.Outputs = append(g.Outputs, v)
	}
	for i, np := range gp.Node {
		n := &graph.Node{Name: np.GetName(), Op: np.GetOpType(), Inputs: np.Input, Outputs: np.Output, Attrs: map[string]graph.Attr{}}
		if n.Name == "" {
			n.Name = fmt.Sprintf("%s_%d", n.Op, i)
		}
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("node %q: operator %s of domain %q is not supported", n.Name, n.Op, d)
		}
		for _, ap := range np.Attribute {
			a, err := attr(ap, dir)
			if err != nil {
				return nil, fmt.Errorf("node %q (%s): attribute %q: %w", n.Name, n.Op, ap.GetName(), err)
			}
			n.Attrs[ap.GetName()] = a
		}
		g.Nodes = append(g.Nodes, n)
	}
	if err := g.TopoSort(); err != nil {
		return nil, err
	}
	if err := upgradeLegacy(g); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

func valueInfo(vi *onnxpb.ValueInfoProto) (graph.ValueInfo, error) {
	v := graph.ValueInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		if vi.GetType() == nil {
			return v, nil // untyped: inferred later
		}
		return v, fmt.Errorf("only tensor types are supported")
	}
	dt, err := elemDType(tt.GetElemType())
	if err != nil {
		return v, err
	}
	v.DType = dt
	if tt.Shape != nil {
		v.Shape = make(tensor.Shape, len(tt.Shape.Dim))
		for i, d := range tt.Shape.Dim {
			if _, ok := d.Value.(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
				v.Shape[i] = int(d.GetDimValue())
			} else {
				v.Shape[i] = -1 // symbolic or unknown
			}
		}
	}
	return v, nil
}

func attr(ap *onnxpb.AttributeProto, dir string) (graph.Attr, error) {
	if ap.GetRefAttrName() != "" {
		return graph.Attr{}, fmt.Errorf("attribute references (functions) are not supported")
	}
	t := ap.GetType()
	if t == onnxpb.AttributeProto_UNDEFINED { // IR < 4 files omit the type
		switch {
		case ap.F != nil:
			t = onnxpb.AttributeProto_FLOAT
		case ap.I != nil:
			t = onnxpb.AttributeProto_INT
		case ap.S != nil:
			t = onnxpb.AttributeProto_STRING
		case ap.T != nil:
			t = onnxpb.AttributeProto_TENSOR
		case len(ap.Floats) > 0:
			t = onnxpb.AttributeProto_FLOATS
		case len(ap.Ints) > 0:
			t = onnxpb.AttributeProto_INTS
		case len(ap.Strings) > 0:
			t = onnxpb.AttributeProto_STRINGS
		}
	}
	switch t {
	case onnxpb.AttributeProto_INT:
		return graph.Attr{Kind: graph.AttrInt, Int: ap.GetI()}, nil
	case onnxpb.AttributeProto_FLOAT:
		return graph.Attr{Kind: graph.AttrFloat, Float: ap.GetF()}, nil
	case onnxpb.AttributeProto_STRING:
		return graph.Attr{Kind: graph.AttrString, String: string(ap.GetS())}, nil
	case onnxpb.AttributeProto_INTS:
		return graph.Attr{Kind: graph.AttrInts, Ints: append([]int64{}, ap.Ints...)}, nil
	case onnxpb.AttributeProto_FLOATS:
		return graph.Attr{Kind: graph.AttrFloats, Floats: append([]float32{}, ap.Floats...)}, nil
	case onnxpb.AttributeProto_STRINGS:
		s := make([]string, len(ap.Strings))
		for i, b := range ap.Strings {
			s[i] = string(b)
		}
		return graph.Attr{Kind: graph.AttrStrings, Strings: s}, nil
	case onnxpb.AttributeProto_TENSOR:
		tt, err := TensorFromProto(ap.T, dir)
		if err != nil {
			return graph.Attr{}, err
		}
		return graph.Attr{Kind: graph.AttrTensor, Tensor: tt}, nil
	}
	return graph.Attr{}, fmt.Errorf("attribute type %s is not supported", t)
}
