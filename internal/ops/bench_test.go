package ops

import (
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

// prepared returns a ready kernel and its output buffers.
func prepared(b *testing.B, n *graph.Node, opset int64, args ...arg) (Kernel, []*tensor.Tensor, []*tensor.Tensor) {
	d, _ := Lookup(n.Op)
	in := make([]Input, len(args))
	ts := make([]*tensor.Tensor, len(args))
	for i, a := range args {
		in[i] = Input{ValueInfo: graph.ValueInfo{DType: a.t.DType, Shape: a.t.Shape}, Present: true}
		if a.konst {
			in[i].Const = a.t
		}
		ts[i] = a.t
	}
	vi, err := d.Infer(n, opset, in)
	if err != nil {
		b.Fatal(err)
	}
	k, err := d.Prepare(n, opset, in, vi)
	if err != nil {
		b.Fatal(err)
	}
	outs := make([]*tensor.Tensor, len(vi))
	for i, v := range vi {
		outs[i] = tensor.New(v.DType, v.Shape)
	}
	return k, ts, outs
}

func benchOp(b *testing.B, threads int, n *graph.Node, opset int64, args ...arg) {
	k, ts, outs := prepared(b, n, opset, args...)
	p := kernels.NewPool(threads)
	b.SetBytes(int64(outs[0].Len()) * 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := k.Run(p, ts, outs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	x, y := randT(r, 1, 64, 56, 56), randT(r, 1, 64, 56, 56)
	ch := randT(r, 1, 64, 1, 1)
	sc, bi, mu, va := randT(r, 64), randT(r, 64), randT(r, 64), randT(r, 64)
	for i := range va.F {
		va.F[i] = va.F[i]*va.F[i] + 1
	}
	for _, th := range []int{1, 2} {
		name := map[int]string{1: "1T", 2: "2T"}[th]
		b.Run("Add_same/"+name, func(b *testing.B) { benchOp(b, th, node("Add", 2, 1), 14, V(x), V(y)) })
		b.Run("Add_chan/"+name, func(b *testing.B) { benchOp(b, th, node("Add", 2, 1), 14, V(x), C(ch)) })
		b.Run("Mul_chan/"+name, func(b *testing.B) { benchOp(b, th, node("Mul", 2, 1), 14, V(x), C(ch)) })
		b.Run("Relu/"+name, func(b *testing.B) { benchOp(b, th, node("Relu", 1, 1), 14, V(x)) })
		b.Run("Clip/"+name, func(b *testing.B) {
			benchOp(b, th, node("Clip", 3, 1), 13, V(x), C(scalarF(0)), C(scalarF(6)))
		})
		b.Run("HardSwish/"+name, func(b *testing.B) { benchOp(b, th, node("HardSwish", 1, 1), 14, V(x)) })
		b.Run("Sigmoid/"+name, func(b *testing.B) { benchOp(b, th, node("Sigmoid", 1, 1), 14, V(x)) })
		b.Run("BN/"+name, func(b *testing.B) {
			benchOp(b, th, node("BatchNormalization", 5, 1), 15, V(x), C(sc), C(bi), C(mu), C(va))
		})
	}
}

func BenchmarkPool(b *testing.B) {
	r := rand.New(rand.NewSource(2))
	x := randT(r, 1, 64, 112, 112)
	g := randT(r, 1, 512, 7, 7)
	for _, th := range []int{1, 2} {
		name := map[int]string{1: "1T", 2: "2T"}[th]
		b.Run("MaxPool3x3s2p1/"+name, func(b *testing.B) {
			n := setInts(node("MaxPool", 1, 1), "kernel_shape", 3, 3)
			n.SetInts("strides", 2, 2)
			n.SetInts("pads", 1, 1, 1, 1)
			benchOp(b, th, n, 13, V(x))
		})
		b.Run("AvgPool2x2s2/"+name, func(b *testing.B) {
			n := setInts(node("AveragePool", 1, 1), "kernel_shape", 2, 2)
			n.SetInts("strides", 2, 2)
			benchOp(b, th, n, 13, V(x))
		})
		b.Run("GlobalAvg/"+name, func(b *testing.B) { benchOp(b, th, node("GlobalAveragePool", 1, 1), 13, V(g)) })
	}
}
