package ops

import (
	"math/rand"
	"testing"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/tensor"
)

// refMatMul multiplies row-major matrices.
func refMatMul(a, b []float32, m, n, k int) []float32 {
	c := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(a[i*k+l]) * float64(b[l*n+j])
			}
			c[i*n+j] = float32(s)
		}
	}
	return c
}

func transpose2(x *tensor.Tensor) *tensor.Tensor {
	r, c := x.Shape[0], x.Shape[1]
	o := tensor.New(tensor.Float32, tensor.Shape{c, r})
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			o.F[j*r+i] = x.F[i*c+j]
		}
	}
	return o
}

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	const M, N, K = 3, 5, 4
	a := randT(r, M, K)
	b := randT(r, K, N)
	ab := refMatMul(a.F, b.F, M, N, K)
	for _, tc := range []struct {
		name         string
		c            *tensor.Tensor
		alpha, beta  float32
		transA, tran bool
	}{
		{"no_c", nil, 1, 1, false, false},
		{"scalar", randT(r), 1, 1, false, false},
		{"one_elem", randT(r, 1), 1, 1, false, false},
		{"vector", randT(r, N), 1, 1, false, false},
		{"row", randT(r, 1, N), 1, 1, false, false},
		{"col", randT(r, M, 1), 1, 1, false, false},
		{"matrix", randT(r, M, N), 0.5, 2, false, false},
		{"transA", randT(r, N), 1, 1, true, false},
		{"transB", randT(r, N), 1, 1, false, true},
		{"both", randT(r, M, N), 0.25, 0.35, true, true},
		{"beta0", randT(r, M, N), 1, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := node("Gemm", 3, 1)
			n.SetFloat("alpha", tc.alpha)
			n.SetFloat("beta", tc.beta)
			aa, bb := a, b
			if tc.transA {
				n.SetInt("transA", 1)
				aa = transpose2(a)
			}
			if tc.tran {
				n.SetInt("transB", 1)
				bb = transpose2(b)
			}
			carg := none
			if tc.c != nil {
				carg = C(tc.c)
			}
			got := run1(t, n, 13, V(aa), C(bb), carg)
			want := tensor.New(tensor.Float32, tensor.Shape{M, N})
			for i := 0; i < M; i++ {
				for j := 0; j < N; j++ {
					v := tc.alpha * ab[i*N+j]
					if tc.c != nil {
						var cv float32
						switch {
						case tc.c.Len() == 1:
							cv = tc.c.F[0]
						case len(tc.c.Shape) == 1 || tc.c.Shape[0] == 1:
							cv = tc.c.F[j]
						case tc.c.Shape[1] == 1:
							cv = tc.c.F[i]
						default:
							cv = tc.c.F[i*N+j]
						}
						v += tc.beta * cv
					}
					want.F[i*N+j] = v
				}
			}
			near(t, tc.name, got, want)
		})
	}
	// fused Relu
	n := node("Gemm", 2, 1)
	n.SetStr(graph.FusedActivation, "Relu")
	got := run1(t, n, 13, V(a), C(b))
	for i, v := range ab {
		if want := max(v, 0); got.F[i] != want && (got.F[i]-want > 1e-5 || want-got.F[i] > 1e-5) {
			t.Fatalf("fused relu element %d: %g want %g", i, got.F[i], want)
		}
	}
}

func TestGemmErrors(t *testing.T) {
	a := tensor.New(tensor.Float32, tensor.Shape{3, 4})
	mustFail(t, node("Gemm", 2, 1), 13, "inner dimensions", V(a), C(tensor.New(tensor.Float32, tensor.Shape{5, 2})))
	mustFail(t, node("Gemm", 2, 1), 13, "matrices", V(tensor.New(tensor.Float32, tensor.Shape{3, 4, 1})), C(tensor.New(tensor.Float32, tensor.Shape{4, 2})))
	mustFail(t, node("Gemm", 3, 1), 13, "does not broadcast", V(a), C(tensor.New(tensor.Float32, tensor.Shape{4, 2})), C(tensor.New(tensor.Float32, tensor.Shape{2, 2})))
	mustFail(t, node("Gemm", 3, 1), 13, "does not broadcast", V(a), C(tensor.New(tensor.Float32, tensor.Shape{4, 2})), C(tensor.New(tensor.Float32, tensor.Shape{3})))
}

func TestMatMul(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, tc := range []struct {
		a, b, out tensor.Shape
	}{
		{tensor.Shape{3, 4}, tensor.Shape{4, 5}, tensor.Shape{3, 5}},
		{tensor.Shape{2, 3, 4}, tensor.Shape{4, 5}, tensor.Shape{2, 3, 5}},
		{tensor.Shape{2, 3, 4}, tensor.Shape{2, 4, 5}, tensor.Shape{2, 3, 5}},
		{tensor.Shape{1, 3, 4}, tensor.Shape{2, 4, 5}, tensor.Shape{2, 3, 5}},
		{tensor.Shape{2, 1, 3, 4}, tensor.Shape{3, 4, 2}, tensor.Shape{2, 3, 3, 2}},
		{tensor.Shape{3, 4}, tensor.Shape{2, 4, 5}, tensor.Shape{2, 3, 5}},
		{tensor.Shape{4}, tensor.Shape{4, 5}, tensor.Shape{5}},
		{tensor.Shape{3, 4}, tensor.Shape{4}, tensor.Shape{3}},
		{tensor.Shape{4}, tensor.Shape{4}, tensor.Shape{}},
		{tensor.Shape{2, 3, 4}, tensor.Shape{4}, tensor.Shape{2, 3}},
		{tensor.Shape{4}, tensor.Shape{2, 4, 5}, tensor.Shape{2, 5}},
	} {
		a, b := randT(r, tc.a...), randT(r, tc.b...)
		got := run1(t, node("MatMul", 2, 1), 13, V(a), V(b))
		if !got.Shape.Equal(tc.out) {
			t.Fatalf("%v × %v: shape %v, want %v", tc.a, tc.b, got.Shape, tc.out)
		}
		// reference: promote to 3-D with explicit broadcast
		a2, b2 := tc.a, tc.b
		if len(a2) == 1 {
			a2 = tensor.Shape{1, a2[0]}
		}
		if len(b2) == 1 {
			b2 = tensor.Shape{b2[0], 1}
		}
		m, k, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
		batch, _ := broadcastShapes(&graph.Node{}, a2[:len(a2)-2], b2[:len(b2)-2])
		sa, sb := bstrides(a2[:len(a2)-2], batch), bstrides(b2[:len(b2)-2], batch)
		want := make([]float32, 0, got.Len())
		forEachIndex(batch, [][]int{sa, sb}, func(i int, o []int) {
			want = append(want, refMatMul(a.F[o[0]*m*k:], b.F[o[1]*k*n:], m, n, k)...)
		})
		near(t, "matmul", got, tensor.FromFloat32(got.Shape, want))
	}
	mustFail(t, node("MatMul", 2, 1), 13, "inner dimensions", V(randT(r, 3, 4)), V(randT(r, 3, 4)))
	mustFail(t, node("MatMul", 2, 1), 13, "broadcastable", V(randT(r, 2, 3, 4)), V(randT(r, 3, 4, 5)))
	mustFail(t, node("MatMul", 2, 1), 13, "rank", V(randT(r)), V(randT(r, 3, 4)))
}

// Constant weights are prepacked at Prepare time (or streamed by the
// matrix-vector path at batch 1); both must match the reference, as must a
// variable B of the same shape.
func TestGemmConstWeights(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for _, s := range [][3]int{{1, 300, 400}, {2, 300, 400}, {3, 40, 30}, {37, 70, 90}, {64, 33, 129}} {
		m, n, k := s[0], s[1], s[2]
		for _, tb := range []bool{false, true} {
			a, b := randT(r, m, k), randT(r, k, n)
			bias := randT(r, n)
			want := refMatMul(a.F, b.F, m, n, k)
			for i := range want {
				want[i] = 0.5*want[i] + 2*bias.F[i%n]
			}
			bb := b
			nd := node("Gemm", 3, 1)
			nd.SetFloat("alpha", 0.5)
			nd.SetFloat("beta", 2)
			if tb {
				nd.SetInt("transB", 1)
				bb = transpose2(b)
			}
			wt := tensor.FromFloat32(tensor.Shape{m, n}, want)
			near(t, "gemm const B", run1(t, nd, 13, V(a), C(bb), C(bias)), wt)
			near(t, "gemm variable B", run1(t, nd, 13, V(a), V(bb), C(bias)), wt)
		}
		// MatMul with a constant B and a batch of A.
		a, b := randT(r, 2, m, k), randT(r, k, n)
		want := append(refMatMul(a.F[:m*k], b.F, m, n, k), refMatMul(a.F[m*k:], b.F, m, n, k)...)
		near(t, "matmul const B", run1(t, node("MatMul", 2, 1), 13, V(a), C(b)), tensor.FromFloat32(tensor.Shape{2, m, n}, want))
	}
}
