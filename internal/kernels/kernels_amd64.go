//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

func init() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return
	}
	microKernel = microKernelAVX2
	microPanel = microPanelAVX2
	microKernel8 = microKernel6x8AVX2
	dot4 = dot4AVX2
	axpy = axpyAVX2
	dw3x3 = dw3x3AVX2
	peakFMA = peakFMAAVX2
	copyRows = copyRowsAVX2
	kernName = "avx2-fma"
}

func microKernelAVX2(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32) {
	_, _, _, _ = a[k*mr-1], b[k*nr-1], c[(mr-1)*ldc+nr-1], bias[mr-1]
	sgemmKernelAVX2(1, k, &a[0], 0, &b[0], &c[0], ldc, alpha, flags, &bias[0], 0, lo, hi)
}

func microPanelAVX2(tiles, k int, a []float32, astride int, b, c []float32, ldc int, alpha float32, flags int, bias []float32, bstride int, lo, hi float32) {
	if tiles <= 0 {
		return
	}
	t := tiles - 1
	_, _, _, _ = a[t*astride+k*mr-1], b[k*nr-1], c[(t*mr+mr-1)*ldc+nr-1], bias[t*bstride+mr-1]
	sgemmKernelAVX2(tiles, k, &a[0], astride, &b[0], &c[0], ldc, alpha, flags, &bias[0], bstride, lo, hi)
}

func microKernel6x8AVX2(k int, a, b, c []float32, ldc int, alpha float32, flags int, bias []float32, lo, hi float32) {
	_, _, _, _ = a[k*mr-1], b[k*nr-1], c[(mr-1)*ldc+7], bias[mr-1]
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
	_, _ = dst[(n-1)*dstStride+nr-1], src[(n-1)*srcStride+stride*(nr-1)]
	if stride == 1 {
		copyRows16AVX2(n, &dst[0], dstStride, &src[0], srcStride)
	} else {
		copyRows16s2AVX2(n, &dst[0], dstStride, &src[0], srcStride)
	}
}
