package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

const relTol = 1e-4

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// closeEnough compares got with want elementwise with relative tolerance
// relTol; near zero the error is taken relative to a tenth of the largest
// magnitude, which is at least mag (the size of values before a saturating
// activation).
func closeEnough(t *testing.T, what string, got, want []float32, mag ...float64) bool {
	t.Helper()
	var scale float64
	for _, m := range mag {
		scale = max(scale, m)
	}
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	scale = max(scale, 1)
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > relTol*max(math.Abs(float64(want[i])), 0.1*scale) || math.IsNaN(float64(got[i])) {
			t.Errorf("%s: element %d = %v, want %v", what, i, got[i], want[i])
			return false
		}
	}
	return true
}

var testPools = []*Pool{nil, NewPool(2), NewPool(3)}

// forEachKernels runs f as a subtest with each kernel set this machine
// supports (avx512, avx2-fma, go) selected, as IOP_KERNELS would.
func forEachKernels(t *testing.T, f func(t *testing.T)) {
	saved := active
	defer func() { active = saved }()
	for _, ks := range kernelSets {
		active = ks
		t.Run(ks.name, f)
	}
}

func TestKernelSelection(t *testing.T) {
	if got := chooseKernels("go"); got != goKernels {
		t.Errorf("IOP_KERNELS=go chose %s", got.name)
	}
	if got := chooseKernels("bogus"); got != kernelSets[0] {
		t.Errorf("IOP_KERNELS=bogus chose %s, want the best, %s", got.name, kernelSets[0].name)
	}
	for _, ks := range kernelSets {
		if got := chooseKernels(strings.TrimSuffix(ks.name, "-fma")); got != ks {
			t.Errorf("IOP_KERNELS=%s chose %s", ks.name, got.name)
		}
		if ks.mr > maxMR || ks.nr > maxNR {
			t.Errorf("%s: tile %dx%d exceeds the maximum", ks.name, ks.mr, ks.nr)
		}
	}
	t.Logf("kernel sets %v, active %s", KernelNames(), KernelName())
}

type gemmCase struct {
	ta, tb      bool
	m, n, k     int
	alpha, beta float32
	pad         int
}

func gemmCases(r *rand.Rand) []gemmCase {
	var cs []gemmCase
	alphas := []float32{1, 0.5, -2}
	betas := []float32{0, 1, 0.25}
	for i := 0; i < 300; i++ {
		cs = append(cs, gemmCase{r.IntN(2) == 1, r.IntN(2) == 1, 1 + r.IntN(70), 1 + r.IntN(70), 1 + r.IntN(70),
			alphas[r.IntN(3)], betas[r.IntN(3)], r.IntN(3)})
	}
	for _, s := range [][3]int{{1, 1, 1}, {1, 1000, 300}, {1000, 1, 300}, {6, 16, 1}, {7, 17, 257}, {128, 3136 / 4, 576},
		{300, 200, 600}, {150, 513, 260}, {513, 40, 520}, {64, 49, 4608 / 8}, {2, 2000, 3}, {2, 600, 300}, {700, 3, 200}, {3, 300, 400}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				cs = append(cs, gemmCase{ta, tb, s[0], s[1], s[2], alphas[r.IntN(3)], betas[r.IntN(3)], r.IntN(3)})
			}
		}
	}
	return cs
}

// operands returns random A, B, C for a case with the given leading
// dimensions padded by c.pad.
func (c gemmCase) operands(r *rand.Rand) (a []float32, lda int, b []float32, ldb int, cm []float32, ldc int) {
	ar, ac := c.m, c.k
	if c.ta {
		ar, ac = c.k, c.m
	}
	br, bc := c.k, c.n
	if c.tb {
		br, bc = c.n, c.k
	}
	lda, ldb, ldc = ac+c.pad, bc+c.pad, c.n+c.pad
	return randSlice(r, ar*lda), lda, randSlice(r, br*ldb), ldb, randSlice(r, c.m*ldc), ldc
}

func TestSgemm(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, tc := range gemmCases(r) {
			a, lda, b, ldb, c0, ldc := tc.operands(r)
			want := append([]float32(nil), c0...)
			refSgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
			for pi, p := range testPools {
				got := append([]float32(nil), c0...)
				Sgemm(p, tc.ta, tc.tb, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
				if !closeEnough(t, fmt.Sprintf("Sgemm %+v pool %d", tc, pi), got, want) {
					return
				}
			}
		}
	})
}

func TestSgemmBetaZeroIgnoresC(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, s := range [][3]int{{5, 7, 9}, {1, 30, 20}, {30, 1, 20}, {40, 50, 60}} {
			m, n, k := s[0], s[1], s[2]
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			c := make([]float32, m*n)
			for i := range c {
				c[i] = float32(math.NaN())
			}
			want := make([]float32, m*n)
			refSgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
			Sgemm(nil, false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			closeEnough(t, fmt.Sprint("beta=0 ", s), c, want)
		}
	})
}

func TestSgemmPacked(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		cs := gemmCases(r)
		for _, tc := range append(cs[:100], cs[300:]...) {
			a, lda, b, ldb, c0, ldc := tc.operands(r)
			want := append([]float32(nil), c0...)
			refSgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
			pa := PackA(tc.ta, tc.m, tc.k, a, lda)
			pb := PackB(tc.tb, tc.k, tc.n, b, ldb)
			for pi, p := range testPools {
				got := append([]float32(nil), c0...)
				SgemmPacked(p, pa, tc.tb, tc.n, tc.alpha, b, ldb, tc.beta, got, ldc)
				if !closeEnough(t, fmt.Sprintf("SgemmPacked %+v pool %d", tc, pi), got, want) {
					return
				}
				got = append(got[:0], c0...)
				SgemmPackedB(p, tc.ta, tc.m, tc.alpha, a, lda, pb, tc.beta, got, ldc)
				if !closeEnough(t, fmt.Sprintf("SgemmPackedB %+v pool %d", tc, pi), got, want) {
					return
				}
			}
		}
	})
}

func convCases(r *rand.Rand) []ConvParams {
	mk := func(inC, h, w, outC, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, g int) ConvParams {
		oh := (h+pt+pb-dh*(kh-1)-1)/sh + 1
		ow := (w+pl+pr-dw*(kw-1)-1)/sw + 1
		return ConvParams{InC: inC, InH: h, InW: w, OutC: outC, OutH: oh, OutW: ow, KH: kh, KW: kw,
			StrideH: sh, StrideW: sw, DilH: dh, DilW: dw, PadT: pt, PadL: pl, Group: g}
	}
	cs := []ConvParams{
		mk(3, 20, 20, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),    // plain 3x3
		mk(16, 14, 14, 32, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),  // 1x1 direct
		mk(16, 14, 14, 32, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1),  // 1x1 stride 2
		mk(8, 9, 11, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2),    // grouped
		mk(12, 7, 7, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 12),   // depthwise 3x3 s1
		mk(12, 15, 13, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 12), // depthwise 3x3 s2
		mk(6, 8, 9, 18, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6),     // depthwise multiplier 3
		mk(4, 10, 10, 8, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4, 4),    // depthwise dilated 5x5, multiplier
		mk(3, 3, 3, 5, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1),      // kernel bigger than input
		mk(2, 2, 3, 3, 7, 7, 3, 3, 1, 1, 3, 3, 2, 4, 1),      // kernel bigger, stride 3, asym pads
		mk(5, 13, 17, 7, 3, 5, 3, 2, 2, 1, 2, 0, 1, 3, 1),    // rectangular, strides, dilation, asym
		mk(64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),  // ResNet-18 layer1
		mk(256, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),  // M split shape
		mk(3, 31, 31, 16, 11, 11, 4, 4, 1, 1, 2, 2, 2, 2, 1), // AlexNet-like conv1
		mk(24, 8, 8, 24, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 3),    // groups=3, no pad
		mk(32, 6, 6, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8),    // many groups
		mk(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),      // tiny
		mk(7, 1, 1, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),      // 1x1 on 1x1 image
		mk(3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 0, 2, 3, 0, 3),      // depthwise asym pads
		mk(5, 9, 17, 5, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 5),     // depthwise s2 TF-style pads
		mk(8, 37, 37, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8),    // depthwise s1, 16-wide loop and tail
		mk(4, 40, 33, 8, 3, 3, 2, 2, 1, 1, 1, 0, 0, 2, 4),    // depthwise s2, multiplier, asym pads
		mk(6, 64, 64, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6),    // depthwise s2, width multiple of 8
		mk(3, 1, 40, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3),     // depthwise, single input row
		mk(4, 3, 2, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4),      // depthwise, output width 2
		mk(4, 5, 1, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4),      // depthwise, output width 1
		mk(2, 6, 3, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2),      // depthwise s2, output width 2
		mk(2, 1, 1, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2),      // depthwise s2, 1x1 image
	}
	for i := 0; i < 40; i++ { // 3×3 depthwise with the specialised kernels
		g, mult, st := 1+r.IntN(5), 1+r.IntN(3), 1+r.IntN(2)
		h, w := 1+r.IntN(20), 1+r.IntN(20)
		pt, pl, pb, pr := r.IntN(3), r.IntN(3), r.IntN(3), r.IntN(3)
		if h+pt+pb < 3 || w+pl+pr < 3 {
			continue
		}
		cs = append(cs, mk(g, h, w, g*mult, 3, 3, st, st, 1, 1, pt, pl, pb, pr, g))
	}
	for i := 0; i < 60; i++ {
		g := 1 + r.IntN(3)
		icg, ocg := 1+r.IntN(6), 1+r.IntN(6)
		if r.IntN(4) == 0 { // depthwise with a multiplier
			icg = 1
			g = 1 + r.IntN(8)
		}
		kh, kw := 1+r.IntN(4), 1+r.IntN(4)
		sh, sw := 1+r.IntN(3), 1+r.IntN(3)
		dh, dw := 1+r.IntN(2), 1+r.IntN(2)
		h, w := 1+r.IntN(12), 1+r.IntN(12)
		pt, pl, pb, pr := r.IntN(kh), r.IntN(kw), r.IntN(kh), r.IntN(kw)
		if h+pt+pb < dh*(kh-1)+1 || w+pl+pr < dw*(kw-1)+1 {
			continue
		}
		cs = append(cs, mk(icg*g, h, w, ocg*g, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, g))
	}
	return cs
}

func TestConv(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		acts := []Act{{Kind: ActNone}, {Kind: ActRelu}, {Kind: ActClip, Alpha: 0, Beta: 0.5},
			{Kind: ActLeakyRelu, Alpha: 0.1}, {Kind: ActSigmoid}}
		for i, p := range convCases(r) {
			w := randSlice(r, p.OutC*(p.InC/p.Group)*p.KH*p.KW)
			var bias []float32
			if i%3 != 0 {
				bias = randSlice(r, p.OutC)
			}
			act := acts[i%len(acts)]
			in := randSlice(r, p.InC*p.InH*p.InW)
			want := make([]float32, p.OutC*p.OutH*p.OutW)
			refConv(p, w, bias, act, in, want)
			conv, err := NewConv(p, w, bias, act)
			if err != nil {
				t.Fatal(err)
			}
			if conv.WorkspaceBytes() < 0 {
				t.Fatal("negative workspace")
			}
			mag := math.Sqrt(float64(p.InC/p.Group*p.KH*p.KW)) / 3
			for pi, pool := range testPools {
				got := randSlice(r, len(want))
				conv.Run(pool, in, got)
				if !closeEnough(t, fmt.Sprintf("conv %+v act %v pool %d", p, act.Kind, pi), got, want, mag) {
					return
				}
				// Reuse must give the same result.
				conv.Run(pool, in, got)
				if !closeEnough(t, fmt.Sprintf("conv rerun %+v pool %d", p, pi), got, want, mag) {
					return
				}
			}
		}
	})
}

func TestNewConvErrors(t *testing.T) {
	p := ConvParams{InC: 4, InH: 3, InW: 3, OutC: 6, OutH: 3, OutW: 3, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Group: 3}
	if _, err := NewConv(p, make([]float32, 8), nil, Act{}); err == nil {
		t.Error("bad groups accepted")
	}
	p.Group = 2
	if _, err := NewConv(p, make([]float32, 5), nil, Act{}); err == nil {
		t.Error("bad weight size accepted")
	}
	if _, err := NewConv(p, make([]float32, 12), make([]float32, 2), Act{}); err == nil {
		t.Error("bad bias size accepted")
	}
}

func TestPool(t *testing.T) {
	for _, p := range testPools {
		for _, n := range []int{0, 1, 2, 5, 100} {
			hits := make([]int, n)
			p.Parallel(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("pool %d n %d: index %d run %d times", p.Threads(), n, i, h)
				}
			}
		}
	}
}

// NaN inputs must give NaN outputs (not be clamped away) on every path.
func TestNaNPropagates(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		nan := float32(math.NaN())
		for _, act := range []Act{{Kind: ActNone}, {Kind: ActRelu}, {Kind: ActClip, Alpha: 0, Beta: 6}} {
			for _, g := range []int{1, 8} { // GEMM and depthwise paths
				p := ConvParams{InC: 8, InH: 9, InW: 9, OutC: 8, OutH: 9, OutW: 9, KH: 3, KW: 3,
					StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, PadT: 1, PadL: 1, Group: g}
				w := make([]float32, 8*8/g*9)
				for i := range w {
					w[i] = 1
				}
				conv, err := NewConv(p, w, nil, act)
				if err != nil {
					t.Fatal(err)
				}
				in := make([]float32, 8*81)
				in[4*9+4] = nan // channel 0, centre
				out := make([]float32, 8*81)
				conv.Run(nil, in, out)
				if v := out[4*9+4]; !math.IsNaN(float64(v)) {
					t.Errorf("act %v group %d: output %v, want NaN", act.Kind, g, v)
				}
			}
		}
	})
}

func TestCopyRows(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, stride := range []int{1, 2} {
			const n, ds, ss = 5, 40, 80
			nr := active.nr
			// Exactly the elements needed: the last row ends at its last value.
			src := randSlice(r, (n-1)*ss+stride*(nr-1)+1)
			dst := make([]float32, (n-1)*ds+nr)
			active.copyRows(n, dst, ds, src, ss, stride)
			for row := 0; row < n; row++ {
				for c := 0; c < nr; c++ {
					if got, want := dst[row*ds+c], src[row*ss+stride*c]; got != want {
						t.Fatalf("stride %d: row %d col %d = %v, want %v", stride, row, c, got, want)
					}
				}
			}
		}
	})
}

func TestPoolNestedConcurrentClose(t *testing.T) {
	p := NewPool(2)
	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 200; it++ {
				p.Parallel(4, func(lo, hi int) {
					p.Parallel(3, func(lo2, hi2 int) {
						mu.Lock()
						count += (hi - lo) * (hi2 - lo2)
						mu.Unlock()
					})
				})
			}
		}()
	}
	wg.Wait()
	if want := 4 * 200 * 4 * 3; count != want {
		t.Fatalf("count %d, want %d", count, want)
	}
	p.Close()
	p.Close()
	n := 0
	p.Parallel(2, func(lo, hi int) {
		mu.Lock()
		n += hi - lo
		mu.Unlock()
	})
	if n != 2 {
		t.Fatalf("after Close: %d", n)
	}
}

// TestConvTransposed runs convolutions with small output images through the
// transposed path (Cᵀ = im2colᵀ·Wᵀ, AVX-512 set) and compares them with the
// reference; other kernel sets run them on their usual path.
func TestConvTransposed(t *testing.T) {
	mk := func(inC, h, w, outC, k, s, pad int) ConvParams {
		oh, ow := (h+2*pad-k)/s+1, (w+2*pad-k)/s+1
		return ConvParams{InC: inC, InH: h, InW: w, OutC: outC, OutH: oh, OutW: ow, KH: k, KW: k,
			StrideH: s, StrideW: s, DilH: 1, DilW: 1, PadT: pad, PadL: pad, Group: 1}
	}
	cases := []ConvParams{
		mk(32, 7, 7, 40, 3, 1, 1),    // 7×7, 3×3 pad 1
		mk(24, 9, 9, 100, 3, 1, 0),   // 7×7, pad 0
		mk(16, 14, 14, 100, 3, 2, 1), // 14×14 → 7×7, stride 2
		mk(20, 15, 15, 40, 3, 2, 0),  // stride 2, pad 0
		mk(48, 7, 7, 100, 1, 1, 0),   // 1×1 (direct shape)
		mk(16, 14, 14, 40, 1, 2, 0),  // 1×1 stride 2
		mk(16, 14, 14, 40, 3, 1, 1),  // 14×14 output
		mk(8, 16, 16, 100, 3, 1, 0),  // 14×14, pad 0
		mk(12, 28, 28, 36, 3, 2, 1),  // 28 → 14, stride 2
		mk(10, 13, 13, 33, 3, 1, 1),  // 169 pixels = 12×14 + 1
		mk(6, 5, 5, 70, 3, 1, 1),     // 25 pixels
		mk(5, 3, 3, 17, 3, 1, 0),     // one pixel
		mk(64, 7, 7, 512, 3, 1, 1),   // ResNet-18 layer4-like
		mk(3, 11, 11, 40, 5, 2, 2),   // 5×5 stride 2
		{InC: 7, InH: 9, InW: 12, OutC: 50, OutH: 7, OutW: 11, KH: 3, KW: 2, StrideH: 1, StrideW: 1,
			DilH: 1, DilW: 1, PadT: 0, PadL: 0, Group: 1}, // rectangular
		{InC: 9, InH: 10, InW: 10, OutC: 45, OutH: 6, OutW: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 1,
			DilH: 2, DilW: 2, PadT: 2, PadL: 1, Group: 1}, // dilation, mixed strides, asymmetric pads
	}
	acts := []Act{{Kind: ActRelu}, {Kind: ActClip, Alpha: -0.2, Beta: 0.5}, {Kind: ActSigmoid},
		{Kind: ActNone}, {Kind: ActLeakyRelu, Alpha: 0.1}}
	defer func() { forceTransposed = false }()
	forEachKernels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for i, p := range cases {
			w := randSlice(r, p.OutC*p.InC*p.KH*p.KW)
			var bias []float32
			if i%4 != 3 {
				bias = randSlice(r, p.OutC)
			}
			act := acts[i%len(acts)]
			in := randSlice(r, p.InC*p.InH*p.InW)
			want := make([]float32, p.OutC*p.OutH*p.OutW)
			refConv(p, w, bias, act, in, want)
			forceTransposed = true
			conv, err := NewConv(p, w, bias, act)
			forceTransposed = false
			if err != nil {
				t.Fatal(err)
			}
			if conv.trans != (active.im2colT != nil) {
				t.Fatalf("conv %+v: transposed %v on kernel set %s", p, conv.trans, active.name)
			}
			mag := math.Sqrt(float64(p.InC*p.KH*p.KW)) / 3
			for pi, pool := range testPools {
				got := randSlice(r, len(want))
				conv.Run(pool, in, got)
				if !closeEnough(t, fmt.Sprintf("transposed conv %+v act %v pool %d", p, act.Kind, pi), got, want, mag) {
					return
				}
			}
		}
	})
}

// TestConvTransposedChoice checks which layers NewConv runs transposed.
func TestConvTransposedChoice(t *testing.T) {
	forEachKernels(t, func(t *testing.T) {
		for _, c := range []struct {
			bc   benchConv
			want bool
		}{
			{convShape("512x7", 512, 7, 512, 3, 1, 1, 1), true},
			{convShape("256x14s2", 256, 14, 512, 3, 2, 1, 1), true},
			{convShape("960x7 1x1", 960, 7, 320, 1, 1, 0, 1), true},
			{convShape("320x7 1x1", 320, 7, 1280, 1, 1, 0, 1), true},
			{convShape("512x14", 512, 14, 512, 3, 1, 1, 1), false},
			{convShape("256x14 1x1s2", 256, 14, 512, 1, 2, 0, 1), false},
			{convShape("256x14", 256, 14, 256, 3, 1, 1, 1), false}, // 196 = 6×32 + 4: little waste
			{convShape("64x56", 64, 56, 64, 3, 1, 1, 1), false},
			{convShape("dw960x7", 960, 7, 960, 3, 1, 1, 960), false},
			{convShape("g2", 64, 7, 64, 3, 1, 1, 2), false},
		} {
			p := c.bc.p
			conv, err := NewConv(p, make([]float32, p.OutC*p.InC/p.Group*p.KH*p.KW), nil, Act{})
			if err != nil {
				t.Fatal(err)
			}
			if want := c.want && active.im2colT != nil; conv.trans != want {
				t.Errorf("%s: transposed %v, want %v", c.bc.name, conv.trans, want)
			}
		}
	})
}
