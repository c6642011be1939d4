package kernels

// Micro-kernel tile: the SGEMM micro-kernel computes mr×nr blocks of C from a
// packed A panel (mr rows, interleaved per k) and a packed B panel (nr
// columns, interleaved per k).
const (
	mr = 6
	nr = 16
)

// Kernel hooks. They default to the portable Go implementations; on amd64
// with AVX2 and FMA (and without the purego tag) init in kernels_amd64.go
// replaces them with the avo-generated assembly.
var (
	// microKernel computes C[0:6, 0:16] (row stride ldc) = alpha*A*B from
	// packed panels a (k*6 floats) and b (k*16 floats); flag kAccum adds the
	// old C, then kEpilogue adds bias[r] to row r and clamps to [lo, hi].
	microKernel = microKernelGo
	// microPanel runs microKernel on tiles full 6×16 tiles down a column of
	// C: tile t uses a[t*astride:], C rows 6t.. and bias[t*bstride:].
	microPanel = microPanelGo
	// microKernel8 is microKernel for tiles of at most 8 columns: it computes
	// at least the first 8 columns (and may write all 16) of the tile.
	microKernel8 = microKernelGo
	// dot4 computes out[r] = dot(x[:n], w[r*ldw:][:n]) for r = 0..3.
	dot4 = dot4Go
	// axpy computes y[:n] += alpha*x[:n].
	axpy = axpyGo
	// dw3x3 computes rows output rows (stride ldo) of a 3×3 depthwise
	// convolution with stride s (1 or 2) from zero-padded input rows (stride
	// ldi): out[y*ldo+x] = clamp(bias + Σ w[3ky+kx]·in[(s·y+ky)*ldi + s·x+kx],
	// lo, hi) for x < n, a multiple of 8. nil when there is no such kernel.
	dw3x3 func(s, rows, n int, out []float32, ldo int, in []float32, ldi int, w []float32, bias, lo, hi float32)
	// copyRows sets dst[r*dstStride+c] = src[r*srcStride+stride*c] for r < n
	// and c < 16; stride is 1 or 2.
	copyRows = copyRowsGo
	// peakFMA runs n iterations of 96 independent multiply-adds.
	peakFMA  = peakFMAGo
	kernName = "go"
)

// KernelName names the micro-kernel implementation selected at start-up:
// "avx2-fma" (avo-generated assembly) or "go" (portable).
func KernelName() string { return kernName }

// PeakFMA runs n iterations of a register-only loop of 96 multiply-adds
// (192 flops) per iteration with the selected kernel set. It exists to measure
// a core's peak arithmetic throughput.
func PeakFMA(n int) { peakFMA(n) }

// PeakFlopsPerIter is the number of floating-point operations of one PeakFMA
// iteration.
const PeakFlopsPerIter = 192
