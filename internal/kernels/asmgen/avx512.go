package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// AVX-512 micro-kernel tile: mr512 rows of packed A by nr512 columns (two zmm
// vectors) of packed B.
const (
	mr512 = 14
	nr512 = 32
)

var zmms = []reg.VecPhysical{
	reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
	reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
	reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31,
}

// sgemm512 generates the AVX-512 SGEMM micro-kernel for tiles of rows rows
// (rows <= mr512) by up to 32 columns. Packed A panels hold mr512 floats per
// k (only the first rows are read), packed B panels 32 floats per k. The
// column masks m1 (columns 0..15) and m2 (16..31) select the columns of C
// that are read and written; when m2 is 0 only the first 16 columns are
// computed. Like the AVX2 kernel it runs tiles tiles down a column of C and
// fuses alpha, accumulation (flag 1) and bias + clamp (flag 2) into the store.
//
// With pfB (sgemm512PR<rows>, extra parameter pfb) the k loop also prefetches
// into L2 the B panel pfb bytes on (the next panel of streamed weights, when
// B is the constant operand) instead of relying on the hardware prefetcher.
func sgemm512(rows int, pfB bool) {
	name := fmt.Sprintf("sgemm512R%d", rows)
	sig := "func(tiles, k int, a *float32, astride int, b, c *float32, ldc int, alpha float32, flags int, bias *float32, bstride int, lo, hi float32, m1, m2 int)"
	if pfB {
		name = fmt.Sprintf("sgemm512PR%d", rows)
		sig = sig[:len(sig)-1] + ", pfb int)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(fmt.Sprintf("%s computes tiles tiles of %dx32 (m2 != 0) or %dx16 (m2 == 0) of C", name, rows, rows),
		fmt.Sprintf("(row stride ldc) = alpha*A*B: tile t from the packed %d-row A panel at", mr512),
		"a[t*astride:] (first rows rows used) and the packed 32-column B panel b of depth",
		"k. Only the columns selected by the masks m1 (0..15) and m2 (16..31) of C are",
		"read and written. Flag 1 adds the old C; flag 2 then adds bias[t*bstride+r]",
		"to row r and clamps to [lo, hi].")
	tiles := Load(Param("tiles"), reg.RBX)
	abase := Load(Param("a"), reg.RDX)
	cbase := Load(Param("c"), reg.R12)
	astride := Load(Param("astride"), reg.R13)
	SHLQ(Imm(2), astride)
	pbias := Load(Param("bias"), reg.R11)
	ldc := Load(Param("ldc"), reg.R9)
	SHLQ(Imm(2), ldc)
	Load(Param("m1"), reg.RAX)
	KMOVW(reg.EAX, reg.K1)
	m2 := Load(Param("m2"), reg.R14)
	KMOVW(reg.R14L, reg.K2)
	// R15: rows*ldc bytes, the C advance per tile.
	IMUL3Q(Imm(uint64(rows)), ldc, reg.R15)

	// Two variants of the tile loop: two vectors per row, or one.
	for _, nvec := range []int{2, 1} {
		pfx := fmt.Sprintf("v%d_", nvec)
		if nvec == 2 {
			TESTQ(m2, m2)
			JE(LabelRef("v1_tile"))
		}
		acc := func(r, h int) reg.VecPhysical { return zmms[nvec*r+h] }
		bv := []reg.VecPhysical{reg.Z28, reg.Z29}
		av := []reg.VecPhysical{reg.Z30, reg.Z31}
		Label(pfx + "tile")
		TESTQ(tiles, tiles)
		JE(LabelRef("end"))
		k := Load(Param("k"), reg.RCX)
		pa := reg.RSI
		MOVQ(abase, pa)
		pb := Load(Param("b"), reg.RDI)
		pfb := reg.R10 // (the epilogue reuses R10)
		if pfB {
			Load(Param("pfb"), pfb)
		}
		for r := 0; r < rows; r++ {
			for h := 0; h < nvec; h++ {
				VXORPS(acc(r, h), acc(r, h), acc(r, h))
			}
		}
		body := func(u int, prefetch bool) {
			if prefetch {
				// The next tile's A panel (astride bytes on), which may
				// still be in memory (weights streamed once per run).
				PREFETCHT0(Mem{Base: pa, Index: astride, Scale: 1, Disp: u * 64})
				if pfB {
					for h := 0; h < 2; h++ {
						PREFETCHT1(Mem{Base: pb, Index: pfb, Scale: 1, Disp: u*nr512*4 + 64*h})
					}
				}
			}
			for h := 0; h < nvec; h++ {
				VMOVUPS(Mem{Base: pb, Disp: u*nr512*4 + 64*h}, bv[h])
			}
			for r := 0; r < rows; r++ {
				a := av[r%2]
				VBROADCASTSS(Mem{Base: pa, Disp: (u*mr512 + r) * 4}, a)
				for h := 0; h < nvec; h++ {
					VFMADD231PS(bv[h], a, acc(r, h))
				}
			}
		}
		const unroll = 4
		CMPQ(k, Imm(unroll))
		JL(LabelRef(pfx + "tail"))
		Label(pfx + "loop4")
		for u := 0; u < unroll; u++ {
			body(u, true)
		}
		ADDQ(Imm(unroll*mr512*4), pa)
		ADDQ(U32(unroll*nr512*4), pb)
		SUBQ(Imm(unroll), k)
		CMPQ(k, Imm(unroll))
		JGE(LabelRef(pfx + "loop4"))
		Label(pfx + "tail")
		TESTQ(k, k)
		JE(LabelRef(pfx + "done"))
		Label(pfx + "loop1")
		body(0, false)
		ADDQ(Imm(mr512*4), pa)
		ADDQ(Imm(nr512*4), pb)
		DECQ(k)
		JNZ(LabelRef(pfx + "loop1"))
		Label(pfx + "done")

		masks := []reg.OpmaskPhysical{reg.K1, reg.K2}
		pc := reg.R8
		MOVQ(cbase, pc)
		VBROADCASTSS(paramAddr("alpha"), reg.Z28)
		for r := 0; r < rows; r++ {
			for h := 0; h < nvec; h++ {
				VMULPS(reg.Z28, acc(r, h), acc(r, h))
			}
		}
		flags := Load(Param("flags"), reg.RAX)
		TESTQ(U32(1), flags)
		JE(LabelRef(pfx + "noaccum"))
		MOVQ(pc, reg.R10)
		for r := 0; r < rows; r++ {
			for h := 0; h < nvec; h++ {
				VADDPS(Mem{Base: reg.R10, Disp: 64 * h}, acc(r, h), masks[h], acc(r, h))
			}
			if r < rows-1 {
				ADDQ(ldc, reg.R10)
			}
		}
		Label(pfx + "noaccum")
		TESTQ(U32(2), flags)
		JE(LabelRef(pfx + "store"))
		VBROADCASTSS(paramAddr("lo"), reg.Z28)
		VBROADCASTSS(paramAddr("hi"), reg.Z29)
		for r := 0; r < rows; r++ {
			VBROADCASTSS(Mem{Base: pbias, Disp: 4 * r}, reg.Z30)
			for h := 0; h < nvec; h++ {
				z := acc(r, h)
				VADDPS(reg.Z30, z, z)
				// The value is the second source so that NaN propagates.
				VMAXPS(z, reg.Z28, z)
				VMINPS(z, reg.Z29, z)
			}
		}
		Label(pfx + "store")
		for r := 0; r < rows; r++ {
			for h := 0; h < nvec; h++ {
				VMOVUPS(acc(r, h), masks[h], Mem{Base: pc, Disp: 64 * h})
			}
			if r < rows-1 {
				ADDQ(ldc, pc)
			}
		}
		// Next tile.
		ADDQ(astride, abase)
		ADDQ(reg.R15, cbase)
		Load(Param("bstride"), reg.R10)
		SHLQ(Imm(2), reg.R10)
		ADDQ(reg.R10, pbias)
		DECQ(tiles)
		JMP(LabelRef(pfx + "tile"))
	}
	Label("end")
	VZEROUPPER()
	RET()
}

// peakFMA512 generates a loop of 24 independent register-only 16-wide FMAs
// (768 flops) per iteration.
func peakFMA512() {
	TEXT("peakFMA512", NOSPLIT, "func(n int)")
	Doc("peakFMA512 runs n iterations of 24 independent 16-wide FMAs (768 flops each).")
	n := Load(Param("n"), reg.RCX)
	for _, z := range zmms[:26] {
		VXORPS(z, z, z)
	}
	TESTQ(n, n)
	JE(LabelRef("done"))
	Label("loop")
	for i := 0; i < 24; i++ {
		VFMADD231PS(zmms[24], zmms[25], zmms[i])
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// paramAddr is the memory operand of a scalar parameter.
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// im2col512 generates the AVX-512 im2col panel packer for stride s (1 or 2):
// for every input channel c < nch and kernel tap t < khw it writes one
// 32-float row of the packed B panel,
//
//	dst[(c*khw+t)*32 + j] = mask(t, j) ? src[c*hw + off[t] + s*j] : 0
//
// for the lanes j selected by the store masks sm0 (0..15) and sm1 (16..31);
// other lanes of dst are left alone. masks[4t..4t+3] are the zeroing load
// masks of tap t: for s == 1 the lanes of the two 16-float loads at off[t]
// and off[t]+16, for s == 2 the (even) lanes of the four loads at off[t] +
// 0, 16, 32, 48, which VPERMT2PS de-interleaves. Masked-off lanes are never
// read, so off[t] may point outside the image (padding).
func im2col512(s int) {
	name := fmt.Sprintf("im2col512S%d", s)
	TEXT(name, NOSPLIT, "func(nch, khw int, dst, src *float32, hw int, off *int, masks *uint16, sm0, sm1 int)")
	Doc(fmt.Sprintf("%s packs nch*khw rows of a 32-column im2col panel (input stride %d), see im2col512.", name, s))
	nch := Load(Param("nch"), reg.RCX)
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	hw := Load(Param("hw"), reg.R9)
	SHLQ(Imm(2), hw)
	Load(Param("sm0"), reg.RAX)
	KMOVW(reg.EAX, reg.K5)
	Load(Param("sm1"), reg.RBX)
	KMOVW(reg.EBX, reg.K6)
	if s == 2 {
		idx := GLOBL("evenIdx512", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			DATA(4*i, U32(2*i))
		}
		VMOVUPS(idx, reg.Z31)
	}
	// Two copies of the loop: masked stores (several column segments) or
	// plain ones (the segment is the whole panel).
	ANDQ(reg.RBX, reg.RAX)
	CMPQ(reg.RAX, U32(0xFFFF))
	JE(LabelRef(name + "_full_ch"))
	for _, full := range []bool{false, true} {
		pfx := name + "_"
		if full {
			pfx += "full_"
		}
		Label(pfx + "ch")
		TESTQ(nch, nch)
		JE(LabelRef(name + "_done"))
		offs := Load(Param("off"), reg.R10)
		masks := Load(Param("masks"), reg.R11)
		t := Load(Param("khw"), reg.R12)
		Label(pfx + "tap")
		p := reg.R13
		MOVQ(Mem{Base: offs}, p)
		LEAQ(Mem{Base: src, Index: p, Scale: 4}, p)
		KMOVW(Mem{Base: masks}, reg.K1)
		KMOVW(Mem{Base: masks, Disp: 2}, reg.K2)
		out := []reg.VecPhysical{reg.Z0, reg.Z1}
		// The next panel reads the following 32*s floats of the same rows.
		PREFETCHT0(Mem{Base: p, Disp: 128 * s})
		PREFETCHT0(Mem{Base: p, Disp: 128*s + 64})
		if s == 1 {
			VMOVUPS_Z(Mem{Base: p}, reg.K1, reg.Z0)
			VMOVUPS_Z(Mem{Base: p, Disp: 64}, reg.K2, reg.Z1)
		} else {
			KMOVW(Mem{Base: masks, Disp: 4}, reg.K3)
			KMOVW(Mem{Base: masks, Disp: 6}, reg.K4)
			VMOVUPS_Z(Mem{Base: p}, reg.K1, reg.Z0)
			VMOVUPS_Z(Mem{Base: p, Disp: 64}, reg.K2, reg.Z1)
			VMOVUPS_Z(Mem{Base: p, Disp: 128}, reg.K3, reg.Z2)
			VMOVUPS_Z(Mem{Base: p, Disp: 192}, reg.K4, reg.Z3)
			VPERMT2PS(reg.Z1, reg.Z31, reg.Z0)
			VPERMT2PS(reg.Z3, reg.Z31, reg.Z2)
			out[1] = reg.Z2
		}
		if full {
			VMOVUPS(out[0], Mem{Base: dst})
			VMOVUPS(out[1], Mem{Base: dst, Disp: 64})
		} else {
			VMOVUPS(out[0], reg.K5, Mem{Base: dst})
			VMOVUPS(out[1], reg.K6, Mem{Base: dst, Disp: 64})
		}
		ADDQ(Imm(128), dst)
		ADDQ(Imm(8), offs)
		ADDQ(Imm(8), masks)
		DECQ(t)
		JNZ(LabelRef(pfx + "tap"))
		ADDQ(hw, src)
		DECQ(nch)
		JMP(LabelRef(pfx + "ch"))
	}
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// dw3x3512 generates the AVX-512 3×3 depthwise kernel for stride s (1 or
// 2). It computes nc consecutive channels (input channel base advancing by
// inStride floats, output contiguous), each of oh output rows of nchunks
// chunks of 16 outputs, reading the input rows in place: output row y reads
// input rows iy = y*s - padT + ky, or the zero row when iy is outside
// [0, h). Chunk c reads each of its rows with zeroing masked loads at float
// offset xoff + 16*s*c under the load masks masks[4c..4c+3], which select
// the lanes inside the image: for s == 1 three loads at +0, +1, +2 (kx =
// 0, 1, 2), for s == 2 four loads at +0, +16 (de-interleaved into kx = 0
// and 1) and +2, +18 (kx = 2). Output chunk c is stored under omasks[c];
// rows are ow floats apart. Channel i uses weights w[9i:] and bias[i].
func dw3x3512(s int) {
	name := fmt.Sprintf("dw3x3S%dAVX512", s)
	TEXT(name, NOSPLIT, "func(nc int, in *float32, inStride int, out *float32, h, w, oh, ow, padT, nchunks, xoff int, wt, bias *float32, lo, hi float32, masks, omasks *uint16, zero *float32)")
	Doc(fmt.Sprintf("%s computes nc channels of a 3x3 stride-%d depthwise convolution", name, s),
		"straight from the unpadded input, see dw3x3512.")
	wz := zmms[16:25] // Z16..Z24: the 9 weights
	zb, zlo, zhi := reg.Z25, reg.Z26, reg.Z27
	VBROADCASTSS(paramAddr("lo"), zlo)
	VBROADCASTSS(paramAddr("hi"), zhi)
	zeven, zodd := reg.Z28, reg.Z29
	if s == 2 {
		even, odd := deinterleaveIdx512()
		VMOVUPS(even, zeven)
		VMOVUPS(odd, zodd)
	}
	// Parameters that are updated in place as the loops advance.
	wtAddr, biasAddr := paramAddr("wt"), paramAddr("bias")
	nc := Load(Param("nc"), reg.RBX)
	base := Load(Param("in"), reg.RDX)
	out := Load(Param("out"), reg.R8)
	rows := []reg.GPPhysical{reg.R13, reg.R15, reg.R12}
	iy0, ny := reg.R10, reg.R11
	chunk, xo, mk, omk, po := reg.RCX, reg.RSI, reg.RDI, reg.R14, reg.R9

	Label(name + "_ch")
	TESTQ(nc, nc)
	JE(LabelRef(name + "_done"))
	MOVQ(wtAddr, reg.RAX)
	for i := range wz {
		VBROADCASTSS(Mem{Base: reg.RAX, Disp: 4 * i}, wz[i])
	}
	ADDQ(Imm(36), wtAddr)
	MOVQ(biasAddr, reg.RAX)
	VBROADCASTSS(Mem{Base: reg.RAX}, zb)
	ADDQ(Imm(4), biasAddr)
	Load(Param("padT"), iy0)
	NEGQ(iy0)
	Load(Param("oh"), ny)

	Label(name + "_row")
	TESTQ(ny, ny)
	JE(LabelRef(name + "_chdone"))
	rowPointers(rows, iy0, base, "zero")
	Load(Param("nchunks"), chunk)
	Load(Param("xoff"), xo)
	SHLQ(Imm(2), xo)
	Load(Param("masks"), mk)
	Load(Param("omasks"), omk)
	MOVQ(out, po)
	Label(name + "_chunk")
	acc := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2}
	VMOVAPS(zb, acc[0])
	VXORPS(acc[1], acc[1], acc[1])
	VXORPS(acc[2], acc[2], acc[2])
	KMOVW(Mem{Base: mk}, reg.K1)
	KMOVW(Mem{Base: mk, Disp: 2}, reg.K2)
	KMOVW(Mem{Base: mk, Disp: 4}, reg.K3)
	if s == 2 {
		KMOVW(Mem{Base: mk, Disp: 6}, reg.K4)
	}
	for ky := 0; ky < 3; ky++ {
		a := acc[ky]
		m := func(d int) Mem { return Mem{Base: rows[ky], Index: xo, Scale: 1, Disp: d} }
		if s == 1 {
			t := []reg.VecPhysical{reg.Z3, reg.Z4, reg.Z5}
			VMOVUPS_Z(m(0), reg.K1, t[0])
			VMOVUPS_Z(m(4), reg.K2, t[1])
			VMOVUPS_Z(m(8), reg.K3, t[2])
			for kx := 0; kx < 3; kx++ {
				VFMADD231PS(t[kx], wz[3*ky+kx], a)
			}
		} else {
			VMOVUPS_Z(m(0), reg.K1, reg.Z3)
			VMOVUPS_Z(m(64), reg.K2, reg.Z4)
			VMOVUPS_Z(m(8), reg.K3, reg.Z6)
			VMOVUPS_Z(m(72), reg.K4, reg.Z7)
			VMOVAPS(reg.Z3, reg.Z5)
			VPERMT2PS(reg.Z4, zeven, reg.Z3) // kx = 0
			VPERMT2PS(reg.Z4, zodd, reg.Z5)  // kx = 1
			VPERMT2PS(reg.Z7, zeven, reg.Z6) // kx = 2
			VFMADD231PS(reg.Z3, wz[3*ky], a)
			VFMADD231PS(reg.Z5, wz[3*ky+1], a)
			VFMADD231PS(reg.Z6, wz[3*ky+2], a)
		}
	}
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[2], acc[0], acc[0])
	VMAXPS(acc[0], zlo, acc[0])
	VMINPS(acc[0], zhi, acc[0])
	direct3x3Loops(name, s, acc[0], direct3x3Regs{nc, base, out, iy0, ny, chunk, xo, mk, omk, po})
}

// direct3x3Loops closes the chunk, row and channel loops of the 3×3 direct
// kernels (dw3x3512, maxPool3x3512): it stores chunk acc under its output
// mask, steps to the next chunk, output row and input plane, and returns.
func direct3x3Loops(name string, s int, acc reg.VecPhysical, r direct3x3Regs) {
	KMOVW(Mem{Base: r.omk}, reg.K5)
	VMOVUPS(acc, reg.K5, Mem{Base: r.po})
	ADDQ(Imm(64), r.po)
	ADDQ(Imm(uint64(64*s)), r.xo)
	ADDQ(Imm(8), r.mk)
	ADDQ(Imm(2), r.omk)
	DECQ(r.chunk)
	JNZ(LabelRef(name + "_chunk"))
	// Next output row.
	Load(Param("ow"), reg.RAX)
	LEAQ(Mem{Base: r.out, Index: reg.RAX, Scale: 4}, r.out)
	ADDQ(Imm(uint64(s)), r.iy0)
	DECQ(r.ny)
	JMP(LabelRef(name + "_row"))
	Label(name + "_chdone")
	Load(Param("inStride"), reg.RAX)
	LEAQ(Mem{Base: r.base, Index: reg.RAX, Scale: 4}, r.base)
	DECQ(r.nc)
	JMP(LabelRef(name + "_ch"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// direct3x3Regs are the loop registers of the 3×3 direct kernels.
type direct3x3Regs struct {
	nc, base, out                   reg.Register
	iy0, ny, chunk, xo, mk, omk, po reg.GPPhysical
}

// rowPointers sets rows[ky] to the input row iy0+ky of the plane at base
// (base + iy*w*4), or to the row in parameter outside when iy is outside
// [0, h): the row loads of the 3×3 direct kernels.
func rowPointers(rows []reg.GPPhysical, iy0 reg.GPPhysical, base reg.Register, outside string) {
	for ky, r := range rows {
		MOVQ(iy0, reg.RAX)
		if ky > 0 {
			ADDQ(Imm(uint64(ky)), reg.RAX)
		}
		MOVQ(reg.RAX, r)
		IMULQ(paramAddr("w"), r)
		LEAQ(Mem{Base: base, Index: r, Scale: 4}, r)
		CMPQ(reg.RAX, paramAddr("h"))
		CMOVQCC(paramAddr(outside), r) // iy < 0 or iy >= h (unsigned)
	}
}

var evenIdx512, oddIdx512, nanConst512 *Mem

// deinterleaveIdx512 returns the VPERMT2PS index vectors that pick the even
// and the odd floats of a 32-float pair of registers (defined once).
func deinterleaveIdx512() (even, odd Mem) {
	if evenIdx512 == nil {
		e := GLOBL("dwEvenIdx512", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			DATA(4*i, U32(2*i))
		}
		o := GLOBL("dwOddIdx512", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			DATA(4*i, U32(2*i+1))
		}
		evenIdx512, oddIdx512 = &e, &o
	}
	return *evenIdx512, *oddIdx512
}

// maxPool3x3512 generates the AVX-512 3×3 max-pooling kernel for stride s
// (1 or 2), laid out like dw3x3512: nc planes (input plane i at
// in + i*inStride floats, output planes contiguous), oh output rows of
// nchunks chunks of 16 outputs. Output row y reads input rows y*s - padT +
// ky, or the row ninf (all -Inf) when outside [0, h); chunk c loads at float
// offset xoff + 16*s*c under masks[4c..4c+3] with merge masking into -Inf,
// so padding never wins. A NaN anywhere in a window makes its output NaN
// (VMAXPS alone would drop it): every tap's NaN lanes are collected in K7.
func maxPool3x3512(s int) {
	name := fmt.Sprintf("maxPool3x3S%dAVX512", s)
	TEXT(name, NOSPLIT, "func(nc int, in *float32, inStride int, out *float32, h, w, oh, ow, padT, nchunks, xoff int, masks, omasks *uint16, ninf *float32)")
	Doc(fmt.Sprintf("%s max-pools nc planes with a 3x3 window and stride %d", name, s),
		"straight from the unpadded input, see maxPool3x3512.")
	zninf, znan := reg.Z26, reg.Z27
	Load(Param("ninf"), reg.RAX)
	VBROADCASTSS(Mem{Base: reg.RAX}, zninf)
	if nanConst512 == nil {
		c := GLOBL("poolNaN512", RODATA|NOPTR)
		DATA(0, U32(0x7fc00000))
		nanConst512 = &c
	}
	VBROADCASTSS(*nanConst512, znan)
	zeven, zodd := reg.Z28, reg.Z29
	if s == 2 {
		even, odd := deinterleaveIdx512()
		VMOVUPS(even, zeven)
		VMOVUPS(odd, zodd)
	}
	nc := Load(Param("nc"), reg.RBX)
	base := Load(Param("in"), reg.RDX)
	out := Load(Param("out"), reg.R8)
	rows := []reg.GPPhysical{reg.R13, reg.R15, reg.R12}
	iy0, ny := reg.R10, reg.R11
	chunk, xo, mk, omk, po := reg.RCX, reg.RSI, reg.RDI, reg.R14, reg.R9

	Label(name + "_ch")
	TESTQ(nc, nc)
	JE(LabelRef(name + "_done"))
	Load(Param("padT"), iy0)
	NEGQ(iy0)
	Load(Param("oh"), ny)

	Label(name + "_row")
	TESTQ(ny, ny)
	JE(LabelRef(name + "_chdone"))
	rowPointers(rows, iy0, base, "ninf")
	Load(Param("nchunks"), chunk)
	Load(Param("xoff"), xo)
	SHLQ(Imm(2), xo)
	Load(Param("masks"), mk)
	Load(Param("omasks"), omk)
	MOVQ(out, po)
	Label(name + "_chunk")
	acc := reg.Z0
	VMOVAPS(zninf, acc)
	KXORW(reg.K7, reg.K7, reg.K7)
	KMOVW(Mem{Base: mk}, reg.K1)
	KMOVW(Mem{Base: mk, Disp: 2}, reg.K2)
	KMOVW(Mem{Base: mk, Disp: 4}, reg.K3)
	if s == 2 {
		KMOVW(Mem{Base: mk, Disp: 6}, reg.K4)
	}
	tap := func(t reg.VecPhysical) {
		VCMPPS(Imm(3), t, t, reg.K6) // unordered: NaN lanes
		KORW(reg.K6, reg.K7, reg.K7)
		VMAXPS(t, acc, acc)
	}
	for ky := 0; ky < 3; ky++ {
		m := func(d int) Mem { return Mem{Base: rows[ky], Index: xo, Scale: 1, Disp: d} }
		if s == 1 {
			t := []reg.VecPhysical{reg.Z3, reg.Z4, reg.Z5}
			for kx, k := range []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3} {
				VMOVAPS(zninf, t[kx])
				VMOVUPS(m(4*kx), k, t[kx])
			}
			for kx := range t {
				tap(t[kx])
			}
		} else {
			for _, z := range []reg.VecPhysical{reg.Z3, reg.Z4, reg.Z6, reg.Z7} {
				VMOVAPS(zninf, z)
			}
			VMOVUPS(m(0), reg.K1, reg.Z3)
			VMOVUPS(m(64), reg.K2, reg.Z4)
			VMOVUPS(m(8), reg.K3, reg.Z6)
			VMOVUPS(m(72), reg.K4, reg.Z7)
			VMOVAPS(reg.Z3, reg.Z5)
			VPERMT2PS(reg.Z4, zeven, reg.Z3) // kx = 0
			VPERMT2PS(reg.Z4, zodd, reg.Z5)  // kx = 1
			VPERMT2PS(reg.Z7, zeven, reg.Z6) // kx = 2
			tap(reg.Z3)
			tap(reg.Z5)
			tap(reg.Z6)
		}
	}
	VMOVAPS(znan, reg.K7, acc)
	direct3x3Loops(name, s, acc, direct3x3Regs{nc, base, out, iy0, ny, chunk, xo, mk, omk, po})
}

// addClamp512 generates dst[i] = min(max(a[i] + b[i], lo), hi) for i < n:
// a residual Add with a fused Relu/Clip. 64 floats per iteration, then 16,
// then a masked tail. A NaN sum stays NaN (the clamp returns its second
// source when either is NaN).
func addClamp512() {
	TEXT("addClamp512", NOSPLIT, "func(n int, dst, a, b *float32, lo, hi float32)")
	Doc("addClamp512 sets dst[i] = min(max(a[i]+b[i], lo), hi) for i < n.")
	n, d, pa, pb := reg.RCX, reg.RDI, reg.RSI, reg.RDX
	Load(Param("n"), n)
	Load(Param("dst"), d)
	Load(Param("a"), pa)
	Load(Param("b"), pb)
	zlo, zhi := reg.Z30, reg.Z31
	VBROADCASTSS(paramAddr("lo"), zlo)
	VBROADCASTSS(paramAddr("hi"), zhi)
	step := func(off int, z reg.VecPhysical, k reg.OpmaskPhysical) {
		m := func(base reg.GPPhysical) Mem { return Mem{Base: base, Disp: off} }
		if k == nil {
			VMOVUPS(m(pa), z)
			VADDPS(m(pb), z, z)
		} else {
			VMOVUPS_Z(m(pa), k, z)
			VMOVUPS_Z(m(pb), k, reg.Z8)
			VADDPS(reg.Z8, z, z)
		}
		VMAXPS(z, zlo, z)
		VMINPS(z, zhi, z)
		if k == nil {
			VMOVUPS(z, m(d))
		} else {
			VMOVUPS(z, k, m(d))
		}
	}
	Label("addClamp512_x4")
	CMPQ(n, Imm(64))
	JL(LabelRef("addClamp512_x1"))
	for u := 0; u < 4; u++ {
		step(64*u, zmms[u], nil)
	}
	for _, r := range []reg.GPPhysical{d, pa, pb} {
		ADDQ(U32(256), r)
	}
	SUBQ(Imm(64), n)
	JMP(LabelRef("addClamp512_x4"))
	Label("addClamp512_x1")
	CMPQ(n, Imm(16))
	JL(LabelRef("addClamp512_tail"))
	step(0, reg.Z0, nil)
	for _, r := range []reg.GPPhysical{d, pa, pb} {
		ADDQ(Imm(64), r)
	}
	SUBQ(Imm(16), n)
	JMP(LabelRef("addClamp512_x1"))
	Label("addClamp512_tail")
	TESTQ(n, n)
	JE(LabelRef("addClamp512_done"))
	// mask of the n (< 16) remaining lanes
	MOVL(U32(1), reg.EAX)
	SHLL(reg.CL, reg.EAX)
	DECL(reg.EAX)
	KMOVW(reg.EAX, reg.K1)
	step(0, reg.Z0, reg.K1)
	Label("addClamp512_done")
	VZEROUPPER()
	RET()
}

// im2colT512 generates the packers of transposed im2col panels, the packed
// A operand of Cᵀ = Bᵀ·Aᵀ (output pixels as the mr512 rows of a tile): for
// every input channel c < nch and kernel tap t < khw they write one group of
// mr512 floats, dst[(c*khw+t)*mr512 + j] for j < mr512, from channel c of
// src (hw floats apart); lanes masked off below are 0.
//
// With segs == 0 (im2colT512) one masked VGATHERDPS per group reads lane j
// from src[c*hw + idx[16t+j]] under the mask masks[t] (padding lanes and
// pixels past the image are masked off and never read). With segs > 0
// (im2colT512L<segs>, stride-1 convolutions, where the pixels of one output
// row read consecutive inputs) segs masked loads per group, merged, read
// lane j from src[c*hw + off[segs*t+s] + j] under masks[segs*t+s] (the
// lanes of the panel's output row s).
func im2colT512(segs int) {
	name := "im2colT512"
	sig := "func(nch, khw int, dst, src *float32, hw int, idx *int32, masks *uint16)"
	if segs > 0 {
		name = fmt.Sprintf("im2colT512L%d", segs)
		sig = "func(nch, khw int, dst, src *float32, hw int, off *int, masks *uint16)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name+" packs nch*khw groups of 14 floats of a transposed im2col panel, see", "im2colT512.")
	nch := Load(Param("nch"), reg.RCX)
	dst := Load(Param("dst"), reg.RDI)
	src := Load(Param("src"), reg.RSI)
	hw := Load(Param("hw"), reg.R9)
	SHLQ(Imm(2), hw)
	MOVL(U32(1<<mr512-1), reg.EAX)
	KMOVW(reg.EAX, reg.K7)
	Label(name + "_ch")
	TESTQ(nch, nch)
	JE(LabelRef(name + "_done"))
	var tab reg.GPPhysical = reg.R10
	if segs == 0 {
		Load(Param("idx"), tab)
	} else {
		Load(Param("off"), tab)
	}
	masks := Load(Param("masks"), reg.R11)
	t := Load(Param("khw"), reg.R12)
	Label(name + "_tap")
	VXORPS(reg.Z0, reg.Z0, reg.Z0)
	if segs == 0 {
		VMOVDQU32(Mem{Base: tab}, reg.Z1)
		KMOVW(Mem{Base: masks}, reg.K1)
		VGATHERDPS(Mem{Base: src, Index: reg.Z1, Scale: 4}, reg.K1, reg.Z0)
		ADDQ(Imm(64), tab)
		ADDQ(Imm(2), masks)
	} else {
		ks := []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3, reg.K4}
		ps := []reg.GPPhysical{reg.R13, reg.R14, reg.R15, reg.RAX}
		for i := 0; i < segs; i++ {
			MOVQ(Mem{Base: tab, Disp: 8 * i}, ps[i])
			KMOVW(Mem{Base: masks, Disp: 2 * i}, ks[i])
		}
		for i := 0; i < segs; i++ {
			VMOVUPS(Mem{Base: src, Index: ps[i], Scale: 4}, ks[i], reg.Z0)
		}
		ADDQ(Imm(uint64(8*segs)), tab)
		ADDQ(Imm(uint64(2*segs)), masks)
	}
	VMOVUPS(reg.Z0, reg.K7, Mem{Base: dst})
	ADDQ(Imm(4*mr512), dst)
	DECQ(t)
	JNZ(LabelRef(name + "_tap"))
	ADDQ(hw, src)
	DECQ(nch)
	JMP(LabelRef(name + "_ch"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// transposeT512 generates the write-back of the transposed path: for i < n
// and the lanes d of the mask m (d < 16),
//
//	dst[idx[d] + i] = min(max(src[i*lds + d] + bias[d], lo), hi)
//
// one 16-channel row of Cᵀ per pixel i, scattered into 16 output channels
// (idx[d] = d*OutH*OutW). NaN propagates through the clamp.
func transposeT512() {
	name := "transposeT512"
	TEXT(name, NOSPLIT, "func(n int, src *float32, lds int, dst *float32, idx *int32, m int, bias *float32, lo, hi float32)")
	Doc(name+" writes n pixels of 16 channels of Cᵀ transposed, with bias and", "clamp, see transposeT512.")
	n := Load(Param("n"), reg.RCX)
	src := Load(Param("src"), reg.RSI)
	lds := Load(Param("lds"), reg.R9)
	SHLQ(Imm(2), lds)
	dst := Load(Param("dst"), reg.RDI)
	Load(Param("idx"), reg.RAX)
	VMOVDQU32(Mem{Base: reg.RAX}, reg.Z1)
	Load(Param("m"), reg.RAX)
	KMOVW(reg.EAX, reg.K1)
	Load(Param("bias"), reg.RAX)
	VMOVUPS_Z(Mem{Base: reg.RAX}, reg.K1, reg.Z2)
	VBROADCASTSS(paramAddr("lo"), reg.Z3)
	VBROADCASTSS(paramAddr("hi"), reg.Z4)
	Label(name + "_loop")
	TESTQ(n, n)
	JE(LabelRef(name + "_done"))
	VMOVUPS_Z(Mem{Base: src}, reg.K1, reg.Z0)
	VADDPS(reg.Z2, reg.Z0, reg.Z0)
	// The value is the second source so that NaN propagates.
	VMAXPS(reg.Z0, reg.Z3, reg.Z0)
	VMINPS(reg.Z0, reg.Z4, reg.Z0)
	KMOVW(reg.K1, reg.K2) // the scatter clears its mask
	VSCATTERDPS(reg.Z0, reg.K2, Mem{Base: dst, Index: reg.Z1, Scale: 4})
	ADDQ(lds, src)
	ADDQ(Imm(4), dst)
	DECQ(n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
