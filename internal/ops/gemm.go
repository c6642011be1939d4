package ops

import (
	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/kernels"
	"github.com/iop-edge/iop/internal/tensor"
)

func init() {
	Register("Gemm", &Def{Infer: gemmInfer, Prepare: gemmPrepare, FLOPs: gemmFLOPs, Class: ClassGemm})
	Register("MatMul", &Def{Infer: matmulInfer, Prepare: matmulPrepare, FLOPs: matmulFLOPs, Class: ClassGemm})
}

// gemmDims validates a Gemm node and returns M, N, K.
func gemmDims(n *graph.Node, in []Input) (m, nn, k int, err error) {
	if err = arity(n, in, 2, 3, 1, 1); err != nil {
		return
	}
	for i := range in {
		if in[i].Present {
			if err = wantDType(n, in, i, tensor.Float32); err != nil {
				return
			}
		}
	}
	a, b := in[0].Shape, in[1].Shape
	if len(a) != 2 || len(b) != 2 {
		err = Errorf(n, "A %v and B %v must be matrices", a, b)
		return
	}
	m, k = a[0], a[1]
	if n.Int("transA", 0) != 0 {
		m, k = k, m
	}
	kb, nb := b[0], b[1]
	if n.Int("transB", 0) != 0 {
		kb, nb = nb, kb
	}
	if k != kb {
		err = Errorf(n, "inner dimensions differ: A %v gives K=%d, B %v gives K=%d", a, k, b, kb)
		return
	}
	nn = nb
	if present(in, 2) {
		c := in[2].Shape
		s, e := broadcastShapes(n, c, tensor.Shape{m, nn})
		if e != nil || !s.Equal(tensor.Shape{m, nn}) || len(c) > 2 {
			err = Errorf(n, "C %v does not broadcast to [%d×%d]", c, m, nn)
			return
		}
	}
	return
}

func gemmInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	m, nn, _, err := gemmDims(n, in)
	if err != nil {
		return nil, err
	}
	if _, err := fusedAct(n); err != nil {
		return nil, err
	}
	return one(tensor.Float32, tensor.Shape{m, nn}), nil
}

func gemmFLOPs(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	m, nn, k, err := gemmDims(n, in)
	if err != nil {
		return 0
	}
	f := 2 * int64(m) * int64(nn) * int64(k)
	if present(in, 2) {
		f += int64(m) * int64(nn)
	}
	return f
}

func gemmPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	m, nn, k, err := gemmDims(n, in)
	if err != nil {
		return nil, err
	}
	act, err := fusedAct(n)
	if err != nil {
		return nil, err
	}
	alpha, beta := n.Float("alpha", 1), n.Float("beta", 1)
	ta, tb := n.Int("transA", 0) != 0, n.Int("transB", 0) != 0
	lda, ldb := in[0].Shape[1], in[1].Shape[1]
	hasC := present(in, 2) && beta != 0
	var cplan *bplan
	if hasC {
		cplan = newBPlan(in[2].Shape, in[2].Shape, tensor.Shape{m, nn})
	}
	// A constant B (the weights of a fully connected layer) is packed once
	// here, unless the product is a matrix-vector one (batch 1), which
	// streams the original matrix.
	var packedB *kernels.PackedB
	if in[1].Const != nil && k > 0 && kernels.UsesPackedB(m, nn, k) {
		packedB = kernels.PackB(tb, k, nn, in[1].Const.F, ldb)
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 2); err != nil {
			return err
		}
		y := out[0].F
		b := float32(0)
		if hasC && len(in) > 2 && in[2] != nil {
			binRun(p, cplan, opFirst, y, in[2].F, in[2].F)
			b = beta
		}
		if k == 0 {
			for i := range y {
				y[i] *= b
			}
		} else if packedB != nil {
			kernels.SgemmPackedB(p, ta, m, alpha, in[0].F, lda, packedB, b, y, nn)
		} else {
			kernels.Sgemm(p, ta, tb, m, nn, k, alpha, in[0].F, lda, in[1].F, ldb, b, y, nn)
		}
		applyAct(p, act, y)
		return nil
	}), nil
}

// matmulGeom is the numpy matmul geometry.
type matmulGeom struct {
	batch      tensor.Shape // broadcast batch dims
	m, n, k    int
	sa, sb     []int // batch strides (in matrices) of A and B
	out        tensor.Shape
	bShared    bool // B has no batch dims: A's batch folds into M
	aBatchFull bool
}

func matmulGeomOf(n *graph.Node, in []Input) (g matmulGeom, err error) {
	if err = arity(n, in, 2, 2, 1, 1); err != nil {
		return
	}
	for i := range in {
		if err = wantDType(n, in, i, tensor.Float32); err != nil {
			return
		}
	}
	a, b := in[0].Shape, in[1].Shape
	if len(a) == 0 || len(b) == 0 {
		err = Errorf(n, "operands must have rank ≥ 1, have %v and %v", a, b)
		return
	}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = tensor.Shape{1, a[0]}
	}
	if len(b) == 1 {
		b2 = tensor.Shape{b[0], 1}
	}
	g.m, g.k = a2[len(a2)-2], a2[len(a2)-1]
	kb := b2[len(b2)-2]
	g.n = b2[len(b2)-1]
	if g.k != kb {
		err = Errorf(n, "inner dimensions differ: %v × %v", a, b)
		return
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	g.batch, err = broadcastShapes(n, ab, bb)
	if err != nil {
		return
	}
	g.sa = bstrides(ab, g.batch)
	g.sb = bstrides(bb, g.batch)
	g.bShared = bb.Numel() == 1
	g.aBatchFull = ab.Numel() == g.batch.Numel()
	g.out = g.batch.Clone()
	if len(a) > 1 {
		g.out = append(g.out, g.m)
	}
	if len(b) > 1 {
		g.out = append(g.out, g.n)
	}
	return
}

func matmulInfer(n *graph.Node, opset int64, in []Input) ([]graph.ValueInfo, error) {
	g, err := matmulGeomOf(n, in)
	if err != nil {
		return nil, err
	}
	return one(tensor.Float32, g.out), nil
}

func matmulFLOPs(n *graph.Node, in []Input, out []graph.ValueInfo) int64 {
	g, err := matmulGeomOf(n, in)
	if err != nil {
		return 0
	}
	return 2 * int64(g.batch.Numel()) * int64(g.m) * int64(g.n) * int64(g.k)
}

func matmulPrepare(n *graph.Node, opset int64, in []Input, out []graph.ValueInfo) (Kernel, error) {
	g, err := matmulGeomOf(n, in)
	if err != nil {
		return nil, err
	}
	act, err := fusedAct(n)
	if err != nil {
		return nil, err
	}
	nb := g.batch.Numel()
	ma, mb, mc := g.m*g.k, g.k*g.n, g.m*g.n
	// batch offsets (in matrices) of A and B for every output matrix
	offA, offB := make([]int, nb), make([]int, nb)
	forEachIndex(g.batch, [][]int{g.sa, g.sb}, func(i int, o []int) { offA[i], offB[i] = o[0], o[1] })
	// A constant B shared by the whole batch is packed once.
	var packedB *kernels.PackedB
	if g.bShared && g.aBatchFull && in[1].Const != nil && g.k > 0 && kernels.UsesPackedB(nb*g.m, g.n, g.k) {
		packedB = kernels.PackB(false, g.k, g.n, in[1].Const.F, g.n)
	}
	return KernelFunc(func(p *kernels.Pool, in, out []*tensor.Tensor) error {
		if err := checkOuts(n, in, out, 2); err != nil {
			return err
		}
		a, b, y := in[0].F, in[1].F, out[0].F
		switch {
		case g.k == 0:
			clear(y)
		case packedB != nil:
			kernels.SgemmPackedB(p, false, nb*g.m, 1, a, g.k, packedB, 0, y, g.n)
		case g.bShared && g.aBatchFull:
			kernels.Sgemm(p, false, false, nb*g.m, g.n, g.k, 1, a, g.k, b, g.n, 0, y, g.n)
		default:
			for i := 0; i < nb; i++ {
				kernels.Sgemm(p, false, false, g.m, g.n, g.k, 1, a[offA[i]*ma:], g.k, b[offB[i]*mb:], g.n, 0, y[i*mc:(i+1)*mc], g.n)
			}
		}
		applyAct(p, act, y)
		return nil
	}), nil
}
