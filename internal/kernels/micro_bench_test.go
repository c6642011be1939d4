package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMicroKernel runs the selected set's micro-kernel on full tiles
// with operands in cache: its efficiency bounds every GEMM's.
func BenchmarkMicroKernel(b *testing.B) {
	ks := active
	for _, k := range []int{64, 256, 576} {
		b.Run(fmt.Sprintf("%s/k%d", ks.name, k), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			const tiles = 8
			a := randSlice(r, tiles*ks.mr*k)
			bb := randSlice(r, k*ks.nr)
			c := make([]float32, tiles*ks.mr*ks.nr)
			flops := 2 * float64(tiles*ks.mr*ks.nr*k)
			runFlops(b, flops, 1, func() {
				ks.tiles(ks.mr, ks.nr, tiles, k, a, ks.mr*k, bb, c, ks.nr, 1, 0, zeroBias[:], 0, 0, 0)
			})
		})
	}
}
