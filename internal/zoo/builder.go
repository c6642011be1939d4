package zoo

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// Opset is the default-domain opset the zoo models are written against (the
// one torch.onnx.export uses by default).
const Opset = 17

// Names of the graph input and output of every zoo model (what torchvision
// models are usually exported with).
const (
	InputName  = "input"
	OutputName = "output"
)

// builder appends nodes and seeded weights to a graph while tracking the
// static shape of every value it creates (NCHW, batch 1), so model code only
// states layer hyper-parameters.
//
// Names follow torchvision's module paths: a layer called "layer1.0.conv1"
// produces a node and a value of that name and the initializers
// "layer1.0.conv1.weight" and ".bias". Parameter-free nodes (Relu, Clip) are
// named after their input with a suffix.
type builder struct {
	g      *graph.Graph
	rng    *rand.Rand
	shapes map[string]tensor.Shape
	// residualGamma scales the BN gamma of the last BN in a residual branch
	// (see bnResidual).
	residualGamma float64
}

// newBuilder starts a graph with one float32 input of the given shape. The
// weights are drawn from a PCG stream seeded by the model name, so a model
// is identical on every build.
func newBuilder(name string, input tensor.Shape) *builder {
	h := fnv.New64a()
	h.Write([]byte(name))
	g := graph.New(name, Opset)
	g.Inputs = []graph.ValueInfo{{Name: InputName, DType: tensor.Float32, Shape: input.Clone()}}
	return &builder{
		g:             g,
		rng:           rand.New(rand.NewPCG(h.Sum64(), 0x10b1e5eed)),
		shapes:        map[string]tensor.Shape{InputName: input.Clone()},
		residualGamma: 0.5,
	}
}

// shape returns the tracked shape of value x.
func (b *builder) shape(x string) tensor.Shape {
	s, ok := b.shapes[x]
	if !ok {
		panic(fmt.Sprintf("zoo: value %q is not defined", x))
	}
	return s
}

// channels returns the channel count (axis 1) of value x.
func (b *builder) channels(x string) int { return b.shape(x)[1] }

// node appends a node producing the single value name with shape out.
func (b *builder) node(op, name string, inputs []string, out tensor.Shape) *graph.Node {
	if _, dup := b.shapes[name]; dup {
		panic(fmt.Sprintf("zoo: value %q is defined twice", name))
	}
	n := &graph.Node{Name: name, Op: op, Inputs: inputs, Outputs: []string{name}, Attrs: map[string]graph.Attr{}}
	b.g.Nodes = append(b.g.Nodes, n)
	b.shapes[name] = out
	return n
}

// constant adds an initializer.
func (b *builder) constant(name string, t *tensor.Tensor) string {
	if _, dup := b.g.Constants[name]; dup {
		panic(fmt.Sprintf("zoo: constant %q is defined twice", name))
	}
	b.g.Constants[name] = t
	return name
}

// normal returns a float32 tensor of N(mean, std²) values.
func (b *builder) normal(shape tensor.Shape, mean, std float64) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = float32(mean + std*b.rng.NormFloat64())
	}
	return t
}

// uniform returns a float32 tensor of U[lo, hi) values.
func (b *builder) uniform(shape tensor.Shape, lo, hi float64) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = float32(lo + (hi-lo)*b.rng.Float64())
	}
	return t
}

// heStd is the standard deviation of Kaiming (He) normal initialization for
// a layer with fanIn inputs per output, followed by a ReLU: it keeps the
// second moment of the activations constant from layer to layer.
func heStd(fanIn int) float64 { return math.Sqrt(2 / float64(fanIn)) }

// biasStd is the spread of the small random biases.
const biasStd = 0.01

// convOut is the output size of a convolution or pooling window along one
// axis (PyTorch's rule, including ceil_mode's "last window must start inside
// the input or left padding").
func convOut(in, k, stride, pad int, ceil bool) int {
	num := in + 2*pad - k
	if !ceil {
		return num/stride + 1
	}
	out := (num+stride-1)/stride + 1
	if (out-1)*stride >= in+pad {
		out--
	}
	return out
}

// conv adds a Conv (square kernel k, symmetric padding pad) with out output
// channels, He-normal weights and, if bias, a small random bias.
func (b *builder) conv(name, x string, out, k, stride, pad, groups int, bias bool) string {
	s := b.shape(x)
	in := s[1]
	if in%groups != 0 || out%groups != 0 {
		panic(fmt.Sprintf("zoo: %s: %d→%d channels do not divide into %d groups", name, in, out, groups))
	}
	fanIn := in / groups * k * k
	w := b.constant(name+".weight", b.normal(tensor.Shape{out, in / groups, k, k}, 0, heStd(fanIn)))
	inputs := []string{x, w}
	if bias {
		inputs = append(inputs, b.constant(name+".bias", b.normal(tensor.Shape{out}, 0, biasStd)))
	}
	oh, ow := convOut(s[2], k, stride, pad, false), convOut(s[3], k, stride, pad, false)
	n := b.node("Conv", name, inputs, tensor.Shape{s[0], out, oh, ow})
	n.SetInts("dilations", 1, 1)
	n.SetInt("group", int64(groups))
	n.SetInts("kernel_shape", k, k)
	n.SetInts("pads", pad, pad, pad, pad)
	n.SetInts("strides", stride, stride)
	return name
}

// bn adds an inference BatchNormalization with gamma near 1, beta near 0,
// a small random running mean and a running variance near 1 (so folding it
// into the preceding conv is a real transformation), like torch exports it.
func (b *builder) bn(name, x string, eps float32) string {
	return b.bnGamma(name, x, eps, 1)
}

// bnResidual is bn for the last normalization of a residual branch: its
// gamma is scaled by b.residualGamma. Trained ResNets end their branches with
// small gammas (torchvision even offers zero_init_residual); without this
// the activations of a random deep ResNet double in variance at every block.
func (b *builder) bnResidual(name, x string, eps float32) string {
	return b.bnGamma(name, x, eps, b.residualGamma)
}

func (b *builder) bnGamma(name, x string, eps float32, gammaScale float64) string {
	c := b.channels(x)
	gamma := b.uniform(tensor.Shape{c}, 0.8*gammaScale, 1.2*gammaScale)
	beta := b.normal(tensor.Shape{c}, 0, 0.05)
	mean := b.normal(tensor.Shape{c}, 0, 0.1)
	variance := b.uniform(tensor.Shape{c}, 0.8, 1.25)
	inputs := []string{x,
		b.constant(name+".weight", gamma),
		b.constant(name+".bias", beta),
		b.constant(name+".running_mean", mean),
		b.constant(name+".running_var", variance),
	}
	n := b.node("BatchNormalization", name, inputs, b.shape(x).Clone())
	n.SetFloat("epsilon", eps)
	n.SetFloat("momentum", 0.9) // torch's momentum 0.1, in ONNX's convention
	return name
}

// relu adds a Relu named after its input.
func (b *builder) relu(x string) string {
	return b.reluNamed(x+".relu", x)
}

// reluNamed adds a Relu with an explicit name.
func (b *builder) reluNamed(name, x string) string {
	b.node("Relu", name, []string{x}, b.shape(x).Clone())
	return name
}

// relu6 adds ReLU6 the way torch exports it at opset 11 and later: Clip with
// scalar min and max inputs (shared initializers).
func (b *builder) relu6(x string) string {
	if _, ok := b.g.Constants["relu6.min"]; !ok {
		b.constant("relu6.min", tensor.FromFloat32(tensor.Shape{}, []float32{0}))
		b.constant("relu6.max", tensor.FromFloat32(tensor.Shape{}, []float32{6}))
	}
	name := x + ".relu6"
	b.node("Clip", name, []string{x, "relu6.min", "relu6.max"}, b.shape(x).Clone())
	return name
}

// maxPool adds a MaxPool with a square window.
func (b *builder) maxPool(name, x string, k, stride, pad int, ceil bool) string {
	b.pool("MaxPool", name, x, k, stride, pad, ceil)
	return name
}

// avgPool adds an AveragePool with a square window (count_include_pad=1 as
// torch exports nn.AvgPool2d's default).
func (b *builder) avgPool(name, x string, k, stride, pad int, ceil bool) string {
	b.pool("AveragePool", name, x, k, stride, pad, ceil).SetInt("count_include_pad", 1)
	return name
}

func (b *builder) pool(op, name, x string, k, stride, pad int, ceil bool) *graph.Node {
	s := b.shape(x)
	oh, ow := convOut(s[2], k, stride, pad, ceil), convOut(s[3], k, stride, pad, ceil)
	n := b.node(op, name, []string{x}, tensor.Shape{s[0], s[1], oh, ow})
	c := 0
	if ceil {
		c = 1
	}
	n.SetInt("ceil_mode", int64(c))
	n.SetInts("kernel_shape", k, k)
	n.SetInts("pads", pad, pad, pad, pad)
	n.SetInts("strides", stride, stride)
	return n
}

// adaptiveAvgPool adds what torch exports for nn.AdaptiveAvgPool2d(out):
// GlobalAveragePool for 1×1, otherwise an AveragePool whose kernel and stride
// are input/output (the input must divide evenly, as torch requires).
func (b *builder) adaptiveAvgPool(name, x string, out int) string {
	s := b.shape(x)
	if out == 1 {
		b.node("GlobalAveragePool", name, []string{x}, tensor.Shape{s[0], s[1], 1, 1})
		return name
	}
	if s[2]%out != 0 || s[3]%out != 0 || s[2] != s[3] {
		panic(fmt.Sprintf("zoo: %s: adaptive pooling %v to %d×%d is not a plain AveragePool", name, s, out, out))
	}
	k := s[2] / out
	n := b.node("AveragePool", name, []string{x}, tensor.Shape{s[0], s[1], out, out})
	n.SetInts("kernel_shape", k, k) // torch writes no pads or ceil_mode here
	n.SetInts("strides", k, k)
	return name
}

// lrn adds a local response normalization across channels.
func (b *builder) lrn(name, x string, size int, alpha, beta, bias float32) string {
	n := b.node("LRN", name, []string{x}, b.shape(x).Clone())
	n.SetFloat("alpha", alpha)
	n.SetFloat("beta", beta)
	n.SetFloat("bias", bias)
	n.SetInt("size", int64(size))
	return name
}

// add adds an elementwise Add of two same-shape values.
func (b *builder) add(name, x, y string) string {
	if !b.shape(x).Equal(b.shape(y)) {
		panic(fmt.Sprintf("zoo: %s: adding %v and %v", name, b.shape(x), b.shape(y)))
	}
	b.node("Add", name, []string{x, y}, b.shape(x).Clone())
	return name
}

// concat concatenates values along the channel axis.
func (b *builder) concat(name string, xs ...string) string {
	out := b.shape(xs[0]).Clone()
	out[1] = 0
	for _, x := range xs {
		s := b.shape(x)
		if s[0] != out[0] || s[2] != out[2] || s[3] != out[3] {
			panic(fmt.Sprintf("zoo: %s: concatenating %v with %v", name, b.shape(xs[0]), s))
		}
		out[1] += s[1]
	}
	n := b.node("Concat", name, append([]string(nil), xs...), out)
	n.SetInt("axis", 1)
	return name
}

// flatten adds Flatten(axis=1), what torch.flatten(x, 1) exports as.
func (b *builder) flatten(name, x string) string {
	s := b.shape(x)
	n := b.node("Flatten", name, []string{x}, tensor.Shape{s[0], s.Numel() / s[0]})
	n.SetInt("axis", 1)
	return name
}

// reshape2d adds what x.view(-1, features) exports as: Reshape with a
// constant int64 shape [-1, features].
func (b *builder) reshape2d(name, x string) string {
	s := b.shape(x)
	f := s.Numel() / s[0]
	shape := b.constant(name+".shape", tensor.FromInt64(tensor.Shape{2}, []int64{-1, int64(f)}))
	b.node("Reshape", name, []string{x, shape}, tensor.Shape{s[0], f})
	return name
}

// linear adds what nn.Linear exports as: Gemm(x, W[out,in], b) with
// transB=1, He-normal weights and a small random bias.
func (b *builder) linear(name, x string, out int) string {
	s := b.shape(x)
	if len(s) != 2 {
		panic(fmt.Sprintf("zoo: %s: Gemm input %v is not 2-D", name, s))
	}
	w := b.constant(name+".weight", b.normal(tensor.Shape{out, s[1]}, 0, heStd(s[1])))
	bias := b.constant(name+".bias", b.normal(tensor.Shape{out}, 0, biasStd))
	n := b.node("Gemm", name, []string{x, w, bias}, tensor.Shape{s[0], out})
	n.SetFloat("alpha", 1)
	n.SetFloat("beta", 1)
	n.SetInt("transB", 1)
	return name
}

// finish renames the last value to the graph output and returns the graph.
func (b *builder) finish(last string) *graph.Graph {
	s := b.shape(last)
	b.g.Rename(last, OutputName)
	for _, n := range b.g.Nodes {
		for i, o := range n.Outputs {
			if o == last {
				n.Outputs[i] = OutputName
			}
		}
	}
	b.g.Outputs = []graph.ValueInfo{{Name: OutputName, DType: tensor.Float32, Shape: s.Clone()}}
	return b.g
}
