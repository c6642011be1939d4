package cost

import "math"

// CFSSamples is how many period phasings Predict averages over for devices
// under a CFS bandwidth limit.
const CFSSamples = 8

// cfs is a device's CFS bandwidth limit during a simulation: quota seconds
// of CPU per period (share of the period: device time at the sustained
// share × share = CPU time), periods starting at phase + k·period; used is
// the CPU spent in period k.
type cfs struct {
	share                float64
	quota, period, phase float64
	k                    int64
	used                 float64
}

const cfsEps = 1e-12

// at moves the accounting to the period holding t (start ≤ t < end).
func (c *cfs) at(t float64) {
	k := int64(math.Floor((t - c.phase) / c.period))
	for c.phase+float64(k+1)*c.period <= t {
		k++
	}
	for c.phase+float64(k)*c.period > t {
		k--
	}
	if k != c.k {
		c.k, c.used = k, 0
	}
}

func (c *cfs) end() float64 { return c.phase + float64(c.k+1)*c.period }

// ready is the first time from t at which the device may run: t, or the
// end of t's period when its quota is spent.
func (c *cfs) ready(t float64) float64 {
	c.at(t)
	if c.used >= c.quota-cfsEps {
		t = c.end()
		c.at(t)
	}
	return t
}

// run runs cpu seconds of work from t at full speed within each period's
// quota and returns when it is done.
func (c *cfs) run(t, cpu float64) float64 {
	for cpu > cfsEps {
		t = c.ready(t)
		r := min(cpu, c.quota-c.used, c.end()-t)
		t += r
		c.used += r
		cpu -= r
	}
	return t
}

// use books cpu seconds spent at t while the device was otherwise idle
// (receiving while it waited).
func (c *cfs) use(t, cpu float64) {
	c.at(t)
	c.used = min(c.quota, c.used+cpu)
}
