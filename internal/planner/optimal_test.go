package planner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/cost"
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/partition"
	"github.com/iop-edge/iop/internal/passes"
	"github.com/iop-edge/iop/internal/plan"
	"github.com/iop-edge/iop/internal/tensor"
)

// randGraph builds random small CNNs: chains of convolutions with random
// channel counts, odd spatial sizes, strides, pads and groups, pools,
// batch norms and activations, residual adds and channel concats, ending in
// a Gemm head.
type randGraph struct {
	rng    *rand.Rand
	g      *graph.Graph
	shapes map[string]tensor.Shape
	k      int
}

func (r *randGraph) name(p string) string {
	r.k++
	return fmt.Sprintf("%s%d", p, r.k)
}

func (r *randGraph) weights(shape tensor.Shape, std float64) string {
	t := tensor.New(tensor.Float32, shape)
	for i := range t.F {
		t.F[i] = float32(std * r.rng.NormFloat64())
	}
	name := r.name("w")
	r.g.Constants[name] = t
	return name
}

func (r *randGraph) node(op string, inputs []string, out tensor.Shape) *graph.Node {
	name := r.name(op)
	n := &graph.Node{Name: name, Op: op, Inputs: inputs, Outputs: []string{name}, Attrs: map[string]graph.Attr{}}
	r.g.Nodes = append(r.g.Nodes, n)
	r.shapes[name] = out
	return n
}

func outSize(in, k, s, pad int, ceil bool) int {
	num := in + 2*pad - k
	if ceil {
		o := (num+s-1)/s + 1
		if (o-1)*s >= in+pad {
			o--
		}
		return o
	}
	return num/s + 1
}

// conv adds a convolution; k, stride, pad chosen so the output is at least
// 1×1.
func (r *randGraph) conv(x string, out, k, stride, pad, groups int, bias bool) string {
	s := r.shapes[x]
	in := s[1]
	if in%groups != 0 || out%groups != 0 {
		groups = 1
	}
	w := r.weights(tensor.Shape{out, in / groups, k, k}, 1/float64(in/groups*k*k))
	inputs := []string{x, w}
	if bias {
		inputs = append(inputs, r.weights(tensor.Shape{out}, 0.1))
	}
	oh, ow := outSize(s[2], k, stride, pad, false), outSize(s[3], k, stride, pad, false)
	n := r.node("Conv", inputs, tensor.Shape{1, out, oh, ow})
	n.SetInt("group", int64(groups))
	n.SetInts("kernel_shape", k, k)
	n.SetInts("pads", pad, pad, pad, pad)
	n.SetInts("strides", stride, stride)
	return n.Name
}

func (r *randGraph) unary(op, x string) string {
	n := r.node(op, []string{x}, r.shapes[x].Clone())
	if op == "LeakyRelu" {
		n.SetFloat("alpha", 0.1)
	}
	return n.Name
}

func (r *randGraph) bn(x string) string {
	c := r.shapes[x][1]
	pos := func() string {
		t := tensor.New(tensor.Float32, tensor.Shape{c})
		for i := range t.F {
			t.F[i] = float32(0.5 + r.rng.Float64())
		}
		name := r.name("bn")
		r.g.Constants[name] = t
		return name
	}
	n := r.node("BatchNormalization", []string{x, pos(), r.weights(tensor.Shape{c}, 0.1), r.weights(tensor.Shape{c}, 0.1), pos()}, r.shapes[x].Clone())
	n.SetFloat("epsilon", 1e-5)
	return n.Name
}

func (r *randGraph) pool(x string) string {
	s := r.shapes[x]
	op := "MaxPool"
	if r.rng.IntN(2) == 0 {
		op = "AveragePool"
	}
	k := 2 + r.rng.IntN(2)
	if k > s[2] || k > s[3] {
		return x
	}
	stride := 1 + r.rng.IntN(2)
	pad := r.rng.IntN(k/2 + 1)
	ceil := r.rng.IntN(3) == 0
	oh, ow := outSize(s[2], k, stride, pad, ceil), outSize(s[3], k, stride, pad, ceil)
	if oh < 1 || ow < 1 {
		return x
	}
	n := r.node(op, []string{x}, tensor.Shape{1, s[1], oh, ow})
	n.SetInts("kernel_shape", k, k)
	n.SetInts("pads", pad, pad, pad, pad)
	n.SetInts("strides", stride, stride)
	if ceil {
		n.SetInt("ceil_mode", 1)
	}
	if op == "AveragePool" && r.rng.IntN(2) == 0 {
		n.SetInt("count_include_pad", 1)
	}
	return n.Name
}

// block appends one random block to x.
func (r *randGraph) block(x string) string {
	s := r.shapes[x]
	ch := func() int { return 1 + r.rng.IntN(8) }
	switch r.rng.IntN(7) {
	case 0, 1: // conv (+bn) (+act)
		k := []int{1, 3, 5}[r.rng.IntN(3)]
		stride := 1 + r.rng.IntN(2)
		pad := r.rng.IntN(k/2 + 1)
		out := ch()
		groups := 1
		switch r.rng.IntN(4) {
		case 0:
			groups, out = s[1], s[1] // depthwise
		case 1:
			if s[1]%2 == 0 {
				groups, out = 2, 2*(1+r.rng.IntN(4))
			}
		}
		if k > s[2]+2*pad || k > s[3]+2*pad {
			k, pad = 1, 0
		}
		y := r.conv(x, out, k, stride, pad, groups, r.rng.IntN(2) == 0)
		if r.rng.IntN(3) == 0 {
			y = r.bn(y)
		}
		switch r.rng.IntN(4) {
		case 0:
			y = r.unary("Relu", y)
		case 1:
			y = r.unary("LeakyRelu", y)
		}
		return y
	case 2:
		return r.pool(x)
	case 3, 4: // residual
		y := r.unary("Relu", r.conv(x, ch(), 3, 1, 1, 1, true))
		k := 1 + 2*r.rng.IntN(2)
		y = r.conv(y, s[1], k, 1, k/2, 1, r.rng.IntN(2) == 0)
		add := r.node("Add", []string{x, y}, s.Clone())
		if r.rng.IntN(2) == 0 {
			return r.unary("Relu", add.Name)
		}
		return add.Name
	default: // concat of branches
		a := r.conv(x, ch(), 1, 1, 0, 1, true)
		b := r.unary("Relu", r.conv(x, ch(), 3, 1, 1, 1, false))
		ins := []string{a, b}
		if r.rng.IntN(2) == 0 {
			ins = append(ins, x)
		}
		out := s.Clone()
		out[1] = 0
		for _, in := range ins {
			out[1] += r.shapes[in][1]
		}
		n := r.node("Concat", ins, out)
		n.SetInt("axis", 1)
		return n.Name
	}
}

// randomCNN returns an optimized random CNN and an input for it.
func randomCNN(t testing.TB, seed uint64, blocks int) (*graph.Graph, *tensor.Tensor) {
	rng := rand.New(rand.NewPCG(seed, 42))
	r := &randGraph{rng: rng, g: graph.New(fmt.Sprintf("rand%d", seed), 17), shapes: map[string]tensor.Shape{}}
	in := tensor.Shape{1, 1 + rng.IntN(4), 5 + 2*rng.IntN(6), 5 + 2*rng.IntN(5)}
	r.g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Shape: in}}
	r.shapes["x"] = in
	x := "x"
	for i := 0; i < blocks; i++ {
		x = r.block(x)
	}
	if x == "x" {
		x = r.conv(x, 3, 3, 1, 1, 1, true)
	}
	if rng.IntN(2) == 0 {
		s := r.shapes[x]
		x = r.node("GlobalAveragePool", []string{x}, tensor.Shape{1, s[1], 1, 1}).Name
	}
	s := r.shapes[x]
	f := r.node("Flatten", []string{x}, tensor.Shape{1, s.Numel()})
	f.SetInt("axis", 1)
	x = f.Name
	gemm := func(x string, out int) string {
		k := r.shapes[x][1]
		n := r.node("Gemm", []string{x, r.weights(tensor.Shape{out, k}, 1/float64(k)), r.weights(tensor.Shape{out}, 0.1)}, tensor.Shape{1, out})
		n.SetInt("transB", 1)
		return n.Name
	}
	if rng.IntN(2) == 0 {
		x = r.unary("Relu", gemm(x, 4+rng.IntN(12)))
	}
	x = gemm(x, 2+rng.IntN(8))
	r.g.Outputs = []graph.ValueInfo{{Name: x, DType: tensor.Float32, Shape: r.shapes[x]}}
	if err := passes.Optimize(r.g, nil, passes.Options{}); err != nil {
		t.Fatalf("seed %d: optimize: %v", seed, err)
	}
	xt := tensor.New(tensor.Float32, in)
	for i := range xt.F {
		xt.F[i] = float32(rng.NormFloat64())
	}
	return r.g, xt
}

// randomCluster returns 1–5 devices with random speeds, links from
// 10 Mbit/s to 1 Gbit/s, either topology, and sometimes memory limits that
// force the weights to be split.
func randomCluster(rng *rand.Rand, g *graph.Graph) *cluster.Spec {
	n := 1 + rng.IntN(5)
	bw := cluster.Bandwidth((10 + rng.Float64()*990) * 1e6 / 8)
	s := cluster.Uniform(n, 4, 0, bw, rng.Float64()*0.5)
	if rng.IntN(4) == 0 {
		s.Topology = cluster.Shared
	}
	w := g.ParamBytes()
	for d := range s.Devices {
		s.Devices[d].GFLOPS = 0.5 + rng.Float64()*8
		if rng.IntN(3) == 0 {
			s.Devices[d].Memory = cluster.Bytes(cost.DefaultParams.RuntimeOverheadBytes + int64(float64(w)*(0.5+rng.Float64())) + 64<<10)
		}
	}
	return s
}

// TestRandomGraphs is the property test: on random CNNs and random
// clusters, (a) every strategy's plan, compiled and run in-process, gives
// the single-device engine's output, and (b) optimal's predicted latency is
// at most every other strategy's that fits the memory limits.
func TestRandomGraphs(t *testing.T) {
	cases := 60
	if testing.Short() {
		cases = 15
	}
	if v := os.Getenv("IOP_RANDOM_CASES"); v != "" {
		fmt.Sscan(v, &cases) // longer sweeps: IOP_RANDOM_CASES=1000
	}
	for seed := uint64(1); seed <= uint64(cases); seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		g, x := randomCNN(t, seed, 2+rng.IntN(5))
		want := reference(t, g, x)
		spec := randomCluster(rng, g)
		pr := &Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: g.Name}
		lat := map[string]float64{}
		var optErr error
		for _, s := range Strategies {
			name := fmt.Sprintf("seed %d (%d nodes, %d devices, %s)/%s", seed, len(g.Nodes), spec.N(), spec.Link.Bandwidth, s)
			p, err := Make(pr, s)
			if err != nil {
				var me *MemoryError
				if !errors.As(err, &me) {
					t.Errorf("%s: %v", name, err)
				}
				if s == "optimal" {
					optErr = err
				}
				continue
			}
			if Fits(pr, p.Prediction) < 0 {
				lat[s] = p.Prediction.LatencyMS
			}
			checkRun(t, name, g, p, x, want)
		}
		opt, ok := lat["optimal"]
		for s, l := range lat {
			if !ok {
				t.Errorf("seed %d: %s fits (%.4f ms) but optimal failed: %v", seed, s, l, optErr)
				break
			}
			if opt > l*(1+1e-9) {
				t.Errorf("seed %d: optimal %.6f ms is slower than %s %.6f ms", seed, opt, s, l)
			}
		}
	}
}

// checkRun compiles p with weights, runs it in-process and compares with
// the single-device output.
func checkRun(t *testing.T, name string, g *graph.Graph, p *plan.Plan, x *tensor.Tensor, want []*tensor.Tensor) {
	t.Helper()
	ps, err := partition.Compile(g, p, partition.Options{})
	if err != nil {
		t.Errorf("%s: compile: %v", name, err)
		return
	}
	got, err := partition.RunInProcess(context.Background(), ps, []*tensor.Tensor{x}, 1)
	if err != nil {
		t.Errorf("%s: run: %v", name, err)
		return
	}
	for i := range want {
		if err := tensor.AllClose(got[i], want[i], 1e-4, 1e-5); err != nil {
			t.Errorf("%s: output %d: %v", name, i, err)
		}
	}
}

// TestOptimalMemory: with limits that single and coedge cannot meet the
// optimal plan still fits and is at least as fast as every baseline that
// fits; with limits no plan can meet, the error names the device, its limit
// and what the closest plan needs there.
func TestOptimalMemory(t *testing.T) {
	g, x := optimized(t, "tiny-vgg")
	want := reference(t, g, x)
	over := cost.DefaultParams.RuntimeOverheadBytes + cost.DefaultParams.ComputeOverheadBytes // every device computes
	spec := hetero(3, 12.5e6)
	pr := &Problem{Graph: g, Cluster: spec, Params: cost.DefaultParams, ModelName: "tiny-vgg"}
	single, err := Make(pr, "single")
	if err != nil {
		t.Fatal(err)
	}
	w := single.Prediction.Devices[fastest(pr)].PeakMemoryBytes - over // weights and activations
	for d := range spec.Devices {
		spec.Devices[d].Memory = cluster.Bytes(over + w*6/10)
	}
	opt, err := Make(pr, "optimal")
	if err != nil {
		t.Fatalf("optimal: %v", err)
	}
	if d := Fits(pr, opt.Prediction); d >= 0 {
		t.Fatalf("optimal plan overflows device %d: %d bytes", d, opt.Prediction.Devices[d].PeakMemoryBytes)
	}
	checkRun(t, "tiny-vgg/optimal/memory", g, opt, x, want)
	for _, s := range baselineStrategies {
		p, err := Make(pr, s)
		if err != nil {
			continue
		}
		if Fits(pr, p.Prediction) < 0 && p.Prediction.LatencyMS < opt.Prediction.LatencyMS {
			t.Errorf("%s fits and predicts %.4f ms, optimal %.4f ms", s, p.Prediction.LatencyMS, opt.Prediction.LatencyMS)
		}
	}

	for d := range spec.Devices {
		spec.Devices[d].Memory = cluster.Bytes(over + w/10)
	}
	spec.Devices[1].Name = "small-board"
	_, err = Make(pr, "optimal")
	var me *MemoryError
	if !errors.As(err, &me) {
		t.Fatalf("want a MemoryError, got %v", err)
	}
	if me.Name != spec.Devices[me.Device].Name || me.Limit != int64(spec.Devices[me.Device].Memory) || me.Need <= me.Limit {
		t.Errorf("MemoryError %+v does not describe device %d (%q, limit %d)", me, me.Device, spec.Devices[me.Device].Name, spec.Devices[me.Device].Memory)
	}
	if msg := err.Error(); !strings.Contains(msg, spec.Devices[me.Device].Name) || !strings.Contains(msg, "MiB") {
		t.Errorf("error %q does not name the device and sizes", msg)
	}
}

// TestOptimalBeatsBaselines: realistic cases where the DP's mix of schemes
// is clearly faster than every baseline (VGG-16 on four 180 MiB boards at
// 100 Mbit/s; ResNet-18 on three boards of different speed at 1 Gbit/s).
func TestOptimalBeatsBaselines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds full-size models")
	}
	het := cluster.Uniform(3, 4, 0, cluster.Bandwidth(125e6), 0.2)
	for d, gf := range []float64{6, 2, 10} {
		het.Devices[d].GFLOPS = gf
	}
	cases := []struct {
		model string
		spec  *cluster.Spec
		gain  float64 // optimal must be at least this much faster than the best baseline
	}{
		{"vgg16", cluster.Uniform(4, 4, 180<<20, cluster.Bandwidth(12.5e6), 0.2), 0.3},
		{"resnet18", het, 0.03},
	}
	for _, c := range cases {
		g, _ := optimized(t, c.model)
		pr := &Problem{Graph: g, Cluster: c.spec, Params: cost.DefaultParams, ModelName: c.model}
		opt, err := Make(pr, "optimal")
		if err != nil {
			t.Fatalf("%s: %v", c.model, err)
		}
		best, bestName := math.Inf(1), ""
		for _, s := range baselineStrategies {
			p, err := Make(pr, s)
			if err != nil || Fits(pr, p.Prediction) >= 0 {
				continue
			}
			if p.Prediction.LatencyMS < best {
				best, bestName = p.Prediction.LatencyMS, s
			}
		}
		t.Logf("%s: optimal %.1f ms, best baseline %s %.1f ms", c.model, opt.Prediction.LatencyMS, bestName, best)
		if opt.Prediction.LatencyMS > best*(1-c.gain) {
			t.Errorf("%s: optimal %.1f ms is not %.0f%% faster than %s %.1f ms", c.model, opt.Prediction.LatencyMS, 100*c.gain, bestName, best)
		}
	}
}
