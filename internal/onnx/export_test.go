package onnx

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx/onnxpb"
	"github.com/iop-edge/iop/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// exportTestGraph builds a small graph that exercises every attribute kind,
// every constant type, a symbolic input dimension and an omitted optional
// input.
func exportTestGraph() *graph.Graph {
	g := graph.New("export-test", 17)
	g.Inputs = []graph.ValueInfo{
		{Name: "x", DType: tensor.Float32, Shape: tensor.Shape{-1, 3, 8, 8}},
		{Name: "untyped"},
		{Name: "s", DType: tensor.Int64, Shape: tensor.Shape{}},
	}
	g.Outputs = []graph.ValueInfo{
		{Name: "y", DType: tensor.Float32, Shape: tensor.Shape{-1, 4, 8, -1}},
		{Name: "z", DType: tensor.Float32}, // rank unknown
	}
	w := tensor.New(tensor.Float32, tensor.Shape{4, 3, 3, 3})
	for i := range w.F {
		w.F[i] = float32(math.Sin(float64(i))) * 0.1
	}
	w.F[0] = float32(math.Copysign(0, -1))
	w.F[1] = float32(math.NaN())
	w.F[2] = float32(math.Inf(-1))
	w.F[3] = math.SmallestNonzeroFloat32
	g.Constants["w"] = w
	g.Constants["b"] = tensor.FromFloat32(tensor.Shape{4}, []float32{1, -2, 3.5, 1e-30})
	g.Constants["shape"] = tensor.FromInt64(tensor.Shape{2}, []int64{-1, math.MaxInt64})
	g.Constants["scalar"] = tensor.FromFloat32(tensor.Shape{}, []float32{6})
	g.Constants["mask"] = &tensor.Tensor{Shape: tensor.Shape{3}, DType: tensor.Bool, B: []bool{true, false, true}}
	g.Constants["empty"] = tensor.New(tensor.Float32, tensor.Shape{0, 5})

	conv := &graph.Node{Name: "conv", Op: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c"}}
	conv.SetInts("kernel_shape", 3, 3)
	conv.SetInts("pads", 1, 1, 1, 1)
	conv.SetInt("group", 1)
	clip := &graph.Node{Name: "clip", Op: "Clip", Inputs: []string{"c", "", "scalar"}, Outputs: []string{"y"}}
	odd := &graph.Node{Name: "odd", Op: "Custom", Inputs: []string{"y", "shape", "mask", "untyped", "s"}, Outputs: []string{"z", ""}}
	odd.SetFloat("f", -0.25)
	odd.SetFloat("nan", float32(math.NaN()))
	odd.SetStr("str", "héllo")
	odd.SetFloats("fs", 1, float32(math.Inf(1)), -3e-38)
	odd.Attrs["ss"] = graph.Attr{Kind: graph.AttrStrings, Strings: []string{"a", "", "c"}}
	odd.Attrs["t"] = graph.Attr{Kind: graph.AttrTensor, Tensor: tensor.FromInt64(tensor.Shape{2, 1}, []int64{7, -8})}
	odd.Attrs["empty_ints"] = graph.Attr{Kind: graph.AttrInts, Ints: []int64{}}
	odd.SetInt("neg", -5)
	g.Nodes = []*graph.Node{conv, clip, odd}
	g.Values["c"] = graph.ValueInfo{Name: "c", DType: tensor.Float32, Shape: tensor.Shape{-1, 4, 8, 8}}
	return g
}

func TestEncodeRoundTrip(t *testing.T) {
	g := exportTestGraph()
	b, err := Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := CompareGraphs(g, back); err != nil {
		t.Fatalf("round trip changed the graph: %v", err)
	}
	back.Values = g.Values // inferred types are not read back
	b2, err := Encode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Error("re-encoding the decoded graph gives different bytes")
	}
	b3, _ := Encode(g)
	if !bytes.Equal(b, b3) {
		t.Error("Encode is not deterministic")
	}
}

func TestEncodeModelFields(t *testing.T) {
	m, err := ToProto(exportTestGraph())
	if err != nil {
		t.Fatal(err)
	}
	if m.GetIrVersion() != 8 || m.GetProducerName() != "iop" {
		t.Errorf("ir_version %d producer %q, want 8 and iop", m.GetIrVersion(), m.GetProducerName())
	}
	if len(m.OpsetImport) != 1 || m.OpsetImport[0].GetDomain() != "" || m.OpsetImport[0].GetVersion() != 17 {
		t.Errorf("opset_import %v, want default domain at 17", m.OpsetImport)
	}
	in := m.Graph.Input[0].GetType().GetTensorType().GetShape().GetDim()
	if len(in) != 4 || in[0].GetDimParam() != "N" || in[1].GetDimValue() != 3 {
		t.Errorf("input x dims %v, want [N 3 8 8]", in)
	}
	out := m.Graph.Output[0].GetType().GetTensorType().GetShape().GetDim()
	if out[3].GetDimParam() != "d3" {
		t.Errorf("output y dim 3 = %v, want param d3", out[3])
	}
	if len(m.Graph.Input) != 3 {
		t.Errorf("%d graph inputs, want 3 (initializers are not listed as inputs)", len(m.Graph.Input))
	}
	for _, tp := range m.Graph.Initializer {
		if tp.RawData == nil && tp.GetName() != "empty" {
			t.Errorf("initializer %q has no raw_data", tp.GetName())
		}
	}
	if len(m.Graph.ValueInfo) != 1 || m.Graph.ValueInfo[0].GetName() != "c" {
		t.Errorf("value_info %v, want only c", m.Graph.ValueInfo)
	}
	for _, ap := range m.Graph.Node[2].Attribute {
		if ap.GetType() == onnxpb.AttributeProto_UNDEFINED {
			t.Errorf("attribute %q has no type", ap.GetName())
		}
	}
	m19 := exportTestGraph()
	m19.Opset = 21
	p, err := ToProto(m19)
	if err != nil {
		t.Fatal(err)
	}
	if p.GetIrVersion() != 10 {
		t.Errorf("opset 21 written with IR %d, want 10", p.GetIrVersion())
	}
}

func TestEncodeRejectsFused(t *testing.T) {
	g := exportTestGraph()
	g.Nodes[0].SetStr(graph.FusedActivation, "Relu")
	_, err := Encode(g)
	if err == nil || !strings.Contains(err.Error(), `"conv"`) || !strings.Contains(err.Error(), graph.FusedActivation) {
		t.Fatalf("err = %v, want a fused-attribute error naming node conv", err)
	}
	g = exportTestGraph()
	g.Nodes[1].SetFloat(graph.FusedAlpha, 0.1)
	if _, err := Encode(g); err == nil || !strings.Contains(err.Error(), `"clip"`) {
		t.Fatalf("err = %v, want an error naming node clip", err)
	}
}

func TestEncodeRejectsBadGraphs(t *testing.T) {
	g := exportTestGraph()
	g.Opset = 0
	if _, err := Encode(g); err == nil {
		t.Error("opset 0 accepted")
	}
	g = exportTestGraph()
	g.Constants["w"] = &tensor.Tensor{Shape: tensor.Shape{4, 3}, DType: tensor.Float32, F: make([]float32, 5)}
	if _, err := Encode(g); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("malformed constant: err = %v", err)
	}
	g = exportTestGraph()
	g.Nodes[2].Attrs["bad"] = graph.Attr{Kind: 99}
	if _, err := Encode(g); err == nil || !strings.Contains(err.Error(), `"odd"`) {
		t.Errorf("unknown attribute kind: err = %v", err)
	}
}

func TestSaveFileLoadFile(t *testing.T) {
	g := exportTestGraph()
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := SaveFile(g, path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := CompareGraphs(g, back); err != nil {
		t.Fatal(err)
	}
	if err := SaveFile(g, filepath.Join(t.TempDir(), "no", "such", "dir.onnx")); err == nil {
		t.Error("SaveFile into a missing directory succeeded")
	}
}

func TestCompareGraphsFindsDifferences(t *testing.T) {
	mutate := map[string]func(g *graph.Graph){
		"weight bit":  func(g *graph.Graph) { g.Constants["w"].F[5] = math.Nextafter32(g.Constants["w"].F[5], 1) },
		"negzero":     func(g *graph.Graph) { g.Constants["w"].F[0] = 0 },
		"attr float":  func(g *graph.Graph) { g.Nodes[2].SetFloat("f", -0.5) },
		"attr ints":   func(g *graph.Graph) { g.Nodes[0].SetInts("pads", 1, 1, 1, 0) },
		"node input":  func(g *graph.Graph) { g.Nodes[1].Inputs[1] = "scalar" },
		"input shape": func(g *graph.Graph) { g.Inputs[0].Shape = tensor.Shape{1, 3, 8, 8} },
		"opset":       func(g *graph.Graph) { g.Opset = 13 },
		"tensor attr": func(g *graph.Graph) { g.Nodes[2].Attrs["t"].Tensor.I[1] = 0 },
	}
	for name, f := range mutate {
		a, b := exportTestGraph(), exportTestGraph()
		f(b)
		if err := CompareGraphs(a, b); err == nil {
			t.Errorf("%s: difference not found", name)
		}
	}
	if err := CompareGraphs(exportTestGraph(), exportTestGraph()); err != nil {
		t.Errorf("equal graphs differ: %v", err)
	}
}

// The written file must parse with the plain protobuf API too (no reliance
// on this package's decoder).
func TestEncodeIsPlainProtobuf(t *testing.T) {
	b, err := Encode(exportTestGraph())
	if err != nil {
		t.Fatal(err)
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	if got := len(m.Graph.Node); got != 3 {
		t.Errorf("%d nodes, want 3", got)
	}
}
