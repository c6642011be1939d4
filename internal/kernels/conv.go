package kernels

import "fmt"

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
// activation. It is safe for sequential reuse, not for concurrent Run calls.
type Conv struct {
	p      ConvParams
	weight []float32 // [OutC, InC/Group, KH, KW]
	bias   []float32 // [OutC] or nil
	act    Act
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
	return &Conv{p: p, weight: weight, bias: bias, act: act}, nil
}

// Run convolves in [InC, InH, InW] into out [OutC, OutH, OutW].
func (c *Conv) Run(pool *Pool, in, out []float32) {
	p := c.p
	icg, ocg := p.InC/p.Group, p.OutC/p.Group
	pool.Parallel(p.OutC, func(lo, hi int) {
		for oc := lo; oc < hi; oc++ {
			g := oc / ocg
			o := out[oc*p.OutH*p.OutW : (oc+1)*p.OutH*p.OutW]
			var b float32
			if c.bias != nil {
				b = c.bias[oc]
			}
			for oy := 0; oy < p.OutH; oy++ {
				for ox := 0; ox < p.OutW; ox++ {
					s := b
					for ic := 0; ic < icg; ic++ {
						ch := in[(g*icg+ic)*p.InH*p.InW:]
						w := c.weight[((oc*icg)+ic)*p.KH*p.KW:]
						for ky := 0; ky < p.KH; ky++ {
							iy := oy*p.StrideH - p.PadT + ky*p.DilH
							if iy < 0 || iy >= p.InH {
								continue
							}
							for kx := 0; kx < p.KW; kx++ {
								ix := ox*p.StrideW - p.PadL + kx*p.DilW
								if ix < 0 || ix >= p.InW {
									continue
								}
								s += ch[iy*p.InW+ix] * w[ky*p.KW+kx]
							}
						}
					}
					o[oy*p.OutW+ox] = s
				}
			}
			c.act.Apply(o)
		}
	})
}

// WorkspaceBytes is the scratch memory Run uses beyond its input and output.
func (c *Conv) WorkspaceBytes() int64 { return 0 }
