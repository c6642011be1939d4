package ortref

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/onnx/onnxpb"
	"github.com/iop-edge/iop/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// resnetBuilder assembles a ResNet-style ONNX graph with random weights.
type resnetBuilder struct {
	g   *onnxpb.GraphProto
	rng *rand.Rand
	n   int
}

func (b *resnetBuilder) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s_%d", prefix, b.n)
}

func (b *resnetBuilder) init(prefix string, shape tensor.Shape, scale, offset float32) string {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = offset + scale*float32(b.rng.NormFloat64())
	}
	name := b.name(prefix)
	b.g.Initializer = append(b.g.Initializer, onnx.TensorToProto(name, t))
	return name
}

func ints(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func (b *resnetBuilder) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := b.name(op)
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

// convBN is Conv (no bias) + BatchNormalization, optionally + Relu.
func (b *resnetBuilder) convBN(x string, cin, cout, k, stride int, relu bool) string {
	std := float32(1 / float64(cin*k*k)) // keeps activations bounded
	w := b.init("w", tensor.Shape{cout, cin, k, k}, std*2, 0)
	p := int64(k / 2)
	y := b.node("Conv", []string{x, w},
		ints("kernel_shape", int64(k), int64(k)), ints("strides", int64(stride), int64(stride)), ints("pads", p, p, p, p))
	c := tensor.Shape{cout}
	y = b.node("BatchNormalization", []string{y,
		b.init("gamma", c, 0.1, 1), b.init("beta", c, 0.1, 0), b.init("mean", c, 0.1, 0), b.init("var", c, 0, 1)})
	if relu {
		y = b.node("Relu", []string{y})
	}
	return y
}

func valueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: shape}}}}
}

// writeResNet18 writes a ResNet-18 (ImageNet shape: 1x3x224x224 -> 1x1000)
// with random weights to path, opset 13.
func writeResNet18(path string) error {
	b := &resnetBuilder{g: &onnxpb.GraphProto{Name: proto.String("resnet18_random")}, rng: rand.New(rand.NewSource(1))}
	b.g.Input = []*onnxpb.ValueInfoProto{valueInfo("input", 1, 3, 224, 224)}
	x := b.convBN("input", 3, 64, 7, 2, true)
	x = b.node("MaxPool", []string{x}, ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1))
	cin := 64
	for stage, cout := range []int{64, 128, 256, 512} {
		for blk := 0; blk < 2; blk++ {
			stride := 1
			if stage > 0 && blk == 0 {
				stride = 2
			}
			y := b.convBN(x, cin, cout, 3, stride, true)
			y = b.convBN(y, cout, cout, 3, 1, false)
			short := x
			if stride != 1 || cin != cout {
				short = b.convBN(x, cin, cout, 1, stride, false)
			}
			x = b.node("Relu", []string{b.node("Add", []string{y, short})})
			cin = cout
		}
	}
	x = b.node("GlobalAveragePool", []string{x})
	x = b.node("Flatten", []string{x})
	x = b.node("Gemm", []string{x, b.init("fc_w", tensor.Shape{1000, 512}, 0.05, 0), b.init("fc_b", tensor.Shape{1000}, 0.01, 0)},
		&onnxpb.AttributeProto{Name: proto.String("transB"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)})
	b.g.Output = []*onnxpb.ValueInfoProto{valueInfo(x, 1, 1000)}
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("iop ortref test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph:        b.g,
	}
	raw, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding ResNet-18: %w", err)
	}
	return os.WriteFile(path, raw, 0o644)
}

func randomImage() *tensor.Tensor {
	rng := rand.New(rand.NewSource(2))
	t := tensor.New(tensor.Float32, tensor.Shape{1, 3, 224, 224})
	for i := range t.F {
		t.F[i] = float32(rng.NormFloat64())
	}
	return t
}

// TestResNet18 runs a random-weight ResNet-18 through ONNX Runtime once and
// checks the output's shape; it shows a full CNN's worth of operators load
// and run. Skipped with -short.
func TestResNet18(t *testing.T) {
	if testing.Short() {
		t.Skip("ResNet-18 through ONNX Runtime skipped in -short mode")
	}
	requireORT(t)
	model := filepath.Join(t.TempDir(), "resnet18.onnx")
	if err := writeResNet18(model); err != nil {
		t.Fatal(err)
	}
	out, err := Run(context.Background(), model, []*tensor.Tensor{randomImage()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !out[0].Shape.Equal(tensor.Shape{1, 1000}) {
		t.Fatalf("got %d outputs, first %v; want one of shape [1 1000]", len(out), out[0].Shape)
	}
}

// BenchmarkResNet18 reports ONNX Runtime's median time for a random-weight
// ResNet-18 at batch 1 on 1 and 2 threads (DESIGN.md §8: about 50 and 28 ms).
// Run: go test -run XXX -bench ResNet18 -benchtime 1x ./internal/ortref
func BenchmarkResNet18(b *testing.B) {
	requireORT(b)
	model := filepath.Join(b.TempDir(), "resnet18.onnx")
	if err := writeResNet18(model); err != nil {
		b.Fatal(err)
	}
	img := []*tensor.Tensor{randomImage()}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				res, err := Bench(context.Background(), model, img, threads, 5, 30)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.MedianMS, "median-ms")
				b.ReportMetric(res.MinMS, "min-ms")
			}
		})
	}
}
