// Command asmgen generates the AVX2/FMA assembly kernels of package kernels
// with avo. Run it through go generate in internal/kernels (see gen.go):
//
//	go run ./asmgen -out kernels_amd64.s -stubs kernels_amd64_stubs.go -pkg kernels
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Micro-kernel tile: mr rows of packed A by nr columns of packed B.
const (
	mr = 6
	nr = 16
)

func main() {
	ConstraintExpr("amd64,!purego")
	sgemmKernel("sgemmKernelAVX2", 2)
	sgemmKernel("sgemmKernel6x8AVX2", 1)
	peakFMA()
	sdot4()
	saxpy()
	dw3x3s1()
	dw3x3s2()
	copyRows("copyRows16AVX2", 1)
	copyRows("copyRows16s2AVX2", 2)
	for rows := 1; rows <= mr512; rows++ {
		sgemm512(rows, false)
	}
	for rows := 1; rows <= mr512; rows++ {
		sgemm512(rows, true)
	}
	peakFMA512()
	im2col512(1)
	im2col512(2)
	for segs := 0; segs <= 3; segs++ {
		im2colT512(segs)
	}
	transposeT512()
	dw3x3512(1)
	dw3x3512(2)
	maxPool3x3512(1)
	maxPool3x3512(2)
	addClamp512()
	Generate()
}

// sgemmKernel generates the SGEMM micro-kernel for 6×(8·nvec) tiles. It
// runs over tiles consecutive row panels against one packed B panel (k
// groups of 16 floats): tile t uses the A panel at a + t*astride (k groups of
// 6 floats), writes C rows 6t..6t+5 and takes its bias from bias +
// t*bstride. The product times alpha is stored, optionally added to the old C
// (flag 1), then bias is added and the result clamped to [lo, hi] (flag 2).
func sgemmKernel(name string, nvec int) {
	cols := 8 * nvec
	TEXT(name, NOSPLIT, "func(tiles, k int, a *float32, astride int, b, c *float32, ldc int, alpha float32, flags int, bias *float32, bstride int, lo, hi float32)")
	Doc(fmt.Sprintf("%s computes tiles 6x%d tiles of C (row stride ldc) = alpha*A*B,", name, cols),
		"tile t from the packed 6-row A panel at a[t*astride:] and the packed 16-column",
		fmt.Sprintf("B panel b of depth k (only its first %d columns are used). Flag 1 adds the", cols),
		"old C; flag 2 then adds bias[t*bstride+r] to row r and clamps to [lo, hi].")
	// Loop state: RBX tiles left, RDX A panel, R12 C tile, R13 A stride
	// (bytes), R11 bias, R9 ldc (bytes). Per tile: RCX k, RSI a, RDI b, R8 c.
	tiles := Load(Param("tiles"), reg.RBX)
	abase := Load(Param("a"), reg.RDX)
	cbase := Load(Param("c"), reg.R12)
	astride := Load(Param("astride"), reg.R13)
	SHLQ(Imm(2), astride)
	pbias := Load(Param("bias"), reg.R11)
	ldc := Load(Param("ldc"), reg.R9)
	SHLQ(Imm(2), ldc)
	Label("tile")
	TESTQ(tiles, tiles)
	JE(LabelRef("end"))
	k := Load(Param("k"), reg.RCX)
	pa := reg.RSI
	MOVQ(abase, pa)
	pb := Load(Param("b"), reg.RDI)
	acc := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10, reg.Y11}[:mr*nvec]
	// acc[nvec*r+h] holds columns 8h..8h+7 of row r.
	for _, y := range acc {
		VXORPS(y, y, y)
	}
	body := func(u int) {
		bv := []reg.VecPhysical{reg.Y12, reg.Y13}
		for h := 0; h < nvec; h++ {
			VMOVUPS(Mem{Base: pb, Disp: u*nr*4 + 32*h}, bv[h])
		}
		for r := 0; r < mr; r++ {
			ya := reg.Y14
			if r%2 == 1 {
				ya = reg.Y15
			}
			VBROADCASTSS(Mem{Base: pa, Disp: (u*mr + r) * 4}, ya)
			for h := 0; h < nvec; h++ {
				VFMADD231PS(bv[h], ya, acc[nvec*r+h])
			}
		}
	}
	const unroll = 4
	CMPQ(k, Imm(unroll))
	JL(LabelRef("tail"))
	Label("loop4")
	for u := 0; u < unroll; u++ {
		body(u)
	}
	ADDQ(Imm(unroll*mr*4), pa)
	ADDQ(U32(unroll*nr*4), pb)
	SUBQ(Imm(unroll), k)
	CMPQ(k, Imm(unroll))
	JGE(LabelRef("loop4"))
	Label("tail")
	TESTQ(k, k)
	JE(LabelRef("done"))
	Label("loop1")
	body(0)
	ADDQ(Imm(mr*4), pa)
	ADDQ(Imm(nr*4), pb)
	DECQ(k)
	JNZ(LabelRef("loop1"))
	Label("done")

	pc := reg.R8
	MOVQ(cbase, pc)
	Load(Param("alpha"), reg.X14)
	VBROADCASTSS(reg.X14, reg.Y14)
	for _, y := range acc {
		VMULPS(reg.Y14, y, y)
	}
	flags := Load(Param("flags"), reg.RAX)
	// Accumulate: add the current C.
	TESTQ(U32(1), flags)
	JE(LabelRef("noaccum"))
	MOVQ(pc, reg.R10)
	for r := 0; r < mr; r++ {
		for h := 0; h < nvec; h++ {
			VADDPS(Mem{Base: reg.R10, Disp: 32 * h}, acc[nvec*r+h], acc[nvec*r+h])
		}
		if r < mr-1 {
			ADDQ(ldc, reg.R10)
		}
	}
	Label("noaccum")
	// Epilogue: add the per-row bias and clamp to [lo, hi]. The value is the
	// second source of VMAXPS/VMINPS so that NaN propagates.
	TESTQ(U32(2), flags)
	JE(LabelRef("store"))
	Load(Param("lo"), reg.X12)
	Load(Param("hi"), reg.X13)
	VBROADCASTSS(reg.X12, reg.Y12)
	VBROADCASTSS(reg.X13, reg.Y13)
	for r := 0; r < mr; r++ {
		VBROADCASTSS(Mem{Base: pbias, Disp: 4 * r}, reg.Y14)
		for h := 0; h < nvec; h++ {
			y := acc[nvec*r+h]
			VADDPS(reg.Y14, y, y)
			VMAXPS(y, reg.Y12, y)
			VMINPS(y, reg.Y13, y)
		}
	}
	Label("store")
	for r := 0; r < mr; r++ {
		for h := 0; h < nvec; h++ {
			VMOVUPS(acc[nvec*r+h], Mem{Base: pc, Disp: 32 * h})
		}
		if r < mr-1 {
			ADDQ(ldc, pc)
		}
	}
	// Next tile: A panel, 6 rows of C, bias.
	ADDQ(astride, abase)
	LEAQ(Mem{Base: ldc, Index: ldc, Scale: 2}, reg.R10)
	SHLQ(Imm(1), reg.R10)
	ADDQ(reg.R10, cbase)
	Load(Param("bstride"), reg.R10)
	SHLQ(Imm(2), reg.R10)
	ADDQ(reg.R10, pbias)
	DECQ(tiles)
	JMP(LabelRef("tile"))
	Label("end")
	VZEROUPPER()
	RET()
}

// peakFMA generates a loop of independent register-only FMAs: 12 vector FMAs
// (192 flops) per iteration.
func peakFMA() {
	TEXT("peakFMAAVX2", NOSPLIT, "func(n int)")
	Doc("peakFMAAVX2 runs n iterations of 12 independent 8-wide FMAs (192 flops each).")
	n := Load(Param("n"), reg.RCX)
	ys := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7, reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13}
	for _, y := range ys {
		VXORPS(y, y, y)
	}
	TESTQ(n, n)
	JE(LabelRef("done"))
	Label("loop")
	for i := 0; i < 12; i++ {
		VFMADD231PS(reg.Y12, reg.Y13, ys[i])
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// hsum reduces the 8 lanes of y into the low lane of its X view.
func hsum(y reg.VecVirtual) {
	t := XMM()
	VEXTRACTF128(Imm(1), y, t)
	VADDPS(t, y.AsX(), y.AsX())
	VHADDPS(y.AsX(), y.AsX(), y.AsX())
	VHADDPS(y.AsX(), y.AsX(), y.AsX())
}

// sdot4 generates out[r] = dot(x, w[r*ldw:][:n]) for r in 0..3.
func sdot4() {
	TEXT("sdot4AVX2", NOSPLIT, "func(n int, x, w *float32, ldw int, out *float32)")
	Doc("sdot4AVX2 computes out[r] = sum_i x[i]*w[r*ldw+i] for r = 0..3, i < n.")
	n := Load(Param("n"), GP64())
	px := Load(Param("x"), GP64())
	ldw := Load(Param("ldw"), GP64())
	SHLQ(Imm(2), ldw)
	var rows [4]reg.Register
	rows[0] = Load(Param("w"), GP64())
	for r := 1; r < 4; r++ {
		rows[r] = GP64()
		MOVQ(rows[r-1], rows[r])
		ADDQ(ldw, rows[r])
	}
	var acc [4][2]reg.VecVirtual
	for r := range acc {
		for u := range acc[r] {
			acc[r][u] = YMM()
			VXORPS(acc[r][u], acc[r][u], acc[r][u])
		}
	}
	i := GP64()
	XORQ(i, i)
	x0, x1 := YMM(), YMM()
	Label("dot_loop16")
	t := GP64()
	MOVQ(n, t)
	SUBQ(i, t)
	CMPQ(t, Imm(16))
	JL(LabelRef("dot_loop8"))
	VMOVUPS(Mem{Base: px, Index: i, Scale: 4}, x0)
	VMOVUPS(Mem{Base: px, Index: i, Scale: 4, Disp: 32}, x1)
	for r := 0; r < 4; r++ {
		VFMADD231PS(Mem{Base: rows[r], Index: i, Scale: 4}, x0, acc[r][0])
		VFMADD231PS(Mem{Base: rows[r], Index: i, Scale: 4, Disp: 32}, x1, acc[r][1])
	}
	ADDQ(Imm(16), i)
	JMP(LabelRef("dot_loop16"))
	Label("dot_loop8")
	CMPQ(t, Imm(8))
	JL(LabelRef("dot_reduce"))
	VMOVUPS(Mem{Base: px, Index: i, Scale: 4}, x0)
	for r := 0; r < 4; r++ {
		VFMADD231PS(Mem{Base: rows[r], Index: i, Scale: 4}, x0, acc[r][0])
	}
	ADDQ(Imm(8), i)
	Label("dot_reduce")
	for r := 0; r < 4; r++ {
		VADDPS(acc[r][1], acc[r][0], acc[r][0])
		hsum(acc[r][0])
	}
	Label("dot_tail")
	CMPQ(i, n)
	JGE(LabelRef("dot_done"))
	xs := XMM()
	VMOVSS(Mem{Base: px, Index: i, Scale: 4}, xs)
	for r := 0; r < 4; r++ {
		VFMADD231SS(Mem{Base: rows[r], Index: i, Scale: 4}, xs, acc[r][0].AsX())
	}
	INCQ(i)
	JMP(LabelRef("dot_tail"))
	Label("dot_done")
	out := Load(Param("out"), GP64())
	for r := 0; r < 4; r++ {
		VMOVSS(acc[r][0].AsX(), Mem{Base: out, Disp: 4 * r})
	}
	VZEROUPPER()
	RET()
}

// saxpy generates y[i] += alpha*x[i].
func saxpy() {
	TEXT("saxpyAVX2", NOSPLIT, "func(n int, alpha float32, x, y *float32)")
	Doc("saxpyAVX2 computes y[i] += alpha*x[i] for i < n.")
	n := Load(Param("n"), GP64())
	al := XMM()
	Load(Param("alpha"), al)
	ya := YMM()
	VBROADCASTSS(al, ya)
	px := Load(Param("x"), GP64())
	py := Load(Param("y"), GP64())
	i := GP64()
	XORQ(i, i)
	t := GP64()
	var v [4]reg.VecVirtual
	for u := range v {
		v[u] = YMM()
	}
	Label("axpy_loop32")
	MOVQ(n, t)
	SUBQ(i, t)
	CMPQ(t, Imm(32))
	JL(LabelRef("axpy_loop8"))
	for u := 0; u < 4; u++ {
		VMOVUPS(Mem{Base: py, Index: i, Scale: 4, Disp: 32 * u}, v[u])
		VFMADD231PS(Mem{Base: px, Index: i, Scale: 4, Disp: 32 * u}, ya, v[u])
		VMOVUPS(v[u], Mem{Base: py, Index: i, Scale: 4, Disp: 32 * u})
	}
	ADDQ(Imm(32), i)
	JMP(LabelRef("axpy_loop32"))
	Label("axpy_loop8")
	MOVQ(n, t)
	SUBQ(i, t)
	CMPQ(t, Imm(8))
	JL(LabelRef("axpy_tail"))
	VMOVUPS(Mem{Base: py, Index: i, Scale: 4}, v[0])
	VFMADD231PS(Mem{Base: px, Index: i, Scale: 4}, ya, v[0])
	VMOVUPS(v[0], Mem{Base: py, Index: i, Scale: 4})
	ADDQ(Imm(8), i)
	JMP(LabelRef("axpy_loop8"))
	Label("axpy_tail")
	CMPQ(i, n)
	JGE(LabelRef("axpy_done"))
	VMOVSS(Mem{Base: py, Index: i, Scale: 4}, v[0].AsX())
	VFMADD231SS(Mem{Base: px, Index: i, Scale: 4}, al, v[0].AsX())
	VMOVSS(v[0].AsX(), Mem{Base: py, Index: i, Scale: 4})
	INCQ(i)
	JMP(LabelRef("axpy_tail"))
	Label("axpy_done")
	VZEROUPPER()
	RET()
}

// dwSetup loads the common depthwise arguments: 9 broadcast weights, bias and
// the clamp bounds.
func dwSetup() (w [9]reg.VecVirtual, bias, lo, hi reg.VecVirtual) {
	pw := Load(Param("w"), GP64())
	for i := range w {
		w[i] = YMM()
		VBROADCASTSS(Mem{Base: pw, Disp: 4 * i}, w[i])
	}
	load := func(name string) reg.VecVirtual {
		x := XMM()
		Load(Param(name), x)
		y := YMM()
		VBROADCASTSS(x, y)
		return y
	}
	bias, lo, hi = load("bias"), load("lo"), load("hi")
	return
}

// dwRows generates the loop over output rows shared by the depthwise
// kernels: for each of the rows output rows it sets up pointers to the three
// input rows (stride s input rows apart) and calls body, which processes n
// outputs advancing the pointers itself.
func dwRows(name string, s int, body func(n, out reg.Register, rows [3]reg.Register), setup func()) {
	TEXT(name, NOSPLIT, "func(rows, n int, out *float32, ldo int, in *float32, ldi int, w *float32, bias, lo, hi float32)")
	Doc(fmt.Sprintf("%s computes rows output rows of n outputs (a multiple of 8):", name),
		fmt.Sprintf("out[y*ldo+x] = clamp(bias + sum_{ky,kx} w[3ky+kx]*in[(%dy+ky)*ldi + %dx+kx], lo, hi).", s, s))
	setup()
	nrows := Load(Param("rows"), GP64())
	outBase := Load(Param("out"), GP64())
	ldo := Load(Param("ldo"), GP64())
	SHLQ(Imm(2), ldo)
	inBase := Load(Param("in"), GP64())
	ldi := Load(Param("ldi"), GP64())
	SHLQ(Imm(2), ldi)
	step := GP64() // input advance per output row: s rows
	MOVQ(ldi, step)
	if s == 2 {
		SHLQ(Imm(1), step)
	}
	n, out := GP64(), GP64()
	var rows [3]reg.Register
	for i := range rows {
		rows[i] = GP64()
	}
	Label(name + "_row")
	TESTQ(nrows, nrows)
	JE(LabelRef(name + "_done"))
	Load(Param("n"), n)
	MOVQ(outBase, out)
	MOVQ(inBase, rows[0])
	LEAQ(Mem{Base: inBase, Index: ldi, Scale: 1}, rows[1])
	LEAQ(Mem{Base: rows[1], Index: ldi, Scale: 1}, rows[2])
	body(n, out, rows)
	ADDQ(ldo, outBase)
	ADDQ(step, inBase)
	DECQ(nrows)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// dw3x3s1 generates a 3x3 stride-1 depthwise convolution over zero-padded
// input rows.
func dw3x3s1() {
	var w [9]reg.VecVirtual
	var bias, lo, hi reg.VecVirtual
	dwRows("dw3x3s1AVX2", 1, func(n, out reg.Register, rows [3]reg.Register) {
		a0, a1 := YMM(), YMM()
		Label("s1_loop16")
		CMPQ(n, Imm(16))
		JL(LabelRef("s1_loop8"))
		VMOVAPS(bias, a0)
		VMOVAPS(bias, a1)
		for ky := 0; ky < 3; ky++ {
			for kx := 0; kx < 3; kx++ {
				VFMADD231PS(Mem{Base: rows[ky], Disp: 4 * kx}, w[3*ky+kx], a0)
				VFMADD231PS(Mem{Base: rows[ky], Disp: 4*kx + 32}, w[3*ky+kx], a1)
			}
		}
		VMAXPS(a0, lo, a0)
		VMAXPS(a1, lo, a1)
		VMINPS(a0, hi, a0)
		VMINPS(a1, hi, a1)
		VMOVUPS(a0, Mem{Base: out})
		VMOVUPS(a1, Mem{Base: out, Disp: 32})
		for r := 0; r < 3; r++ {
			ADDQ(Imm(64), rows[r])
		}
		ADDQ(Imm(64), out)
		SUBQ(Imm(16), n)
		JMP(LabelRef("s1_loop16"))
		Label("s1_loop8")
		CMPQ(n, Imm(8))
		JL(LabelRef("s1_next"))
		VMOVAPS(bias, a0)
		for ky := 0; ky < 3; ky++ {
			for kx := 0; kx < 3; kx++ {
				VFMADD231PS(Mem{Base: rows[ky], Disp: 4 * kx}, w[3*ky+kx], a0)
			}
		}
		VMAXPS(a0, lo, a0)
		VMINPS(a0, hi, a0)
		VMOVUPS(a0, Mem{Base: out})
		Label("s1_next")
	}, func() { w, bias, lo, hi = dwSetup() })
}

// dw3x3s2 generates a 3x3 stride-2 depthwise convolution. Even and odd input
// columns are separated with VSHUFPS, which leaves the 8 outputs in the lane
// order 0,1,4,5,2,3,6,7; one VPERMPD restores it.
func dw3x3s2() {
	var w [9]reg.VecVirtual
	var bias, lo, hi reg.VecVirtual
	dwRows("dw3x3s2AVX2", 2, func(n, out reg.Register, rows [3]reg.Register) {
		acc, a, t := YMM(), YMM(), YMM()
		Label("s2_loop")
		CMPQ(n, Imm(8))
		JL(LabelRef("s2_next"))
		VMOVAPS(bias, acc)
		for ky := 0; ky < 3; ky++ {
			r := rows[ky]
			VMOVUPS(Mem{Base: r}, a)
			VSHUFPS(Imm(0x88), Mem{Base: r, Disp: 32}, a, t)
			VFMADD231PS(t, w[3*ky], acc)
			VSHUFPS(Imm(0xDD), Mem{Base: r, Disp: 32}, a, t)
			VFMADD231PS(t, w[3*ky+1], acc)
			VMOVUPS(Mem{Base: r, Disp: 8}, a)
			VSHUFPS(Imm(0x88), Mem{Base: r, Disp: 40}, a, t)
			VFMADD231PS(t, w[3*ky+2], acc)
		}
		VMAXPS(acc, lo, acc)
		VMINPS(acc, hi, acc)
		VPERMPD(Imm(0xD8), acc, acc)
		VMOVUPS(acc, Mem{Base: out})
		for r := 0; r < 3; r++ {
			ADDQ(Imm(64), rows[r])
		}
		ADDQ(Imm(32), out)
		SUBQ(Imm(8), n)
		JMP(LabelRef("s2_loop"))
		Label("s2_next")
	}, func() { w, bias, lo, hi = dwSetup() })
}

// copyRows generates a loop that copies n rows of 16 floats, taking every
// element (stride 1) or every second element (stride 2) of the source rows:
// dst[r*dstStride+c] = src[r*srcStride+stride*c]. It packs im2col panels.
// The stride-2 version never reads past src[r*srcStride+30].
func copyRows(name string, stride int) {
	TEXT(name, NOSPLIT, "func(n int, dst *float32, dstStride int, src *float32, srcStride int)")
	Doc(fmt.Sprintf("%s sets dst[r*dstStride+c] = src[r*srcStride+%d*c] for r < n, c < 16.", name, stride))
	n := Load(Param("n"), GP64())
	dst := Load(Param("dst"), GP64())
	ds := Load(Param("dstStride"), GP64())
	SHLQ(Imm(2), ds)
	src := Load(Param("src"), GP64())
	ss := Load(Param("srcStride"), GP64())
	SHLQ(Imm(2), ss)
	a, b := YMM(), YMM()
	Label(name + "_loop")
	TESTQ(n, n)
	JE(LabelRef(name + "_done"))
	if stride == 1 {
		VMOVUPS(Mem{Base: src}, a)
		VMOVUPS(Mem{Base: src, Disp: 32}, b)
		VMOVUPS(a, Mem{Base: dst})
		VMOVUPS(b, Mem{Base: dst, Disp: 32})
	} else {
		// Outputs 0..7: even elements of src[0:8] and src[8:16].
		VMOVUPS(Mem{Base: src}, a)
		VSHUFPS(Imm(0x88), Mem{Base: src, Disp: 32}, a, b)
		VPERMPD(Imm(0xD8), b, b)
		VMOVUPS(b, Mem{Base: dst})
		// Outputs 8..15: even elements of src[16:24] and odd elements of
		// src[23:31] (imm 0xD8 picks lanes 0,2 of the first, 1,3 of the
		// second), so src[31] is never read.
		VMOVUPS(Mem{Base: src, Disp: 64}, a)
		VSHUFPS(Imm(0xD8), Mem{Base: src, Disp: 92}, a, b)
		VPERMPD(Imm(0xD8), b, b)
		VMOVUPS(b, Mem{Base: dst, Disp: 32})
	}
	ADDQ(ds, dst)
	ADDQ(ss, src)
	DECQ(n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
