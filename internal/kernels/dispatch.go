package kernels

import "os"

// maxMR and maxNR bound the micro-kernel tile of every kernel set.
const (
	maxMR = 16
	maxNR = 32
)

// kernelSet is one implementation of the hot loops: the SGEMM micro-kernel
// with its tile geometry (packed A panels of mr rows, packed B panels of nr
// columns) and the other vector kernels. Packed operands remember the set
// they were packed for.
type kernelSet struct {
	name   string
	mr, nr int
	// tiles computes tiles tiles of rows×n (rows <= mr, n <= nr) of C (row
	// stride ldc), tile t = alpha * (A panel at a[t*astride:], depth k) × (B
	// panel b); flag kAccum adds the old C, then kEpilogue adds
	// bias[t*bstride+r] to row r and clamps to [lo, hi]. Only rows×n values
	// of each tile of C are read or written.
	tiles func(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32)
	// tilesPF, if not nil, is tiles that also prefetches (into L2) the B
	// panel pfb floats after b: the next panel of a constant, streamed B.
	tilesPF func(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32, pfb int)
	// dot4 computes out[r] = dot(x[:n], w[r*ldw:][:n]) for r = 0..3.
	dot4 func(n int, x, w []float32, ldw int, out *[4]float32)
	// axpy computes y[:n] += alpha*x[:n].
	axpy func(n int, alpha float32, x, y []float32)
	// dw3x3 computes rows output rows (stride ldo) of a 3×3 depthwise
	// convolution with stride s (1 or 2) from zero-padded input rows (stride
	// ldi): out[y*ldo+x] = clamp(bias + Σ w[3ky+kx]·in[(s·y+ky)*ldi + s·x+kx],
	// lo, hi) for x < n, a multiple of 8. nil when there is no such kernel.
	dw3x3 func(s, rows, n int, out []float32, ldo int, in []float32, ldi int, w []float32, bias, lo, hi float32)
	// dwDirect, if not nil, is a 3×3 depthwise kernel with stride s (1 or
	// 2) that reads the unpadded input with masked loads: it computes nc
	// channels (input channel i at in[i*inStride:], output contiguous)
	// of oh×ow outputs in nchunks 16-wide chunks per row, chunk c loading
	// at float offset xoff + 16*s*c of each input row under the load masks
	// masks[4c:4c+4] and storing under omasks[c]; rows outside the image
	// read zero (len(zero) >= w). See asmgen's dw3x3512.
	dwDirect func(s, nc int, in []float32, inStride int, out []float32, h, w, oh, ow, padT, nchunks, xoff int, wt, bias []float32, lo, hi float32, masks, omasks []uint16, zero []float32)
	// maxPool3x3, if not nil, max-pools nc planes with a 3×3 window and
	// stride s (1 or 2), laid out and masked like dwDirect; rows outside
	// the image read ninf (len(ninf) >= w, all -Inf). See asmgen's
	// maxPool3x3512.
	maxPool3x3 func(s, nc int, in []float32, inStride int, out []float32, h, w, oh, ow, padT, nchunks, xoff int, masks, omasks []uint16, ninf []float32)
	// addClamp, if not nil, sets dst[i] = min(max(a[i]+b[i], lo), hi) for
	// i < n (NaN sums stay NaN).
	addClamp func(n int, dst, a, b []float32, lo, hi float32)
	// copyRows sets dst[r*dstStride+c] = src[r*srcStride+stride*c] for r < n
	// and c < nr; stride is 1 or 2.
	copyRows func(n int, dst []float32, dstStride int, src []float32, srcStride, stride int)
	// im2col, if not nil, packs nch*khw rows of a 32-column (nr == 32)
	// im2col panel for input stride s (1 or 2): dst[(c*khw+t)*32 + j] =
	// src[c*hw + off[t] + s*j] for the lanes j of tap t's load masks
	// (masks[4t:4t+4], see asmgen's im2col512), 0 for the other lanes of
	// the store masks sm0 (lanes 0..15) and sm1 (16..31).
	im2col func(s, nch, khw int, dst, src []float32, hw int, off []int, masks []uint16, sm0, sm1 int)
	// im2colT, if not nil, packs nch*khw groups of mr floats of a
	// transposed im2col panel (mr output pixels per group, the packed A of
	// Cᵀ = Bᵀ·Aᵀ): dst[(c*khw+t)*mr + j] = src[c*hw + idx[16t+j]] for the
	// lanes j of masks[t], 0 for the other lanes j < mr. See asmgen's
	// im2colT512.
	im2colT func(nch, khw int, dst, src []float32, hw int, idx []int32, masks []uint16)
	// im2colTL, if not nil, is im2colT for stride-1 convolutions with segs
	// (1..3) masked loads per group: lane j of group (c, t) is src[c*hw +
	// off[segs*t+s] + j] for the lanes of masks[segs*t+s].
	im2colTL func(segs, nch, khw int, dst, src []float32, hw int, off []int, masks []uint16)
	// transposeT, if not nil, sets dst[d*ldd + i] = min(max(src[i*lds + d]
	// + bias[d], lo), hi) for i < n and d < nb <= 16 (NaN stays NaN): the
	// write-back of Cᵀ into the output channels.
	transposeT func(n int, src []float32, lds int, dst []float32, ldd, nb int, bias []float32, lo, hi float32)
	// peak runs n iterations of a register-only loop of peakFlops flops.
	peak      func(n int)
	peakFlops int
}

// goKernels is the portable kernel set.
var goKernels = &kernelSet{
	name: "go", mr: 6, nr: 16,
	tiles:    microTiles(microKernelGo, microPanelGo, microKernelGo),
	dot4:     dot4Go,
	axpy:     axpyGo,
	copyRows: copyRowsGo(16),
	peak:     peakFMAGo, peakFlops: PeakFlopsPerIter,
}

// kernelSets lists the kernel sets this machine can run, best first; the
// portable set is always last.
var kernelSets = append(archKernelSets(), goKernels)

// active is the kernel set used for new work: the best one, or the one named
// by the environment variable IOP_KERNELS (avx512, avx2 or go) if available.
var active = chooseKernels(os.Getenv("IOP_KERNELS"))

func chooseKernels(name string) *kernelSet {
	for _, ks := range kernelSets {
		if ks.name == name || (name == "avx2" && ks.name == "avx2-fma") {
			return ks
		}
	}
	return kernelSets[0]
}

// KernelName names the kernel set selected at start-up: "avx512", "avx2-fma"
// (avo-generated assembly) or "go" (portable). IOP_KERNELS=avx512|avx2|go
// forces one that the machine supports.
func KernelName() string { return active.name }

// KernelNames lists the kernel sets this machine supports, best first.
func KernelNames() []string {
	var s []string
	for _, ks := range kernelSets {
		s = append(s, ks.name)
	}
	return s
}

// PeakFMA runs n iterations of a register-only loop of 96 multiply-adds
// (192 flops) per iteration with 8-wide vectors (AVX2) or in Go. It exists to
// measure a core's peak arithmetic throughput.
func PeakFMA(n int) { peakFMA(n) }

// PeakFlopsPerIter is the number of floating-point operations of one PeakFMA
// iteration.
const PeakFlopsPerIter = 192

// PeakFMAActive runs n iterations of the selected kernel set's peak loop
// (AVX-512: 24 independent 16-wide FMAs) and returns the flops it performed.
func PeakFMAActive(n int) float64 {
	active.peak(n)
	return float64(n) * float64(active.peakFlops)
}

// peakFMA is the 8-wide (or Go) peak loop.
var peakFMA = peakFMAGo

// microTiles builds a kernelSet.tiles from a fixed mr×nr (6×16) micro-kernel
// mk, its multi-tile form mp and a half-width kernel mk8 (computes at least
// the first 8 columns): partial tiles go through a scratch tile.
func microTiles(mk func(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32),
	mp func(tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32),
	mk8 func(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32),
) func(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
	const mr, nr = goMR, goNR
	return func(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
		if rows == mr && n == nr {
			mp(tiles, k, a, astride, b, c, ldc, alpha, flags, bias, bstride, lo, hi)
			return
		}
		var tile [mr * nr]float32
		var biasBuf [mr]float32
		for t := 0; t < tiles; t++ {
			ct := c[t*rows*ldc:]
			if flags&kAccum != 0 {
				for r := 0; r < rows; r++ {
					copy(tile[r*nr:r*nr+n], ct[r*ldc:r*ldc+n])
				}
			}
			copy(biasBuf[:], bias[t*bstride:t*bstride+rows])
			if n <= nr/2 {
				mk8(k, a[t*astride:], b, tile[:], nr, alpha, flags, biasBuf[:], lo, hi)
			} else {
				mk(k, a[t*astride:], b, tile[:], nr, alpha, flags, biasBuf[:], lo, hi)
			}
			for r := 0; r < rows; r++ {
				copy(ct[r*ldc:r*ldc+n], tile[r*nr:r*nr+n])
			}
		}
	}
}
