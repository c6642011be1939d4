// Package zoo builds the classic image-classification CNNs as graph IR, the
// way PyTorch/torchvision exports them to ONNX (opset 17) in eval mode: one
// float32 input "input" (NCHW, batch 1), one output "output" with the logits,
// standard ONNX operators only (Conv with a bias initializer where torchvision
// has one, BatchNormalization kept as separate nodes, Relu, Clip for ReLU6,
// MaxPool, AveragePool, GlobalAveragePool, Add, Concat, Flatten or Reshape,
// Gemm with transB=1, LRN; no Dropout), and initializers named after the
// torch module paths ("layer1.0.conv1.weight").
//
// The weights are random but deterministic: each model draws from its own
// PCG stream seeded by its name. Convolutions and linear layers get Kaiming
// (He) normal weights, biases are small, and BatchNormalization gets gamma
// near 1, beta near 0, a small running mean and a running variance near 1 —
// so folding BN into the convolution changes the numbers and is really
// tested. The last BN of each residual branch has gamma near 0.5 so the
// activations of the deep residual networks stay of order one.
//
// Besides the real models (alexnet, vgg16, resnet18, resnet50, mobilenetv2,
// squeezenet, googlenet, densenet121) there are tiny variants with the same
// structure on 32×32 inputs and 10 classes, which run in milliseconds.
package zoo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// Info describes a zoo model.
type Info struct {
	Name        string
	Description string
	// InputShape is the shape of the single input "input".
	InputShape tensor.Shape
	// Params is the number of trainable parameters counted like PyTorch
	// (conv and linear weights and biases, BN gamma and beta; BN running
	// statistics excluded).
	Params int64
}

type entry struct {
	info  Info
	build func() *graph.Graph
}

// models lists the zoo; Params are the exact counts of the built graphs
// (checked by the tests, and for the torchvision models equal to
// torchvision's own counts).
var models = []entry{
	{Info{"alexnet", "AlexNet as published (Krizhevsky 2012): LRN, grouped conv2/4/5, 227×227 input", imagenet227, 60_965_224}, alexnet},
	{Info{"vgg16", "torchvision vgg16 (configuration D, no batch norm)", imagenet224, 138_357_544}, vgg16},
	{Info{"resnet18", "torchvision resnet18", imagenet224, 11_689_512}, resnet18},
	{Info{"resnet50", "torchvision resnet50 (v1.5: stride on the 3×3 conv)", imagenet224, 25_557_032}, resnet50},
	{Info{"mobilenetv2", "torchvision mobilenet_v2, width 1.0 (ReLU6 as Clip)", imagenet224, 3_504_872}, mobilenetV2},
	{Info{"squeezenet", "torchvision squeezenet1_1 (Fire modules with Concat)", imagenet224, 1_235_496}, squeezenet},
	{Info{"googlenet", "torchvision googlenet (Inception v1 with BN, no auxiliary heads)", imagenet224, 6_624_904}, googlenet},
	{Info{"densenet121", "torchvision densenet121", imagenet224, 7_978_856}, densenet121},
	{Info{"tiny-alexnet", "AlexNet structure (LRN, grouped convs, Reshape, 3 Gemms) on 32×32", tiny32, 0}, tinyAlexnet},
	{Info{"tiny-vgg", "plain chain: VGG conv blocks, AveragePool, Reshape, 3 Gemms, on 32×32", tiny32, 0}, tinyVGG},
	{Info{"tiny-resnet", "ResNet structure (basic blocks, downsample, a bottleneck) on 32×32", tiny32, 0}, tinyResnet},
	{Info{"tiny-mobilenet", "MobileNetV2 structure (inverted residuals, depthwise, Clip) on 32×32", tiny32, 0}, tinyMobilenet},
	{Info{"tiny-squeezenet", "SqueezeNet structure (Fire modules, ceil-mode pooling) on 32×32", tiny32, 0}, tinySqueezenet},
	{Info{"tiny-inception", "GoogLeNet structure (two 4-branch Inception blocks) on 32×32", tiny32, 0}, tinyInception},
	{Info{"tiny-densenet", "DenseNet structure (two dense blocks, transition) on 32×32", tiny32, 0}, tinyDensenet},
}

var countOnce sync.Once

// countTiny fills in the parameter counts left 0 in models: the tiny models
// are cheap to build, so they are counted instead of hard-coded.
func countTiny() {
	countOnce.Do(func() {
		for i := range models {
			if models[i].info.Params == 0 {
				models[i].info.Params = ParamCount(models[i].build())
			}
		}
	})
}

// List returns the zoo's models in a fixed order (real models first).
func List() []Info {
	countTiny()
	out := make([]Info, len(models))
	for i, m := range models {
		out[i] = m.info
		out[i].InputShape = m.info.InputShape.Clone()
	}
	return out
}

// Names returns the model names in List order.
func Names() []string {
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.info.Name
	}
	return names
}

func lookup(name string) (entry, error) {
	countTiny()
	for _, m := range models {
		if m.info.Name == name {
			return m, nil
		}
	}
	return entry{}, fmt.Errorf("zoo: unknown model %q (available: %s)", name, strings.Join(Names(), ", "))
}

// Lookup returns the description of a model.
func Lookup(name string) (Info, error) {
	m, err := lookup(name)
	if err != nil {
		return Info{}, err
	}
	info := m.info
	info.InputShape = info.InputShape.Clone()
	return info, nil
}

// Build returns a freshly built model; every call returns an identical,
// independent graph.
func Build(name string) (*graph.Graph, error) {
	m, err := lookup(name)
	if err != nil {
		return nil, err
	}
	g := m.build()
	if err := g.Validate(); err != nil { // a bug in the model code
		return nil, fmt.Errorf("zoo: model %s: %w", name, err)
	}
	return g, nil
}

// Input returns a deterministic random input for model name: standard normal
// values (what a normalized image looks like to the network) of the model's
// input shape. It panics on an unknown name, like a missing test fixture.
func Input(name string, seed uint64) *tensor.Tensor {
	m, err := lookup(name)
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x1a9e7))
	t := tensor.New(tensor.Float32, m.info.InputShape)
	for i := range t.F {
		t.F[i] = float32(rng.NormFloat64())
	}
	return t
}

// ParamCount counts the trainable parameters of a graph built by this
// package: the elements of the constants named "*.weight" and "*.bias"
// (torch's parameter names; BN running statistics and shape constants are
// not parameters).
func ParamCount(g *graph.Graph) int64 {
	var n int64
	for name, t := range g.Constants {
		if strings.HasSuffix(name, ".weight") || strings.HasSuffix(name, ".bias") {
			n += int64(t.Len())
		}
	}
	return n
}
