package kernels

import (
	"fmt"
	"math"
	"runtime"
)

// ConvParams describes a 2-D convolution of one image (batch is the caller's
// loop). Padding at the bottom and right is implied by OutH and OutW.
type ConvParams struct {
	InC, InH, InW    int
	OutC, OutH, OutW int
	KH, KW           int
	StrideH, StrideW int
	DilH, DilW       int
	PadT, PadL       int
	Group            int
}

// Conv is a convolution with prepared (packed) weights, bias and a fused
// activation. Run keeps no state in the Conv, so a Conv may be reused and
// run concurrently.
//
// Ordinary and grouped convolutions run as one GEMM per group: the weights
// of the group, OutC/Group × (InC/Group·KH·KW), are packed once by NewConv as
// the A operand; Run packs B panels straight from the image (implicit
// im2col), or uses the image itself as B for 1×1 stride-1 unpadded
// convolutions. Bias and activation are applied to each output tile as soon
// as it is complete. Depthwise convolutions (InC/Group == 1, any channel
// multiplier) use a direct kernel.
//
// Convolutions with small output images, where the output pixels fill the
// micro-kernel's 32 columns badly (7×7: 49 = 32 + 17 columns cost 64), run
// transposed on the AVX-512 set: Cᵀ = im2colᵀ·Wᵀ with the output pixels as
// the tile rows (a partial row panel costs only its rows) and the output
// channels as the columns. NewConv then packs Wᵀ as the B operand instead of
// W; Run packs the transposed im2col panels with gathers, runs the GEMM into
// a scratch Cᵀ and writes its transpose with bias and activation.
type Conv struct {
	ks     *kernelSet
	p      ConvParams
	weight []float32 // [OutC, InC/Group, KH, KW]
	bias   []float32 // [OutC] or nil
	act    Act

	depthwise bool
	direct    bool        // 1×1, stride 1, no padding: the image is B
	packed    [][]float32 // per group: packed A panels
	kdim      int         // InC/Group*KH*KW

	// Transposed path (see useTransposed), instead of packed.
	trans   bool
	packedT []float32 // Wᵀ (kdim × OutC) as packed B panels
	tIdx    []int32   // gather: per pixel panel and kernel tap, 16 offsets in a channel
	tSegs   int       // > 0: masked loads of tSegs output-row segments instead
	tOff    []int     // per pixel panel, kernel tap and segment: offset of lane 0
	tMask   []uint16  // per pixel panel, kernel tap (and segment): lanes inside the image
}

// NewConv prepares a convolution. weight is [OutC, InC/Group, KH, KW];
// bias is [OutC] or nil.
func NewConv(p ConvParams, weight, bias []float32, act Act) (*Conv, error) {
	if p.Group <= 0 || p.InC%p.Group != 0 || p.OutC%p.Group != 0 {
		return nil, fmt.Errorf("conv: %d input and %d output channels do not divide into %d groups", p.InC, p.OutC, p.Group)
	}
	if len(weight) != p.OutC*(p.InC/p.Group)*p.KH*p.KW {
		return nil, fmt.Errorf("conv: weight has %d values, want %d", len(weight), p.OutC*(p.InC/p.Group)*p.KH*p.KW)
	}
	if bias != nil && len(bias) != p.OutC {
		return nil, fmt.Errorf("conv: bias has %d values, want %d", len(bias), p.OutC)
	}
	if p.StrideH <= 0 || p.StrideW <= 0 || p.DilH <= 0 || p.DilW <= 0 || p.KH <= 0 || p.KW <= 0 {
		return nil, fmt.Errorf("conv: strides, dilations and kernel sizes must be positive: %+v", p)
	}
	c := &Conv{ks: active, p: p, weight: weight, bias: bias, act: act}
	icg, ocg := p.InC/p.Group, p.OutC/p.Group
	c.kdim = icg * p.KH * p.KW
	if icg == 1 {
		c.depthwise = true
		return c, nil
	}
	c.direct = p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 &&
		p.PadT == 0 && p.PadL == 0 && p.OutH == p.InH && p.OutW == p.InW
	if p.Group == 1 && c.useTransposed() {
		c.prepareTransposed()
		return c, nil
	}
	mr := c.ks.mr
	mp := ceilDiv(ocg, mr)
	c.packed = make([][]float32, p.Group)
	for g := range c.packed {
		c.packed[g] = make([]float32, mp*mr*c.kdim)
		packA(mr, c.packed[g], false, ocg, c.kdim, weight[g*ocg*c.kdim:], c.kdim, 0, mp)
	}
	return c, nil
}

// Params returns the convolution's parameters.
func (c *Conv) Params() ConvParams { return c.p }

// Run convolves in [InC, InH, InW] into out [OutC, OutH, OutW].
func (c *Conv) Run(pool *Pool, in, out []float32) {
	p := c.p
	if len(in) < p.InC*p.InH*p.InW || len(out) < p.OutC*p.OutH*p.OutW {
		panic(fmt.Sprintf("conv: input has %d values (want %d), output %d (want %d)",
			len(in), p.InC*p.InH*p.InW, len(out), p.OutC*p.OutH*p.OutW))
	}
	if p.OutH*p.OutW == 0 || p.OutC == 0 {
		return
	}
	if c.depthwise {
		c.runDepthwise(pool, in, out)
		return
	}
	if c.trans {
		c.runTransposed(pool, in, out)
		return
	}
	t := pool.Threads()
	if p.Group > 1 && t > 1 && (p.Group%t == 0 || p.Group >= 4*t) {
		// Enough groups to keep every thread busy with whole GEMMs.
		pool.Parallel(p.Group, func(lo, hi int) {
			for g := lo; g < hi; g++ {
				c.runGroup(nil, g, in, out)
			}
		})
		return
	}
	for g := 0; g < p.Group; g++ {
		c.runGroup(pool, g, in, out)
	}
}

func (c *Conv) runGroup(pool *Pool, g int, in, out []float32) {
	p := c.p
	icg, ocg := p.InC/p.Group, p.OutC/p.Group
	hw, ohw := p.InH*p.InW, p.OutH*p.OutW
	gin := in[g*icg*hw : (g+1)*icg*hw]
	var src bSource
	if c.direct {
		src = &matB{b: gin, ldb: hw}
	} else {
		src = &im2col{p: &c.p, in: gin}
	}
	var bias []float32
	if c.bias != nil {
		bias = c.bias[g*ocg : (g+1)*ocg]
	}
	epi := newEpilogue(bias, c.act)
	j := gemmJob{ks: c.ks, m: ocg, n: ohw, k: c.kdim, alpha: 1, pa: c.packed[g], bsrc: src, kAlign: p.KH * p.KW,
		c: out[g*ocg*ohw : (g+1)*ocg*ohw], ldc: ohw, epi: epi}
	j.run(pool)
}

// WorkspaceBytes is the scratch memory Run uses beyond its input and output
// (for GOMAXPROCS threads).
func (c *Conv) WorkspaceBytes() int64 {
	p := c.p
	if c.trans {
		pa := ceilDiv(p.OutH*p.OutW, c.ks.mr) * c.ks.mr * c.kdim
		return (int64(pa)*int64(runtime.GOMAXPROCS(0)) + int64(p.OutH*p.OutW*p.OutC)) * 4
	}
	var per int
	if c.depthwise {
		s := max(p.StrideW, 1)
		ow8 := ceilDiv(p.OutW, 8) * 8
		per = ((p.OutH-1)*p.StrideH+p.KH)*(s*ow8+p.KW+8) + ow8
	} else {
		kc := ceilDiv(c.kdim, ceilDiv(c.kdim, blockKC))
		per = kc * blockNC
	}
	return int64(per) * 4 * int64(runtime.GOMAXPROCS(0))
}

// maxTransposedScratch bounds the scratch of the transposed path (packed
// im2colᵀ and Cᵀ) in bytes.
const maxTransposedScratch = 4 << 20

// forceTransposed makes NewConv take the transposed path wherever the kernel
// set has it (tests).
var forceTransposed bool

// Costs of the transposed path in units of one k step of an mr×nr tile (14
// cycles) on Zen 5: a group of mr pixels packed with one VGATHERDPS or with
// masked loads (stride 1), measured, and an output value scattered back
// from Cᵀ, fitted to the measured speed of both paths on ResNet-18,
// VGG-16 and MobileNetV2 layers. packCost is the normal path's cost of a B
// panel (per k).
const (
	transGatherCost = 1.6
	transLoadCost   = 0.6
	transOutCost    = 0.1
)

// useTransposed reports whether an ungrouped convolution runs transposed:
// when the kernel set has the kernels, the scratch is small and Cᵀ, with its
// packing and write-back, costs clearly less than C (OutC × OutH·OutW).
func (c *Conv) useTransposed() bool {
	p := c.p
	ks := c.ks
	ohw := p.OutH * p.OutW
	if ks.im2colT == nil || ks.transposeT == nil || p.InH*p.InW >= 1<<31 || p.OutC*ohw >= 1<<31 {
		return false
	}
	if forceTransposed {
		return true
	}
	if (ceilDiv(ohw, ks.mr)*ks.mr*c.kdim+ohw*p.OutC)*4 > maxTransposedScratch {
		return false
	}
	k := float64(c.kdim)
	normal := tileSlots(ks, p.OutC, ohw)*k + packCost*float64(ceilDiv(ohw, ks.nr))*k
	pack := transGatherCost
	if p.StrideW == 1 {
		pack = transLoadCost
	}
	trans := tileSlots(ks, ohw, p.OutC)*k + pack*float64(ceilDiv(ohw, ks.mr))*k +
		transOutCost*float64(ohw*p.OutC)
	return trans < 0.9*normal
}

// tileSlots is the micro-kernel work of an m×n product in mr×nr tiles: a
// partial row panel costs its share of rows (one kernel per row count), a
// partial column panel a whole tile, or half of one with at most nr/2
// columns (one vector per row).
func tileSlots(ks *kernelSet, m, n int) float64 {
	mr, nr := ks.mr, ks.nr
	rows := float64(m/mr) + float64(m%mr)/float64(mr)
	cols := float64(n / nr)
	if e := n % nr; e > nr/2 {
		cols++
	} else if e > 0 {
		cols += 0.5
	}
	return rows * cols
}

// prepareTransposed packs Wᵀ (kdim × OutC, rows in im2col order: channel,
// then kernel tap) as B panels and the gather tables of the pixel panels.
func (c *Conv) prepareTransposed() {
	p := c.p
	ks := c.ks
	mr, nr, k := ks.mr, ks.nr, c.kdim
	np := ceilDiv(p.OutC, nr)
	c.packedT = make([]float32, np*nr*k)
	w := matB{trans: true, b: c.weight, ldb: k}
	for jp := 0; jp < np; jp++ {
		w.pack(ks, c.packedT[jp*nr*k:(jp+1)*nr*k], 0, k, jp*nr, min(nr, p.OutC-jp*nr))
	}
	khw, ohw := p.KH*p.KW, p.OutH*p.OutW
	mp := ceilDiv(ohw, mr)
	c.trans = true
	if p.StrideW == 1 && ks.im2colTL != nil {
		// A panel's pixels on one output row read consecutive inputs:
		// one masked load per row (segment) and tap.
		segs := 0
		for ip := 0; ip < mp; ip++ {
			first, last := ip*mr, min(ohw, ip*mr+mr)-1
			segs = max(segs, last/p.OutW-first/p.OutW+1)
		}
		if segs <= 3 {
			c.prepareSegments(segs)
			return
		}
	}
	c.tIdx = make([]int32, mp*khw*16)
	c.tMask = make([]uint16, mp*khw)
	for pix := 0; pix < ohw; pix++ {
		ip, j := pix/mr, pix%mr
		oy, ox := pix/p.OutW, pix%p.OutW
		for ky := 0; ky < p.KH; ky++ {
			iy := oy*p.StrideH - p.PadT + ky*p.DilH
			for kx := 0; kx < p.KW; kx++ {
				ix := ox*p.StrideW - p.PadL + kx*p.DilW
				if uint(iy) < uint(p.InH) && uint(ix) < uint(p.InW) {
					t := ip*khw + ky*p.KW + kx
					c.tIdx[t*16+j] = int32(iy*p.InW + ix)
					c.tMask[t] |= 1 << j
				}
			}
		}
	}
}

// prepareSegments builds the masked-load tables of a stride-1 transposed
// convolution whose pixel panels span at most segs output rows.
func (c *Conv) prepareSegments(segs int) {
	p := c.p
	mr := c.ks.mr
	khw, ohw := p.KH*p.KW, p.OutH*p.OutW
	mp := ceilDiv(ohw, mr)
	c.tSegs = segs
	c.tOff = make([]int, mp*khw*segs)
	c.tMask = make([]uint16, mp*khw*segs)
	for ip := 0; ip < mp; ip++ {
		for pix, s := ip*mr, 0; pix < min(ohw, ip*mr+mr); s++ {
			oy, ox0 := pix/p.OutW, pix%p.OutW
			c0 := pix - ip*mr
			n := min(p.OutW-ox0, ip*mr+mr-pix, ohw-pix) // lanes c0..c0+n-1
			for ky := 0; ky < p.KH; ky++ {
				iy := oy*p.StrideH - p.PadT + ky*p.DilH
				if uint(iy) >= uint(p.InH) {
					continue
				}
				for kx := 0; kx < p.KW; kx++ {
					ix := ox0 - p.PadL + kx*p.DilW // input column of lane c0
					var m uint16
					for j := 0; j < n; j++ {
						if uint(ix+j) < uint(p.InW) {
							m |= 1 << (c0 + j)
						}
					}
					if m != 0 {
						e := (ip*khw+ky*p.KW+kx)*segs + s
						c.tOff[e] = iy*p.InW + ix - c0
						c.tMask[e] = m
					}
				}
			}
			pix += n
		}
	}
}

// runTransposed computes Cᵀ = im2colᵀ·Wᵀ into scratch and writes its
// transpose with bias and activation to out. With several threads the
// output channels (columns of Cᵀ, panels of the streamed weights) are split,
// one chunk per thread: each thread packs all pixel panels into its own
// scratch (a shared copy, written by one core after the other read it,
// took 3× longer to pack) and writes back the channels it computed.
func (c *Conv) runTransposed(pool *Pool, in, out []float32) {
	p := c.p
	ks := c.ks
	mr, nr, k := ks.mr, ks.nr, c.kdim
	ohw := p.OutH * p.OutW
	mp, np := ceilDiv(ohw, mr), ceilDiv(p.OutC, nr)
	sc := getScratch(ohw * p.OutC)
	ct := sc.buf
	j := gemmJob{ks: ks, m: ohw, n: p.OutC, k: k, alpha: 1, pb: c.packedT, c: ct, ldc: p.OutC, pfB: true}
	t := min(pool.Threads(), np)
	if ohw*p.OutC*k < minParallelWork {
		t = 1
	}
	work := func(lo, hi int) {
		n0, n1 := np*lo/t*nr, min(p.OutC, np*hi/t*nr)
		sa := getScratch(mp * mr * k)
		c.packPanels(in, sa.buf, 0, mp)
		jj := j
		jj.pa = sa.buf
		jj.block(0, ohw, n0, n1)
		c.transposeOut(ct, out, n0, n1)
		putScratch(sa)
	}
	if t <= 1 {
		work(0, 1)
	} else {
		pool.parallel(t, t, work)
	}
	putScratch(sc)
}

// packPanels packs the transposed im2col panels [lo,hi) (mr output pixels
// each) of image in into pa.
func (c *Conv) packPanels(in, pa []float32, lo, hi int) {
	p := c.p
	ks := c.ks
	mr, k := ks.mr, c.kdim
	khw, hw := p.KH*p.KW, p.InH*p.InW
	for ip := lo; ip < hi; ip++ {
		dst := pa[ip*k*mr : (ip+1)*k*mr]
		if s := c.tSegs; s > 0 {
			ks.im2colTL(s, p.InC, khw, dst, in, hw, c.tOff[ip*khw*s:(ip+1)*khw*s], c.tMask[ip*khw*s:(ip+1)*khw*s])
		} else {
			ks.im2colT(p.InC, khw, dst, in, hw, c.tIdx[ip*khw*16:(ip+1)*khw*16], c.tMask[ip*khw:(ip+1)*khw])
		}
	}
}

// transposeOut writes output channels [lo,hi) from Cᵀ ([OutH·OutW, OutC]):
// out[oc][pix] = act(ct[pix][oc] + bias[oc]), 16 channels per kernel call.
func (c *Conv) transposeOut(ct, out []float32, lo, hi int) {
	p := c.p
	n, ohw := p.OutC, p.OutH*p.OutW
	lo32, hi32, clampOnly := clampBounds(c.act)
	const blk = 16
	var zero [blk]float32
	for oc0 := lo; oc0 < hi; oc0 += blk {
		nb := min(blk, hi-oc0)
		bias := zero[:]
		if c.bias != nil {
			bias = c.bias[oc0 : oc0+nb]
		}
		c.ks.transposeT(ohw, ct[oc0:], n, out[oc0*ohw:], ohw, nb, bias, lo32, hi32)
	}
	if !clampOnly {
		c.act.Apply(out[lo*ohw : hi*ohw])
	}
}

// im2col packs GEMM B panels straight from a CHW image: row l of B is
// (channel, ky, kx), column j is output pixel (oy, ox).
type im2col struct {
	p  *ConvParams
	in []float32 // the group's input channels
}

func (s *im2col) pack(ks *kernelSet, dst []float32, pc, kc, j0, nc int) {
	nr := ks.nr
	for jp := 0; jp*nr < nc; jp++ {
		s.panel(ks, dst[jp*kc*nr:(jp+1)*kc*nr], pc, kc, j0+jp*nr, min(nr, nc-jp*nr))
	}
}

// segment is a run of panel columns that lie on one output row.
type segment struct {
	c0, n    int // panel columns c0..c0+n-1
	iy0, ix0 int // input coordinates of column c0 for ky = kx = 0
}

// tapSeg is a segment's valid part for one kernel tap.
type tapSeg struct {
	c0, lo, hi int // columns c0+lo .. c0+hi-1 are inside the image
	off        int // channel offset of column c0 (for t = 0)
}

// panel packs rows [pc,pc+kc) × columns [j0,j0+w) of the implicit im2col
// matrix as one nr-column panel. Rows are visited per kernel tap (ky,kx):
// the 16 source offsets of a tap are the same in every input channel, so
// they are classified once (per run of columns on one output row). For most
// taps the valid columns are an arithmetic sequence in memory (stride
// StrideW, also across output-row boundaries when OutW == InW): then one
// copyRows call copies nr consecutive (or every second) values for all
// channels, and the few padding columns are zeroed. Other taps, and channels
// whose run would leave the image slice, are gathered element by element.
func (s *im2col) panel(ks *kernelSet, dst []float32, pc, kc, j0, w int) {
	nr := ks.nr
	p := s.p
	in := s.in
	W, hw := p.InW, p.InH*p.InW
	sw := p.StrideW
	khw := p.KH * p.KW
	var segs [maxNR]segment
	ns := 0
	for c := 0; c < w; {
		pix := j0 + c
		oy, ox := pix/p.OutW, pix%p.OutW
		n := min(w-c, p.OutW-ox)
		segs[ns] = segment{c0: c, n: n, iy0: oy*p.StrideH - p.PadT, ix0: ox*sw - p.PadL}
		ns++
		c += n
	}
	if ks.im2col != nil && sw <= 2 && khw <= maxFastTaps && pc%khw == 0 && kc%khw == 0 {
		// Tap tables on the stack, sized to avoid clearing large arrays.
		switch {
		case khw <= 9:
			var off [9]int
			var masks [4 * 9]uint16
			s.panelFast(ks, dst, pc, kc, w, segs[:ns], off[:khw], masks[:4*khw])
		case khw <= 49:
			var off [49]int
			var masks [4 * 49]uint16
			s.panelFast(ks, dst, pc, kc, w, segs[:ns], off[:khw], masks[:4*khw])
		default:
			var off [maxFastTaps]int
			var masks [4 * maxFastTaps]uint16
			s.panelFast(ks, dst, pc, kc, w, segs[:ns], off[:khw], masks[:4*khw])
		}
		return
	}
	end := pc + kc
	for r := 0; r < khw; r++ {
		ky, kx := r/p.KW, r%p.KW
		icStart := 0
		if pc > r {
			icStart = ceilDiv(pc-r, khw)
		}
		icEnd := ceilDiv(end-r, khw)
		if icStart >= icEnd {
			continue
		}
		// Classify the columns of this tap.
		var ts [maxNR]tapSeg
		nts := 0
		var zero [maxNR]uint8 // columns to zero
		nzero := 0
		regular := true
		base := 0 // channel offset of column 0 if regular
		for _, sg := range segs[:ns] {
			iy := sg.iy0 + ky*p.DilH
			ix := sg.ix0 + kx*p.DilW
			lo, hi := 0, 0
			if uint(iy) < uint(p.InH) {
				// Columns t with 0 <= ix + t*sw < W.
				if ix < 0 {
					lo = ceilDiv(-ix, sw)
				}
				hi = min(sg.n, max(0, ceilDiv(W-ix, sw)))
			}
			if lo >= hi {
				lo, hi = 0, 0
			}
			for t := 0; t < lo; t++ {
				zero[nzero] = uint8(sg.c0 + t)
				nzero++
			}
			for t := hi; t < sg.n; t++ {
				zero[nzero] = uint8(sg.c0 + t)
				nzero++
			}
			if lo == hi {
				continue
			}
			off := iy*W + ix
			if nts == 0 {
				base = off - sw*sg.c0
			} else if off != base+sw*sg.c0 {
				regular = false
			}
			ts[nts] = tapSeg{c0: sg.c0, lo: lo, hi: hi, off: off}
			nts++
		}
		for c := w; c < nr; c++ {
			zero[nzero] = uint8(c)
			nzero++
		}
		row0 := icStart*khw + r - pc // panel row of channel icStart
		if nts == 0 {
			for ic, row := icStart, row0; ic < icEnd; ic, row = ic+1, row+khw {
				clear(dst[row*nr : row*nr+nr])
			}
			continue
		}
		// Channels whose 16 (strided) source values lie inside the image
		// slice are copied in one call; the others are gathered.
		icA, icB := icStart, icStart
		if regular && sw <= 2 {
			span := sw * (nr - 1) // last source element, relative
			icA = max(icStart, ceilDiv(-base, hw))
			icB = min(icEnd, ceilDiv(len(in)-span-base, hw))
			icB = max(icB, icA)
			if icA < icB {
				n := icB - icA
				rowA := row0 + (icA-icStart)*khw
				ks.copyRows(n, dst[rowA*nr:], khw*nr, in[icA*hw+base:], hw, sw)
				if nzero > 0 {
					for ic, row := icA, rowA; ic < icB; ic, row = ic+1, row+khw {
						d := dst[row*nr : row*nr+nr]
						for _, c := range zero[:nzero] {
							d[c] = 0
						}
					}
				}
			}
		}
		for ic, row := icStart, row0; ic < icEnd; ic, row = ic+1, row+khw {
			if ic == icA && icA < icB {
				ic, row = icB, row+(icB-icA)*khw
				if ic >= icEnd {
					break
				}
			}
			d := dst[row*nr : row*nr+nr]
			clear(d)
			chOff := ic * hw
			for _, t := range ts[:nts] {
				for j := t.lo; j < t.hi; j++ {
					d[t.c0+j] = in[chOff+t.off+j*sw]
				}
			}
		}
	}
}

// maxFastTaps bounds the kernel taps (KH·KW) of panelFast.
const maxFastTaps = 128

// spread2 maps the bits of a byte to the even bits of 16: bit i to bit 2i.
var spread2 = func() (t [256]uint16) {
	for b := range t {
		for i := 0; i < 8; i++ {
			if b&(1<<i) != 0 {
				t[b] |= 1 << (2 * i)
			}
		}
	}
	return
}()

// panelFast packs a panel with the kernel set's im2col kernel when the rows
// [pc,pc+kc) are whole input channels: one call per run of columns on one
// output row (segment) writes that segment's lanes of every row, with the
// padding lanes zeroed by the kernel's load masks.
// off and masks (khw and 4*khw long) are scratch for the tap tables.
func (s *im2col) panelFast(ks *kernelSet, dst []float32, pc, kc, w int, segs []segment, off []int, masks []uint16) {
	p := s.p
	khw := p.KH * p.KW
	W, H, hw, sw := p.InW, p.InH, p.InH*p.InW, p.StrideW
	nch := kc / khw
	src := s.in[(pc/khw)*hw:]
	for si, sg := range segs {
		lanes := uint64(1)<<(sg.c0+sg.n) - 1<<sg.c0
		if si == len(segs)-1 {
			lanes |= (1<<32 - 1) &^ (uint64(1)<<w - 1) // zero the columns past w
		}
		full := (uint64(1)<<sg.n - 1) << sg.c0 // all lanes of the segment
		t := 0
		for ky := 0; ky < p.KH; ky++ {
			iy := sg.iy0 + ky*p.DilH
			rowOK := uint(iy) < uint(H)
			for kx := 0; kx < p.KW; kx, t = kx+1, t+1 {
				ix := sg.ix0 + kx*p.DilW // input column of lane c0
				var m uint64
				if rowOK {
					if ix >= 0 && ix+(sg.n-1)*sw < W {
						m = full
					} else {
						lo := 0
						if ix < 0 {
							lo = ceilDiv(-ix, sw)
						}
						hi := min(sg.n, max(0, ceilDiv(W-ix, sw)))
						if lo < hi {
							m = (uint64(1)<<(hi-lo) - 1) << (sg.c0 + lo)
						}
					}
				}
				off[t] = iy*W + ix - sg.c0*sw
				mk := masks[4*t : 4*t+4 : 4*t+4]
				if sw == 1 {
					mk[0], mk[1] = uint16(m), uint16(m>>16)
				} else {
					mk[0], mk[1], mk[2], mk[3] = spread2[uint8(m)], spread2[uint8(m>>8)], spread2[uint8(m>>16)], spread2[uint8(m>>24)]
				}
			}
		}
		ks.im2col(sw, nch, khw, dst, src, hw, off, masks, int(lanes&0xFFFF), int(lanes>>16))
	}
}

// clampBounds returns the clamp an activation amounts to, if it is one.
func clampBounds(a Act) (lo, hi float32, ok bool) {
	inf := float32(math.Inf(1))
	switch a.Kind {
	case ActNone:
		return -inf, inf, true
	case ActRelu:
		return 0, inf, true
	case ActClip:
		return a.Alpha, a.Beta, true
	}
	return -inf, inf, false
}

// runDepthwise handles InC/Group == 1: output channel oc reads input channel
// oc/(OutC/InC) only.
func (c *Conv) runDepthwise(pool *Pool, in, out []float32) {
	p := c.p
	dw3x3 := c.ks.dw3x3
	direct := c.ks.dwDirect != nil && p.KH == 3 && p.KW == 3 && p.DilH == 1 && p.DilW == 1 &&
		p.StrideH == p.StrideW && (p.StrideH == 1 || p.StrideH == 2)
	fast := dw3x3 != nil && p.KH == 3 && p.KW == 3 && p.DilH == 1 && p.DilW == 1 &&
		p.StrideH == p.StrideW && (p.StrideH == 1 || p.StrideH == 2)
	t := pool.Threads()
	if p.OutC*p.OutH*p.OutW*p.KH*p.KW < 1<<15 {
		t = 1
	}
	t = min(t, p.OutC)
	work := func(lo, hi int) {
		if direct {
			c.depthwiseDirect(in, out, lo, hi)
		} else if fast {
			c.depthwise3x3(dw3x3, in, out, lo, hi)
		} else {
			c.depthwiseGeneric(in, out, lo, hi)
		}
	}
	if t <= 1 {
		work(0, p.OutC)
		return
	}
	pool.Parallel(p.OutC, work)
}

// depthwise3x3 computes output channels [lo,hi) of a 3×3 depthwise
// convolution with stride 1 or 2: each input channel is copied into a
// zero-padded plane, then the row kernel produces 8 outputs per step.
func (c *Conv) depthwise3x3(dw3x3 func(s, rows, n int, out []float32, ldo int, in []float32, ldi int, w []float32, bias, lo, hi float32), in, out []float32, lo, hi int) {
	p := c.p
	s := p.StrideH
	mult := p.OutC / p.InC
	ow8 := ceilDiv(p.OutW, 8) * 8
	ph := (p.OutH-1)*s + 3
	pw := s*ow8 + 3
	lo32, hi32, clampOnly := clampBounds(c.act)
	sc := getScratch(ph*pw + ow8)
	plane, tmp := sc.buf[:ph*pw], sc.buf[ph*pw:]
	clear(plane)
	ohw := p.OutH * p.OutW
	prevIC := -1
	for oc := lo; oc < hi; oc++ {
		ic := oc / mult
		if ic != prevIC {
			// Rows py of the plane hold input row py-PadT, columns px input
			// column px-PadL; everything else stays zero.
			ch := in[ic*p.InH*p.InW : (ic+1)*p.InH*p.InW]
			for py := 0; py < ph; py++ {
				iy := py - p.PadT
				prow := plane[py*pw : (py+1)*pw]
				if iy < 0 || iy >= p.InH {
					continue
				}
				x0 := max(0, p.PadL)
				x1 := min(pw, p.PadL+p.InW)
				if x0 < x1 {
					copy(prow[x0:x1], ch[iy*p.InW+x0-p.PadL:iy*p.InW+x1-p.PadL])
				}
			}
			prevIC = ic
		}
		var b float32
		if c.bias != nil {
			b = c.bias[oc]
		}
		w := c.weight[oc*9 : oc*9+9]
		o := out[oc*ohw : (oc+1)*ohw]
		// Each row writes ow8 outputs: the excess lands in the following
		// rows of this channel, which are computed afterwards. Rows whose
		// excess would pass the end of the channel go through tmp.
		rows := 0
		if ohw >= ow8 {
			rows = min(p.OutH, (ohw-ow8)/p.OutW+1)
		}
		dw3x3(s, rows, ow8, o, p.OutW, plane, pw, w, b, lo32, hi32)
		for r := rows; r < p.OutH; r++ {
			dw3x3(s, 1, ow8, tmp, ow8, plane[r*s*pw:], pw, w, b, lo32, hi32)
			copy(o[r*p.OutW:(r+1)*p.OutW], tmp)
		}
		if !clampOnly {
			c.act.Apply(o)
		}
	}
	putScratch(sc)
}

// depthwiseDirect computes output channels [lo,hi) of a 3×3 depthwise
// convolution with stride 1 or 2 with the kernel set's dwDirect kernel,
// which reads the input rows in place: masked loads zero the padding
// columns, and output rows whose kernel window leaves the image at the top
// or bottom read a zero row instead.
func (c *Conv) depthwiseDirect(in, out []float32, lo, hi int) {
	p := c.p
	s := p.StrideH
	W, H, OW, OH := p.InW, p.InH, p.OutW, p.OutH
	var mbuf [4 * 16]uint16
	var obuf [16]uint16
	nch, masks, omasks := direct3x3Masks(s, W, OW, p.PadL, mbuf[:], obuf[:])
	// The zero row has room on both sides: masked-off lanes of a load may
	// start before it or run past it, and must not touch another page.
	zs := getScratch(W + 64 + p.OutC)
	clear(zs.buf[:W+64])
	zero := zs.buf[32 : 32+W]
	lo32, hi32, clampOnly := clampBounds(c.act)
	bias := c.bias
	if bias == nil {
		bias = zs.buf[W+64 : W+64+p.OutC]
		clear(bias)
	}
	mult := p.OutC / p.InC
	hw, ohw := H*W, OH*OW
	if mult == 1 {
		c.ks.dwDirect(s, hi-lo, in[lo*hw:], hw, out[lo*ohw:], H, W, OH, OW, p.PadT, nch, -p.PadL,
			c.weight[9*lo:], bias[lo:], lo32, hi32, masks, omasks, zero)
	} else {
		for oc := lo; oc < hi; oc++ {
			c.ks.dwDirect(s, 1, in[(oc/mult)*hw:], hw, out[oc*ohw:], H, W, OH, OW, p.PadT, nch, -p.PadL,
				c.weight[9*oc:], bias[oc:], lo32, hi32, masks, omasks, zero)
		}
	}
	if !clampOnly {
		for oc := lo; oc < hi; oc++ {
			c.act.Apply(out[oc*ohw : (oc+1)*ohw])
		}
	}
	putScratch(zs)
}

// direct3x3Masks returns the chunk count and the load and store masks of a
// direct 3×3 kernel (see kernelSet.dwDirect) with stride s over rows of W
// inputs and OW outputs, left padding padL; mbuf and obuf are used when
// large enough (4 and 1 mask per chunk).
func direct3x3Masks(s, W, OW, padL int, mbuf, obuf []uint16) (nch int, masks, omasks []uint16) {
	nch = ceilDiv(OW, 16)
	masks, omasks = mbuf, obuf
	if len(masks) < 4*nch || len(omasks) < nch {
		masks, omasks = make([]uint16, 4*nch), make([]uint16, nch)
	}
	inside := func(x int) (m uint16) { // lanes j with 0 <= x+j < W
		for j := 0; j < 16; j++ {
			if x+j >= 0 && x+j < W {
				m |= 1 << j
			}
		}
		return
	}
	loads := [4]int{0, 1, 2, 0}
	if s == 2 {
		loads = [4]int{0, 16, 2, 18}
	}
	for ch := 0; ch < nch; ch++ {
		x := ch*16*s - padL
		for l, d := range loads {
			masks[4*ch+l] = inside(x + d)
		}
		omasks[ch] = uint16(uint32(1)<<min(16, OW-ch*16) - 1)
	}
	return nch, masks, omasks
}

// depthwiseGeneric computes output channels [lo,hi) of any depthwise
// convolution, one kernel tap at a time over whole output rows.
func (c *Conv) depthwiseGeneric(in, out []float32, lo, hi int) {
	p := c.p
	mult := p.OutC / p.InC
	ohw := p.OutH * p.OutW
	khw := p.KH * p.KW
	for oc := lo; oc < hi; oc++ {
		ic := oc / mult
		ch := in[ic*p.InH*p.InW : (ic+1)*p.InH*p.InW]
		o := out[oc*ohw : (oc+1)*ohw]
		var b float32
		if c.bias != nil {
			b = c.bias[oc]
		}
		for i := range o {
			o[i] = b
		}
		for ky := 0; ky < p.KH; ky++ {
			for kx := 0; kx < p.KW; kx++ {
				wv := c.weight[oc*khw+ky*p.KW+kx]
				off := kx*p.DilW - p.PadL
				// Output columns whose input column ox*StrideW+off is inside.
				x0 := 0
				if off < 0 {
					x0 = ceilDiv(-off, p.StrideW)
				}
				x1 := p.OutW
				if lim := p.InW - off; lim <= 0 {
					x1 = 0
				} else {
					x1 = min(x1, ceilDiv(lim, p.StrideW))
				}
				if x0 >= x1 {
					continue
				}
				for oy := 0; oy < p.OutH; oy++ {
					iy := oy*p.StrideH - p.PadT + ky*p.DilH
					if iy < 0 || iy >= p.InH {
						continue
					}
					row := ch[iy*p.InW : (iy+1)*p.InW]
					orow := o[oy*p.OutW+x0 : oy*p.OutW+x1]
					if p.StrideW == 1 {
						src := row[x0+off : x1+off]
						for i, v := range src {
							orow[i] += wv * v
						}
						continue
					}
					ix := x0*p.StrideW + off
					for i := range orow {
						orow[i] += wv * row[ix]
						ix += p.StrideW
					}
				}
			}
		}
		c.act.Apply(o)
	}
}
