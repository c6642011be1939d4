package zoo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/engine"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/ortref"
	"github.com/iop-edge/iop/internal/tensor"
)

// torchvisionParams are the parameter counts torchvision reports for its
// models (sum of p.numel() over model.parameters(); GoogLeNet without the
// auxiliary heads, as in its published weights).
var torchvisionParams = map[string]int64{
	"vgg16":       138_357_544,
	"resnet18":    11_689_512,
	"resnet50":    25_557_032,
	"mobilenetv2": 3_504_872,
	"squeezenet":  1_235_496,
	"googlenet":   6_624_904,
	"densenet121": 7_978_856,
}

// Under -short, slowToBuild models are skipped by every test (vgg16 has
// 138M parameters) and slowToRun ones by the tests that run the engine.
var (
	slowToBuild = map[string]bool{"vgg16": true}
	slowToRun   = map[string]bool{"vgg16": true, "resnet50": true, "densenet121": true, "alexnet": true}
)

// standardOps are the only operators zoo models may use.
var standardOps = map[string]bool{
	"Conv": true, "BatchNormalization": true, "Relu": true, "Clip": true, "MaxPool": true,
	"AveragePool": true, "GlobalAveragePool": true, "Add": true, "Concat": true,
	"Flatten": true, "Reshape": true, "Gemm": true, "LRN": true,
}

// testModels lists the models a test covers: all of them, or under -short
// those not in skip.
func testModels(skip map[string]bool) []Info {
	var out []Info
	for _, m := range List() {
		if testing.Short() && skip[m.Name] {
			continue
		}
		out = append(out, m)
	}
	return out
}

func mustBuild(t *testing.T, name string) *graph.Graph {
	t.Helper()
	g, err := Build(name)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func countOps(g *graph.Graph) map[string]int {
	c := map[string]int{}
	for _, n := range g.Nodes {
		c[n.Op]++
	}
	return c
}

func TestBuildAll(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range testModels(slowToBuild) {
		t.Run(m.Name, func(t *testing.T) {
			if seen[m.Name] {
				t.Fatal("duplicate model name")
			}
			seen[m.Name] = true
			g := mustBuild(t, m.Name)
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			if g.Name != m.Name || g.Opset != Opset {
				t.Errorf("graph %q opset %d, want %q opset %d", g.Name, g.Opset, m.Name, Opset)
			}
			if got := ParamCount(g); got != m.Params {
				t.Errorf("%d parameters, Info says %d", got, m.Params)
			}
			if want, ok := torchvisionParams[m.Name]; ok && m.Params != want {
				t.Errorf("%d parameters, torchvision has %d", m.Params, want)
			}
			if len(g.Inputs) != 1 || g.Inputs[0].Name != InputName || g.Inputs[0].DType != tensor.Float32 || !g.Inputs[0].Shape.Equal(m.InputShape) {
				t.Errorf("inputs %v, want one float32 %q of shape %v", g.Inputs, InputName, m.InputShape)
			}
			classes := imagenetClasses
			if strings.HasPrefix(m.Name, "tiny-") {
				classes = tinyClasses
			}
			if len(g.Outputs) != 1 || g.Outputs[0].Name != OutputName || !g.Outputs[0].Shape.Equal(tensor.Shape{1, classes}) {
				t.Errorf("outputs %v, want %q of shape [1 %d]", g.Outputs, OutputName, classes)
			}
			for _, n := range g.Nodes {
				if !standardOps[n.Op] {
					t.Errorf("%v: operator is not in the zoo's standard set", n)
				}
				for a := range n.Attrs {
					if strings.HasPrefix(a, "iop.") {
						t.Errorf("%v: fused attribute %q", n, a)
					}
				}
				if n.Op == "BatchNormalization" {
					checkBN(t, g, n)
				}
			}
			// Everything the nodes read is used; nothing is left over.
			c := g.Clone()
			c.Prune()
			if len(c.Nodes) != len(g.Nodes) || len(c.Constants) != len(g.Constants) {
				t.Errorf("graph has dead nodes or unused constants")
			}
		})
	}
}

// checkBN verifies a BatchNormalization is not an identity, so folding it is
// a real transformation.
func checkBN(t *testing.T, g *graph.Graph, n *graph.Node) {
	t.Helper()
	trivial := func(name string, v float32) bool {
		for _, x := range g.Constants[name].F {
			if x != v {
				return false
			}
		}
		return true
	}
	if trivial(n.Inputs[1], 1) || trivial(n.Inputs[2], 0) || trivial(n.Inputs[3], 0) || trivial(n.Inputs[4], 1) {
		t.Errorf("%v: trivial parameters", n)
	}
	for _, x := range g.Constants[n.Inputs[4]].F {
		if !(x > 0) {
			t.Fatalf("%v: running variance %g", n, x)
		}
	}
}

// TestStructure pins the characteristic structure of each real model.
func TestStructure(t *testing.T) {
	type want struct {
		ops     map[string]int
		grouped int // convs with 1 < group < in channels
		dw      int // depthwise convs
		concat4 int // 4-input concats
	}
	cases := map[string]want{
		"alexnet":     {ops: map[string]int{"Conv": 5, "LRN": 2, "MaxPool": 3, "Gemm": 3, "Relu": 7, "Reshape": 1}, grouped: 3},
		"vgg16":       {ops: map[string]int{"Conv": 13, "MaxPool": 5, "Gemm": 3, "Relu": 15, "AveragePool": 1, "Flatten": 1}},
		"resnet18":    {ops: map[string]int{"Conv": 20, "BatchNormalization": 20, "Add": 8, "Relu": 17, "MaxPool": 1, "GlobalAveragePool": 1, "Gemm": 1}},
		"resnet50":    {ops: map[string]int{"Conv": 53, "BatchNormalization": 53, "Add": 16, "Relu": 49, "Gemm": 1}},
		"mobilenetv2": {ops: map[string]int{"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10, "Gemm": 1}, dw: 17},
		"squeezenet":  {ops: map[string]int{"Conv": 26, "Concat": 8, "MaxPool": 3, "Relu": 26, "GlobalAveragePool": 1}},
		"googlenet":   {ops: map[string]int{"Conv": 57, "BatchNormalization": 57, "Concat": 9, "MaxPool": 13, "Gemm": 1}, concat4: 9},
		"densenet121": {ops: map[string]int{"Conv": 120, "BatchNormalization": 121, "Concat": 58, "AveragePool": 3, "Gemm": 1}, concat4: 4},
	}
	for _, m := range testModels(slowToBuild) {
		w, ok := cases[m.Name]
		if !ok {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			g := mustBuild(t, m.Name)
			got := countOps(g)
			for op, n := range w.ops {
				if got[op] != n {
					t.Errorf("%d %s nodes, want %d", got[op], op, n)
				}
			}
			shapes := channelsOf(g)
			grouped, dw, concat4 := 0, 0, 0
			for _, n := range g.Nodes {
				switch n.Op {
				case "Conv":
					gr := int(n.Int("group", 1))
					in := shapes[n.Inputs[0]]
					switch {
					case gr > 1 && gr == in:
						dw++
					case gr > 1:
						grouped++
					}
				case "Concat":
					if len(n.Inputs) == 4 {
						concat4++
					}
				}
			}
			if grouped != w.grouped || dw != w.dw || concat4 != w.concat4 {
				t.Errorf("grouped %d depthwise %d 4-way concat %d, want %d %d %d", grouped, dw, concat4, w.grouped, w.dw, w.concat4)
			}
		})
	}
}

// channelsOf returns the channel count of every value, rebuilt from the weights
// (enough to classify convs as grouped or depthwise).
func channelsOf(g *graph.Graph) map[string]int {
	ch := map[string]int{InputName: g.Inputs[0].Shape[1]}
	for _, n := range g.Nodes {
		switch n.Op {
		case "Conv":
			ch[n.Outputs[0]] = g.Constants[n.Inputs[1]].Shape[0]
		case "Concat":
			s := 0
			for _, in := range n.Inputs {
				s += ch[in]
			}
			ch[n.Outputs[0]] = s
		default:
			ch[n.Outputs[0]] = ch[n.Inputs[0]]
		}
	}
	return ch
}

func TestConvOut(t *testing.T) {
	// The layer sizes of the paper: 55 after conv1, 27 after pool1, 13 after
	// pool2, 6 after pool5.
	for _, c := range []struct{ in, k, s, p, want int }{{227, 11, 4, 0, 55}, {55, 3, 2, 0, 27}, {27, 3, 2, 0, 13}, {13, 3, 2, 0, 6}} {
		if got := convOut(c.in, c.k, c.s, c.p, false); got != c.want {
			t.Errorf("convOut(%d, k%d, s%d, p%d) = %d, want %d", c.in, c.k, c.s, c.p, got, c.want)
		}
	}
	// ceil mode: torchvision squeezenet 111 → 55, googlenet 112 → 56, and
	// PyTorch's rule that the last window must start inside the input.
	for _, c := range []struct{ in, k, s, p, want int }{{111, 3, 2, 0, 55}, {112, 3, 2, 0, 56}, {14, 2, 2, 0, 7}, {5, 2, 2, 1, 3}, {4, 3, 2, 1, 3}} {
		if got := convOut(c.in, c.k, c.s, c.p, true); got != c.want {
			t.Errorf("ceil convOut(%d, k%d, s%d, p%d) = %d, want %d", c.in, c.k, c.s, c.p, got, c.want)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	for _, m := range testModels(slowToBuild) {
		a, b := mustBuild(t, m.Name), mustBuild(t, m.Name)
		if err := onnx.CompareGraphs(a, b); err != nil {
			t.Errorf("%s: two builds differ: %v", m.Name, err)
		}
		if !strings.HasPrefix(m.Name, "tiny-") {
			continue
		}
		// Builds are independent: changing one does not change the other.
		a.Constants[a.Nodes[0].Inputs[1]].F[0]++
		a.Nodes[0].Inputs[0] = "changed"
		c := mustBuild(t, m.Name)
		if err := onnx.CompareGraphs(b, c); err != nil {
			t.Errorf("%s: builds share state: %v", m.Name, err)
		}
	}
}

func TestUnknownModel(t *testing.T) {
	_, err := Build("resnet1000")
	if err == nil || !strings.Contains(err.Error(), "resnet1000") || !strings.Contains(err.Error(), "resnet18") || !strings.Contains(err.Error(), "tiny-inception") {
		t.Fatalf("err = %v, want an error naming the model and listing the available ones", err)
	}
	if _, err := Lookup("nope"); err == nil {
		t.Error("Lookup of an unknown model succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("Input of an unknown model did not panic")
		}
	}()
	Input("nope", 1)
}

func TestListIsACopy(t *testing.T) {
	l := List()
	l[0].InputShape[2] = 1
	l[0].Name = "x"
	if info, err := Lookup(List()[0].Name); err != nil || info.InputShape[2] == 1 {
		t.Errorf("List exposes internal state: %v %v", info, err)
	}
	if len(Names()) != len(l) {
		t.Error("Names and List disagree")
	}
}

func TestInput(t *testing.T) {
	for _, m := range List() {
		a, b, c := Input(m.Name, 7), Input(m.Name, 7), Input(m.Name, 8)
		if !a.Shape.Equal(m.InputShape) || a.DType != tensor.Float32 {
			t.Errorf("%s: input %v, want float32 %v", m.Name, a, m.InputShape)
		}
		if err := tensor.AllClose(a, b, 0, 0); err != nil {
			t.Errorf("%s: same seed, different inputs: %v", m.Name, err)
		}
		if tensor.AllClose(a, c, 0, 0) == nil {
			t.Errorf("%s: different seeds, same input", m.Name)
		}
		mean, std := stats(a)
		if math.Abs(mean) > 0.05 || math.Abs(std-1) > 0.05 {
			t.Errorf("%s: input mean %g std %g, want standard normal", m.Name, mean, std)
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	for _, m := range testModels(slowToBuild) {
		t.Run(m.Name, func(t *testing.T) {
			g := mustBuild(t, m.Name)
			b, err := onnx.Encode(g)
			if err != nil {
				t.Fatal(err)
			}
			back, err := onnx.Decode(b, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := onnx.CompareGraphs(g, back); err != nil {
				t.Fatalf("export → load changed the model: %v", err)
			}
		})
	}
}

func stats(t *tensor.Tensor) (mean, std float64) {
	for _, v := range t.F {
		mean += float64(v)
	}
	mean /= float64(len(t.F))
	for _, v := range t.F {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(t.F)))
}

func run(t *testing.T, g *graph.Graph, in *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	s, err := engine.New(g, engine.Options{Threads: 2})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	defer s.Close()
	out, err := s.Run(in)
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	if len(out) != 1 {
		t.Fatalf("%d outputs, want 1", len(out))
	}
	return out[0]
}

// TestNumerics runs each model with the engine, directly and after an ONNX
// export and reload: the outputs must be bit-identical, finite and spread
// out (activations neither exploded nor vanished). When ONNX Runtime is
// available the exported file must run there too and agree with the engine.
func TestNumerics(t *testing.T) {
	ortErr := ortref.Available()
	if ortErr != nil {
		if os.Getenv("IOP_REQUIRE_ORT") == "1" {
			t.Fatalf("ONNX Runtime required (IOP_REQUIRE_ORT=1) but unavailable: %v", ortErr)
		}
		t.Logf("ONNX Runtime comparison skipped: %v", ortErr)
	}
	for _, m := range testModels(slowToRun) {
		t.Run(m.Name, func(t *testing.T) {
			g := mustBuild(t, m.Name)
			in := Input(m.Name, 1)
			direct := run(t, g, in)

			path := filepath.Join(t.TempDir(), m.Name+".onnx")
			if err := onnx.SaveFile(g, path); err != nil {
				t.Fatal(err)
			}
			loaded, err := onnx.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			viaONNX := run(t, loaded, in)
			if err := tensor.AllClose(viaONNX, direct, 0, 0); err != nil {
				t.Errorf("exported model gives different output: %v", err)
			}

			mean, std := stats(direct)
			for i, v := range direct.F {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logit %d is %g", i, v)
				}
			}
			t.Logf("logits mean %.3g std %.3g", mean, std)
			if std < 0.1 || std > 100 {
				t.Errorf("logit std %g: activations vanished or exploded", std)
			}
			// Different inputs must give different logits (the net is not
			// dead).
			other := run(t, g, Input(m.Name, 2))
			if tensor.AllClose(other, direct, 1e-3, 1e-3*std) == nil {
				t.Error("two different inputs give the same logits")
			}

			if ortErr == nil {
				ref, err := ortref.Run(context.Background(), path, []*tensor.Tensor{in}, 2)
				if err != nil {
					t.Fatalf("ONNX Runtime: %v", err)
				}
				if err := tensor.AllClose(direct, ref[0], 1e-3, 1e-4*std); err != nil {
					t.Errorf("engine vs ONNX Runtime: %v", err)
				}
			}
		})
	}
}

// TestExportOptimized exports graphs after the engine's passes: with fusion
// disabled the folded graph (with inferred value types) exports and reloads
// unchanged; with fusion the IR-only attributes make Encode fail, naming the
// node.
func TestExportOptimized(t *testing.T) {
	g := mustBuild(t, "tiny-resnet")
	s, err := engine.New(g, engine.Options{Threads: 1, NoFuse: true})
	if err != nil {
		t.Fatal(err)
	}
	opt := s.Graph()
	s.Close()
	b, err := onnx.Encode(opt)
	if err != nil {
		t.Fatalf("exporting the unfused optimized graph: %v", err)
	}
	back, err := onnx.Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := onnx.CompareGraphs(opt, back); err != nil {
		t.Fatal(err)
	}

	s, err = engine.New(g, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fused := false
	for _, n := range s.Graph().Nodes {
		fused = fused || n.Has(graph.FusedActivation)
	}
	if !fused {
		t.Skip("the engine fused nothing; nothing to reject")
	}
	if _, err := onnx.Encode(s.Graph()); err == nil || !strings.Contains(err.Error(), graph.FusedActivation) {
		t.Fatalf("exporting a fused graph: err = %v, want a fused-attribute error", err)
	}
}
