package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAddAct(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		acts := []Act{{}, {Kind: ActRelu}, {Kind: ActClip, Alpha: -0.5, Beta: 0.25}, {Kind: ActSigmoid}}
		for _, n := range []int{0, 1, 15, 16, 17, 63, 64, 65, 130, 1000} {
			for _, act := range acts {
				a, b := make([]float32, n+3), make([]float32, n+3)
				for i := range a {
					a[i], b[i] = rng.Float32()*2-1, rng.Float32()*2-1
				}
				if n > 5 {
					a[5] = float32(math.NaN())
				}
				want := make([]float32, n)
				for i := range want {
					want[i] = a[i] + b[i]
				}
				act.Apply(want)
				got := make([]float32, n+1)
				got[n] = 42 // must stay untouched
				AddAct(got[:n], a, b, act)
				for i := range want {
					if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
						t.Fatalf("n=%d act=%v: [%d] = %v, want %v", n, act, i, got[i], want[i])
					}
				}
				if got[n] != 42 {
					t.Fatalf("n=%d act=%v: wrote past the end", n, act)
				}
				// In place (dst aliases a).
				c := append([]float32(nil), a...)
				AddAct(c[:n], c, b, act)
				for i := range want {
					if c[i] != want[i] && !(c[i] != c[i] && want[i] != want[i]) {
						t.Fatalf("in place n=%d act=%v: [%d] = %v, want %v", n, act, i, c[i], want[i])
					}
				}
			}
		}
	})
}
