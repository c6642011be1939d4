//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// archKernelSets returns the assembly kernel sets the CPU (and OS: x/sys/cpu
// checks that XCR0 enables the vector state) supports, best first.
func archKernelSets() []*kernelSet {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return nil
	}
	peakFMA = peakFMAAVX2
	avx2 := &kernelSet{
		name: "avx2-fma", mr: goMR, nr: goNR,
		tiles:    microTiles(microKernelAVX2, microPanelAVX2, microKernel6x8AVX2),
		dot4:     dot4AVX2,
		axpy:     axpyAVX2,
		dw3x3:    dw3x3AVX2,
		copyRows: copyRowsAVX2,
		peak:     peakFMAAVX2, peakFlops: PeakFlopsPerIter,
	}
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512DQ || !cpu.X86.HasAVX512BW || !cpu.X86.HasAVX512VL {
		return []*kernelSet{avx2}
	}
	avx512 := &kernelSet{
		name: "avx512", mr: mr512, nr: nr512,
		tiles:      tiles512,
		tilesPF:    tilesPF512,
		dot4:       dot4AVX2,
		axpy:       axpyAVX2,
		dw3x3:      dw3x3AVX2,
		copyRows:   copyRows32AVX2,
		im2col:     im2colAVX512,
		im2colT:    im2colTAVX512,
		im2colTL:   im2colTLAVX512,
		transposeT: transposeTAVX512,
		dwDirect:   dwDirectAVX512,
		maxPool3x3: maxPool3x3AVX512,
		addClamp:   addClampAVX512,
		peak:       peakFMA512, peakFlops: 24 * 32,
	}
	return []*kernelSet{avx512, avx2}
}

// Tile of the AVX-512 micro-kernels.
const (
	mr512 = 14
	nr512 = 32
)

type sgemm512Func func(tiles, k int, a *float32, astride int, b, c *float32, ldc int, alpha float32, flags int, bias *float32, bstride int, lo, hi float32, m1, m2 int)

// sgemm512Rows[r] is the AVX-512 micro-kernel for tiles of r rows.
var sgemm512Rows = [mr512 + 1]sgemm512Func{nil,
	sgemm512R1, sgemm512R2, sgemm512R3, sgemm512R4, sgemm512R5, sgemm512R6, sgemm512R7,
	sgemm512R8, sgemm512R9, sgemm512R10, sgemm512R11, sgemm512R12, sgemm512R13, sgemm512R14}

func tiles512(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
	if tiles <= 0 || k <= 0 {
		return
	}
	if rows < 1 || rows > mr512 || n < 1 || n > nr512 {
		panic("kernels: bad AVX-512 tile")
	}
	t := tiles - 1
	_, _, _, _ = a[t*astride+(k-1)*mr512+rows-1], b[k*nr512-1], c[(t*rows+rows-1)*ldc+n-1], bias[t*bstride+rows-1]
	m1, m2 := 0xFFFF, 0
	if n < 16 {
		m1 = 1<<n - 1
	} else {
		m2 = 1<<(n-16) - 1
	}
	sgemm512Rows[rows](tiles, k, &a[0], astride, &b[0], &c[0], ldc, alpha, flags, &bias[0], bstride, lo, hi, m1, m2)
}

// sgemm512PRows[r] is sgemm512Rows[r] with a prefetch of the next B panel.
var sgemm512PRows = [mr512 + 1]func(tiles, k int, a *float32, astride int, b, c *float32, ldc int, alpha float32, flags int, bias *float32, bstride int, lo, hi float32, m1, m2, pfb int){nil,
	sgemm512PR1, sgemm512PR2, sgemm512PR3, sgemm512PR4, sgemm512PR5, sgemm512PR6, sgemm512PR7,
	sgemm512PR8, sgemm512PR9, sgemm512PR10, sgemm512PR11, sgemm512PR12, sgemm512PR13, sgemm512PR14}

func tilesPF512(rows, n, tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32, pfb int) {
	if tiles <= 0 || k <= 0 {
		return
	}
	if rows < 1 || rows > mr512 || n < 1 || n > nr512 {
		panic("kernels: bad AVX-512 tile")
	}
	t := tiles - 1
	_, _, _, _ = a[t*astride+(k-1)*mr512+rows-1], b[k*nr512-1], c[(t*rows+rows-1)*ldc+n-1], bias[t*bstride+rows-1]
	m1, m2 := 0xFFFF, 0
	if n < 16 {
		m1 = 1<<n - 1
	} else {
		m2 = 1<<(n-16) - 1
	}
	// Prefetches never fault: pfb may point past b.
	sgemm512PRows[rows](tiles, k, &a[0], astride, &b[0], &c[0], ldc, alpha, flags, &bias[0], bstride, lo, hi, m1, m2, 4*pfb)
}

func im2colAVX512(s, nch, khw int, dst, src []float32, hw int, off []int, masks []uint16, sm0, sm1 int) {
	if nch <= 0 || khw <= 0 {
		return
	}
	// The caller guarantees that the lanes the masks select lie inside src
	// (at most the first element of the last channel is checked here).
	_, _, _, _ = dst[nch*khw*nr512-1], src[(nch-1)*hw], off[khw-1], masks[4*khw-1]
	if s == 1 {
		im2col512S1(nch, khw, &dst[0], &src[0], hw, &off[0], &masks[0], sm0, sm1)
	} else {
		im2col512S2(nch, khw, &dst[0], &src[0], hw, &off[0], &masks[0], sm0, sm1)
	}
}

func im2colTAVX512(nch, khw int, dst, src []float32, hw int, idx []int32, masks []uint16) {
	if nch <= 0 || khw <= 0 {
		return
	}
	// The caller guarantees that the masked lanes' offsets lie in [0, hw).
	_, _, _, _ = dst[nch*khw*mr512-1], src[nch*hw-1], idx[16*khw-1], masks[khw-1]
	im2colT512(nch, khw, &dst[0], &src[0], hw, &idx[0], &masks[0])
}

var im2colTL512 = [...]func(nch, khw int, dst, src *float32, hw int, off *int, masks *uint16){
	nil, im2colT512L1, im2colT512L2, im2colT512L3}

func im2colTLAVX512(segs, nch, khw int, dst, src []float32, hw int, off []int, masks []uint16) {
	if nch <= 0 || khw <= 0 {
		return
	}
	// The caller guarantees that the masked lanes lie inside each channel.
	_, _, _, _ = dst[nch*khw*mr512-1], src[nch*hw-1], off[segs*khw-1], masks[segs*khw-1]
	im2colTL512[segs](nch, khw, &dst[0], &src[0], hw, &off[0], &masks[0])
}

func transposeTAVX512(n int, src []float32, lds int, dst []float32, ldd, nb int, bias []float32, lo, hi float32) {
	if n <= 0 || nb <= 0 {
		return
	}
	if nb > 16 || (nb-1)*ldd+n-1 >= 1<<31 {
		panic("kernels: bad transpose block")
	}
	_, _, _ = src[(n-1)*lds+nb-1], dst[(nb-1)*ldd+n-1], bias[nb-1]
	var idx [16]int32
	for d := range idx[:nb] {
		idx[d] = int32(d * ldd)
	}
	transposeT512(n, &src[0], lds, &dst[0], &idx[0], 1<<nb-1, &bias[0], lo, hi)
}

func dwDirectAVX512(s, nc int, in []float32, inStride int, out []float32, h, w, oh, ow, padT, nchunks, xoff int, wt, bias []float32, lo, hi float32, masks, omasks []uint16, zero []float32) {
	if nc <= 0 || oh <= 0 || nchunks <= 0 {
		return
	}
	// The caller guarantees that the masked lanes lie inside the rows.
	_, _, _, _, _, _, _ = out[nc*oh*ow-1], in[(nc-1)*inStride+h*w-1], wt[9*nc-1], bias[nc-1], masks[4*nchunks-1], omasks[nchunks-1], zero[w-1]
	if s == 1 {
		dw3x3S1AVX512(nc, &in[0], inStride, &out[0], h, w, oh, ow, padT, nchunks, xoff, &wt[0], &bias[0], lo, hi, &masks[0], &omasks[0], &zero[0])
	} else {
		dw3x3S2AVX512(nc, &in[0], inStride, &out[0], h, w, oh, ow, padT, nchunks, xoff, &wt[0], &bias[0], lo, hi, &masks[0], &omasks[0], &zero[0])
	}
}

func maxPool3x3AVX512(s, nc int, in []float32, inStride int, out []float32, h, w, oh, ow, padT, nchunks, xoff int, masks, omasks []uint16, ninf []float32) {
	if nc <= 0 || oh <= 0 || nchunks <= 0 {
		return
	}
	// The caller guarantees that the masked lanes lie inside the rows.
	_, _, _, _, _ = out[nc*oh*ow-1], in[(nc-1)*inStride+h*w-1], masks[4*nchunks-1], omasks[nchunks-1], ninf[w-1]
	if s == 1 {
		maxPool3x3S1AVX512(nc, &in[0], inStride, &out[0], h, w, oh, ow, padT, nchunks, xoff, &masks[0], &omasks[0], &ninf[0])
	} else {
		maxPool3x3S2AVX512(nc, &in[0], inStride, &out[0], h, w, oh, ow, padT, nchunks, xoff, &masks[0], &omasks[0], &ninf[0])
	}
}

func addClampAVX512(n int, dst, a, b []float32, lo, hi float32) {
	if n <= 0 {
		return
	}
	_, _, _ = dst[n-1], a[n-1], b[n-1]
	addClamp512(n, &dst[0], &a[0], &b[0], lo, hi)
}

func copyRows32AVX2(n int, dst []float32, dstStride int, src []float32, srcStride, stride int) {
	copyRowsAVX2(n, dst, dstStride, src, srcStride, stride)
	copyRowsAVX2(n, dst[16:], dstStride, src[16*stride:], srcStride, stride)
}

func microKernelAVX2(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32) {
	_, _, _, _ = a[k*goMR-1], b[k*goNR-1], c[(goMR-1)*ldc+goNR-1], bias[goMR-1]
	sgemmKernelAVX2(1, k, &a[0], 0, &b[0], &c[0], ldc, alpha, flags, &bias[0], 0, lo, hi)
}

func microPanelAVX2(tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
	if tiles <= 0 {
		return
	}
	t := tiles - 1
	_, _, _, _ = a[t*astride+k*goMR-1], b[k*goNR-1], c[(t*goMR+goMR-1)*ldc+goNR-1], bias[t*bstride+goMR-1]
	sgemmKernelAVX2(tiles, k, &a[0], astride, &b[0], &c[0], ldc, alpha, flags, &bias[0], bstride, lo, hi)
}

func microKernel6x8AVX2(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32) {
	_, _, _, _ = a[k*goMR-1], b[k*goNR-1], c[(goMR-1)*ldc+7], bias[goMR-1]
	sgemmKernel6x8AVX2(1, k, &a[0], 0, &b[0], &c[0], ldc, alpha, flags, &bias[0], 0, lo, hi)
}
func dot4AVX2(n int, x, w []float32, ldw int, out *[4]float32) {
	if n == 0 {
		*out = [4]float32{}
		return
	}
	_, _ = x[n-1], w[3*ldw+n-1]
	sdot4AVX2(n, &x[0], &w[0], ldw, &out[0])
}

func axpyAVX2(n int, alpha float32, x, y []float32) {
	if n == 0 {
		return
	}
	_, _ = x[n-1], y[n-1]
	saxpyAVX2(n, alpha, &x[0], &y[0])
}

func dw3x3AVX2(s, rows, n int, out []float32, ldo int, in []float32, ldi int, w []float32, bias, lo, hi float32) {
	if rows <= 0 || n <= 0 {
		return
	}
	need := n + 2
	if s == 2 {
		need = 2*n + 2
	}
	_, _, _ = out[(rows-1)*ldo+n-1], in[((rows-1)*s+2)*ldi+need-1], w[8]
	if s == 1 {
		dw3x3s1AVX2(rows, n, &out[0], ldo, &in[0], ldi, &w[0], bias, lo, hi)
	} else {
		dw3x3s2AVX2(rows, n, &out[0], ldo, &in[0], ldi, &w[0], bias, lo, hi)
	}
}

func copyRowsAVX2(n int, dst []float32, dstStride int, src []float32, srcStride, stride int) {
	if n <= 0 {
		return
	}
	_, _ = dst[(n-1)*dstStride+15], src[(n-1)*srcStride+stride*15]
	if stride == 1 {
		copyRows16AVX2(n, &dst[0], dstStride, &src[0], srcStride)
	} else {
		copyRows16s2AVX2(n, &dst[0], dstStride, &src[0], srcStride)
	}
}
