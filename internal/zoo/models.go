package zoo

import (
	"fmt"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// Standard input shapes.
var (
	imagenet224 = tensor.Shape{1, 3, 224, 224}
	imagenet227 = tensor.Shape{1, 3, 227, 227}
	tiny32      = tensor.Shape{1, 3, 32, 32}
)

// Output classes of the real models (ImageNet) and of the tiny test models.
const (
	imagenetClasses = 1000
	tinyClasses     = 10
)

// BatchNorm epsilons used by torchvision.
const (
	bnEps        = 1e-5 // nn.BatchNorm2d default
	googlenetEps = 1e-3 // torchvision BasicConv2d in GoogLeNet
)

// ---------------------------------------------------------------- AlexNet

// alexnet is the original network of Krizhevsky, Sutskever and Hinton
// (2012) written for one device: the two-GPU split survives as group=2 in
// conv2, conv4 and conv5; LRN (n=5, α=1e-4, β=0.75, k=2) follows conv1 and
// conv2; max pooling is overlapping (3×3, stride 2). The input is 227×227,
// the size at which the paper's layer sizes (55, 27, 13, 6) work out without
// padding conv1. The classifier flattens with x.view(-1, 9216), exported as
// Reshape. ONNX's LRN divides α by the window size, like Caffe's; α is the
// paper's value as an ONNX attribute.
func alexnet() *graph.Graph {
	b := newBuilder("alexnet", imagenet227)
	x := b.relu(b.conv("conv1", InputName, 96, 11, 4, 0, 1, true))
	x = b.maxPool("pool1", b.lrn("norm1", x, 5, 1e-4, 0.75, 2), 3, 2, 0, false)
	x = b.relu(b.conv("conv2", x, 256, 5, 1, 2, 2, true))
	x = b.maxPool("pool2", b.lrn("norm2", x, 5, 1e-4, 0.75, 2), 3, 2, 0, false)
	x = b.relu(b.conv("conv3", x, 384, 3, 1, 1, 1, true))
	x = b.relu(b.conv("conv4", x, 384, 3, 1, 1, 2, true))
	x = b.relu(b.conv("conv5", x, 256, 3, 1, 1, 2, true))
	x = b.maxPool("pool5", x, 3, 2, 0, false)
	x = b.reshape2d("flatten", x)
	x = b.relu(b.linear("fc6", x, 4096))
	x = b.relu(b.linear("fc7", x, 4096))
	return b.finish(b.linear("fc8", x, imagenetClasses))
}

// tinyAlexnet keeps AlexNet's ingredients (LRN, grouped convs, overlapping
// pooling, Reshape, three Gemms) at CIFAR size.
func tinyAlexnet() *graph.Graph {
	b := newBuilder("tiny-alexnet", tiny32)
	x := b.relu(b.conv("conv1", InputName, 16, 5, 1, 2, 1, true))
	x = b.maxPool("pool1", b.lrn("norm1", x, 5, 1e-4, 0.75, 2), 3, 2, 0, false)
	x = b.relu(b.conv("conv2", x, 32, 3, 1, 1, 2, true))
	x = b.maxPool("pool2", b.lrn("norm2", x, 5, 1e-4, 0.75, 2), 3, 2, 0, false)
	x = b.relu(b.conv("conv3", x, 48, 3, 1, 1, 1, true))
	x = b.relu(b.conv("conv4", x, 48, 3, 1, 1, 2, true))
	x = b.relu(b.conv("conv5", x, 32, 3, 1, 1, 2, true))
	x = b.maxPool("pool5", x, 3, 2, 0, false)
	x = b.reshape2d("flatten", x)
	x = b.relu(b.linear("fc6", x, 64))
	x = b.relu(b.linear("fc7", x, 64))
	return b.finish(b.linear("fc8", x, tinyClasses))
}

// ---------------------------------------------------------------- VGG

// vggFeatures adds torchvision's VGG feature extractor for cfg (channel
// counts, 0 for a 2×2 max pool) with modules numbered like nn.Sequential.
func vggFeatures(b *builder, x string, cfg []int) string {
	i := 0
	for _, c := range cfg {
		if c == 0 {
			x = b.maxPool(fmt.Sprintf("features.%d", i), x, 2, 2, 0, false)
			i++
			continue
		}
		conv := b.conv(fmt.Sprintf("features.%d", i), x, c, 3, 1, 1, 1, true)
		x = b.reluNamed(fmt.Sprintf("features.%d", i+1), conv)
		i += 2
	}
	return x
}

// vgg16 is torchvision's vgg16 (configuration D, no batch norm).
func vgg16() *graph.Graph {
	b := newBuilder("vgg16", imagenet224)
	x := vggFeatures(b, InputName, []int{64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0})
	x = b.adaptiveAvgPool("avgpool", x, 7)
	x = b.flatten("flatten", x)
	x = b.reluNamed("classifier.1", b.linear("classifier.0", x, 4096))
	x = b.reluNamed("classifier.4", b.linear("classifier.3", x, 4096))
	return b.finish(b.linear("classifier.6", x, imagenetClasses))
}

// tinyVGG is a plain chain: VGG-style conv blocks, an adaptive average pool,
// Reshape and three Gemms (consecutive Gemms are the textbook IOP pair).
func tinyVGG() *graph.Graph {
	b := newBuilder("tiny-vgg", tiny32)
	x := vggFeatures(b, InputName, []int{8, 8, 0, 16, 16, 0})
	x = b.adaptiveAvgPool("avgpool", x, 4)
	x = b.reshape2d("flatten", x)
	x = b.reluNamed("classifier.1", b.linear("classifier.0", x, 64))
	x = b.reluNamed("classifier.3", b.linear("classifier.2", x, 32))
	return b.finish(b.linear("classifier.4", x, tinyClasses))
}

// ---------------------------------------------------------------- ResNet

// basicBlock is torchvision's BasicBlock (expansion 1).
func basicBlock(b *builder, name, x string, planes, stride int) string {
	in := b.channels(x)
	y := b.relu(b.bn(name+".bn1", b.conv(name+".conv1", x, planes, 3, stride, 1, 1, false), bnEps))
	y = b.bnResidual(name+".bn2", b.conv(name+".conv2", y, planes, 3, 1, 1, 1, false), bnEps)
	short := x
	if stride != 1 || in != planes {
		short = b.bn(name+".downsample.1", b.conv(name+".downsample.0", x, planes, 1, stride, 0, 1, false), bnEps)
	}
	return b.reluNamed(name+".relu", b.add(name+".add", y, short))
}

// bottleneck is torchvision's Bottleneck (ResNet v1.5: the stride is on the
// 3×3 conv; expansion 4).
func bottleneck(b *builder, name, x string, planes, stride int) string {
	in, out := b.channels(x), planes*4
	y := b.relu(b.bn(name+".bn1", b.conv(name+".conv1", x, planes, 1, 1, 0, 1, false), bnEps))
	y = b.relu(b.bn(name+".bn2", b.conv(name+".conv2", y, planes, 3, stride, 1, 1, false), bnEps))
	y = b.bnResidual(name+".bn3", b.conv(name+".conv3", y, out, 1, 1, 0, 1, false), bnEps)
	short := x
	if stride != 1 || in != out {
		short = b.bn(name+".downsample.1", b.conv(name+".downsample.0", x, out, 1, stride, 0, 1, false), bnEps)
	}
	return b.reluNamed(name+".relu", b.add(name+".add", y, short))
}

type blockFunc func(b *builder, name, x string, planes, stride int) string

// resnet is torchvision's ResNet: 7×7/2 stem, 3×3/2 max pool, four stages of
// blocks (widths 64…512, stride 2 from the second), global average pool,
// flatten, fc.
func resnet(name string, block blockFunc, layers [4]int) *graph.Graph {
	b := newBuilder(name, imagenet224)
	x := b.relu(b.bn("bn1", b.conv("conv1", InputName, 64, 7, 2, 3, 1, false), bnEps))
	x = b.maxPool("maxpool", x, 3, 2, 1, false)
	for stage, n := range layers {
		planes := 64 << stage
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			x = block(b, fmt.Sprintf("layer%d.%d", stage+1, i), x, planes, stride)
		}
	}
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("fc", x, imagenetClasses))
}

func resnet18() *graph.Graph { return resnet("resnet18", basicBlock, [4]int{2, 2, 2, 2}) }
func resnet50() *graph.Graph { return resnet("resnet50", bottleneck, [4]int{3, 4, 6, 3}) }

// tinyResnet has a 3×3 stem and three stages of one block each: an identity
// basic block, a strided basic block with a downsample, and a strided
// bottleneck.
func tinyResnet() *graph.Graph {
	b := newBuilder("tiny-resnet", tiny32)
	x := b.relu(b.bn("bn1", b.conv("conv1", InputName, 8, 3, 1, 1, 1, false), bnEps))
	x = basicBlock(b, "layer1.0", x, 8, 1)
	x = basicBlock(b, "layer2.0", x, 16, 2)
	x = bottleneck(b, "layer3.0", x, 8, 2)
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("fc", x, tinyClasses))
}

// ---------------------------------------------------------------- MobileNetV2

// convBNReLU6 is torchvision's Conv2dNormActivation with ReLU6 (module
// indices .0 conv, .1 BN).
func convBNReLU6(b *builder, name, x string, out, k, stride, groups int) string {
	return b.relu6(b.bn(name+".1", b.conv(name+".0", x, out, k, stride, (k-1)/2, groups, false), bnEps))
}

// invertedResidual is torchvision's MobileNetV2 InvertedResidual: optional
// 1×1 expansion, 3×3 depthwise, linear 1×1 projection, identity shortcut when
// the shape is kept.
func invertedResidual(b *builder, name, x string, out, stride, expand int) string {
	in := b.channels(x)
	hidden := in * expand
	y, i := x, 0
	if expand != 1 {
		y = convBNReLU6(b, fmt.Sprintf("%s.conv.%d", name, i), y, hidden, 1, 1, 1)
		i++
	}
	y = convBNReLU6(b, fmt.Sprintf("%s.conv.%d", name, i), y, hidden, 3, stride, hidden)
	y = b.conv(fmt.Sprintf("%s.conv.%d", name, i+1), y, out, 1, 1, 0, 1, false)
	if stride == 1 && in == out {
		y = b.bnResidual(fmt.Sprintf("%s.conv.%d", name, i+2), y, bnEps)
		return b.add(name+".add", x, y)
	}
	return b.bn(fmt.Sprintf("%s.conv.%d", name, i+2), y, bnEps)
}

// mobilenetV2Body adds the stem, the inverted residual stages (t, c, n, s)
// and the last 1×1 conv, numbering modules like torchvision's features.
func mobilenetV2Body(b *builder, stem, stemStride int, settings [][4]int, last int) string {
	x := convBNReLU6(b, "features.0", InputName, stem, 3, stemStride, 1)
	idx := 1
	for _, s := range settings {
		t, c, n, stride := s[0], s[1], s[2], s[3]
		for i := 0; i < n; i++ {
			st := 1
			if i == 0 {
				st = stride
			}
			x = invertedResidual(b, fmt.Sprintf("features.%d", idx), x, c, st, t)
			idx++
		}
	}
	return convBNReLU6(b, fmt.Sprintf("features.%d", idx), x, last, 1, 1, 1)
}

// mobilenetV2 is torchvision's mobilenet_v2 (width 1.0).
func mobilenetV2() *graph.Graph {
	b := newBuilder("mobilenetv2", imagenet224)
	x := mobilenetV2Body(b, 32, 2, [][4]int{
		{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
	}, 1280)
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("classifier.1", x, imagenetClasses))
}

// tinyMobilenet has MobileNetV2's structure with few channels: a block
// without expansion, strided and identity inverted residuals.
func tinyMobilenet() *graph.Graph {
	b := newBuilder("tiny-mobilenet", tiny32)
	x := mobilenetV2Body(b, 8, 1, [][4]int{{1, 8, 1, 1}, {6, 12, 2, 2}, {6, 16, 2, 2}}, 64)
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("classifier.1", x, tinyClasses))
}

// ---------------------------------------------------------------- SqueezeNet

// fire is SqueezeNet's Fire module: 1×1 squeeze, then 1×1 and 3×3 expands
// concatenated.
func fire(b *builder, name, x string, squeeze, e1, e3 int) string {
	s := b.reluNamed(name+".squeeze_activation", b.conv(name+".squeeze", x, squeeze, 1, 1, 0, 1, true))
	a := b.reluNamed(name+".expand1x1_activation", b.conv(name+".expand1x1", s, e1, 1, 1, 0, 1, true))
	c := b.reluNamed(name+".expand3x3_activation", b.conv(name+".expand3x3", s, e3, 3, 1, 1, 1, true))
	return b.concat(name+".cat", a, c)
}

// squeezenet is torchvision's squeezenet1_1.
func squeezenet() *graph.Graph {
	b := newBuilder("squeezenet", imagenet224)
	x := b.reluNamed("features.1", b.conv("features.0", InputName, 64, 3, 2, 0, 1, true))
	x = b.maxPool("features.2", x, 3, 2, 0, true)
	x = fire(b, "features.3", x, 16, 64, 64)
	x = fire(b, "features.4", x, 16, 64, 64)
	x = b.maxPool("features.5", x, 3, 2, 0, true)
	x = fire(b, "features.6", x, 32, 128, 128)
	x = fire(b, "features.7", x, 32, 128, 128)
	x = b.maxPool("features.8", x, 3, 2, 0, true)
	x = fire(b, "features.9", x, 48, 192, 192)
	x = fire(b, "features.10", x, 48, 192, 192)
	x = fire(b, "features.11", x, 64, 256, 256)
	x = fire(b, "features.12", x, 64, 256, 256)
	x = b.reluNamed("classifier.2", b.conv("classifier.1", x, imagenetClasses, 1, 1, 0, 1, true))
	x = b.adaptiveAvgPool("classifier.3", x, 1)
	return b.finish(b.flatten("flatten", x))
}

// tinySqueezenet is SqueezeNet 1.1 in miniature: Fire modules, ceil-mode
// pooling and a conv classifier.
func tinySqueezenet() *graph.Graph {
	b := newBuilder("tiny-squeezenet", tiny32)
	x := b.reluNamed("features.1", b.conv("features.0", InputName, 16, 3, 2, 0, 1, true))
	x = b.maxPool("features.2", x, 3, 2, 0, true)
	x = fire(b, "features.3", x, 4, 8, 8)
	x = fire(b, "features.4", x, 4, 8, 8)
	x = b.reluNamed("classifier.2", b.conv("classifier.1", x, tinyClasses, 1, 1, 0, 1, true))
	x = b.adaptiveAvgPool("classifier.3", x, 1)
	return b.finish(b.flatten("flatten", x))
}

// ---------------------------------------------------------------- GoogLeNet

// basicConv is torchvision GoogLeNet's BasicConv2d: conv without bias, BN
// (eps 1e-3), ReLU.
func basicConv(b *builder, name, x string, out, k, stride, pad int) string {
	return b.relu(b.bn(name+".bn", b.conv(name+".conv", x, out, k, stride, pad, 1, false), googlenetEps))
}

// inception is torchvision's Inception block: four branches concatenated.
// Like torchvision (for compatibility with its weights) the "5×5" branch uses
// a 3×3 kernel.
func inception(b *builder, name, x string, c1, c3r, c3, c5r, c5, pp int) string {
	b1 := basicConv(b, name+".branch1", x, c1, 1, 1, 0)
	b2 := basicConv(b, name+".branch2.0", x, c3r, 1, 1, 0)
	b2 = basicConv(b, name+".branch2.1", b2, c3, 3, 1, 1)
	b3 := basicConv(b, name+".branch3.0", x, c5r, 1, 1, 0)
	b3 = basicConv(b, name+".branch3.1", b3, c5, 3, 1, 1)
	b4 := b.maxPool(name+".branch4.0", x, 3, 1, 1, true)
	b4 = basicConv(b, name+".branch4.1", b4, pp, 1, 1, 0)
	return b.concat(name+".cat", b1, b2, b3, b4)
}

// googlenet is torchvision's googlenet (Inception v1 with batch norm) as
// exported in eval mode: no auxiliary heads, no input transform.
func googlenet() *graph.Graph {
	b := newBuilder("googlenet", imagenet224)
	x := basicConv(b, "conv1", InputName, 64, 7, 2, 3)
	x = b.maxPool("maxpool1", x, 3, 2, 0, true)
	x = basicConv(b, "conv2", x, 64, 1, 1, 0)
	x = basicConv(b, "conv3", x, 192, 3, 1, 1)
	x = b.maxPool("maxpool2", x, 3, 2, 0, true)
	x = inception(b, "inception3a", x, 64, 96, 128, 16, 32, 32)
	x = inception(b, "inception3b", x, 128, 128, 192, 32, 96, 64)
	x = b.maxPool("maxpool3", x, 3, 2, 0, true)
	x = inception(b, "inception4a", x, 192, 96, 208, 16, 48, 64)
	x = inception(b, "inception4b", x, 160, 112, 224, 24, 64, 64)
	x = inception(b, "inception4c", x, 128, 128, 256, 24, 64, 64)
	x = inception(b, "inception4d", x, 112, 144, 288, 32, 64, 64)
	x = inception(b, "inception4e", x, 256, 160, 320, 32, 128, 128)
	x = b.maxPool("maxpool4", x, 2, 2, 0, true)
	x = inception(b, "inception5a", x, 256, 160, 320, 32, 128, 128)
	x = inception(b, "inception5b", x, 384, 192, 384, 48, 128, 128)
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("fc", x, imagenetClasses))
}

// tinyInception is a stem and two Inception blocks at CIFAR size.
func tinyInception() *graph.Graph {
	b := newBuilder("tiny-inception", tiny32)
	x := basicConv(b, "conv1", InputName, 16, 3, 1, 1)
	x = b.maxPool("maxpool1", x, 3, 2, 0, true)
	x = inception(b, "inception3a", x, 8, 8, 12, 4, 6, 6)
	x = inception(b, "inception3b", x, 12, 8, 16, 4, 8, 8)
	x = b.maxPool("maxpool2", x, 2, 2, 0, true)
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("fc", x, tinyClasses))
}

// ---------------------------------------------------------------- DenseNet

// denseBlock is torchvision's _DenseBlock: every layer reads the
// concatenation of the block input and all earlier layers' outputs (BN, ReLU,
// 1×1 conv to bnSize·growth, BN, ReLU, 3×3 conv to growth), and the block's
// output is the concatenation of all of them.
func denseBlock(b *builder, name, x string, layers, growth, bnSize int) string {
	feats := []string{x}
	for i := 1; i <= layers; i++ {
		l := fmt.Sprintf("%s.denselayer%d", name, i)
		in := feats[0]
		if len(feats) > 1 {
			in = b.concat(l+".cat", feats...)
		}
		y := b.relu(b.bn(l+".norm1", in, bnEps))
		y = b.conv(l+".conv1", y, bnSize*growth, 1, 1, 0, 1, false)
		y = b.relu(b.bn(l+".norm2", y, bnEps))
		y = b.conv(l+".conv2", y, growth, 3, 1, 1, 1, false)
		feats = append(feats, y)
	}
	return b.concat(name+".cat", feats...)
}

// transition is torchvision's _Transition: BN, ReLU, 1×1 conv halving the
// channels, 2×2 average pool.
func transition(b *builder, name, x string) string {
	y := b.relu(b.bn(name+".norm", x, bnEps))
	y = b.conv(name+".conv", y, b.channels(x)/2, 1, 1, 0, 1, false)
	return b.avgPool(name+".pool", y, 2, 2, 0, false)
}

// densenet builds torchvision's DenseNet family: 7×7/2 stem with max pool,
// dense blocks separated by transitions, final BN and ReLU, global average
// pool, classifier.
func densenet(name string, input tensor.Shape, tinyStem bool, init, growth, bnSize int, blocks []int, classes int) *graph.Graph {
	b := newBuilder(name, input)
	var x string
	if tinyStem {
		x = b.relu(b.bn("features.norm0", b.conv("features.conv0", InputName, init, 3, 1, 1, 1, false), bnEps))
	} else {
		x = b.relu(b.bn("features.norm0", b.conv("features.conv0", InputName, init, 7, 2, 3, 1, false), bnEps))
		x = b.maxPool("features.pool0", x, 3, 2, 1, false)
	}
	for i, n := range blocks {
		x = denseBlock(b, fmt.Sprintf("features.denseblock%d", i+1), x, n, growth, bnSize)
		if i != len(blocks)-1 {
			x = transition(b, fmt.Sprintf("features.transition%d", i+1), x)
		}
	}
	x = b.relu(b.bn("features.norm5", x, bnEps))
	x = b.flatten("flatten", b.adaptiveAvgPool("avgpool", x, 1))
	return b.finish(b.linear("classifier", x, classes))
}

func densenet121() *graph.Graph {
	return densenet("densenet121", imagenet224, false, 64, 32, 4, []int{6, 12, 24, 16}, imagenetClasses)
}

func tinyDensenet() *graph.Graph {
	return densenet("tiny-densenet", tiny32, true, 16, 8, 2, []int{3, 3}, tinyClasses)
}
