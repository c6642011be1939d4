package cost

import (
	"math"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
)

// run drains the network and returns when each flow completed.
func drain(nw *network) map[msgKey]float64 {
	done := map[msgKey]float64{}
	for {
		t, ok := nw.next()
		if !ok {
			return done
		}
		nw.advance(t)
		for _, f := range nw.completed() {
			done[f.key] = nw.now
		}
	}
}

// An all-gather among three devices on a switched network: each uplink and
// downlink carries two flows at half the rate, so everything is through
// after two message times, not three.
func TestNetworkAllGather(t *testing.T) {
	spec := cluster.Uniform(3, 4, 0, 100, 0)
	nw := newNetwork(spec, nil)
	for a := 0; a < 3; a++ {
		for b := 0; b < 3; b++ {
			if a != b {
				nw.add(&flow{key: msgKey{a, b, 0}, remaining: 100, cap: 100})
			}
		}
	}
	for k, at := range drain(nw) {
		if math.Abs(at-2) > 1e-9 {
			t.Errorf("flow %v done at %g s, want 2", k, at)
		}
	}
}

// On a shared medium the same six flows take six message times; a lone
// flow on a switched network runs at its pair's bandwidth.
func TestNetworkSharedAndCap(t *testing.T) {
	spec := cluster.Uniform(3, 4, 0, 100, 0)
	spec.Topology = cluster.Shared
	nw := newNetwork(spec, nil)
	for a := 0; a < 3; a++ {
		for b := 0; b < 3; b++ {
			if a != b {
				nw.add(&flow{key: msgKey{a, b, 0}, remaining: 100, cap: 100})
			}
		}
	}
	for k, at := range drain(nw) {
		if math.Abs(at-6) > 1e-9 {
			t.Errorf("shared: flow %v done at %g s, want 6", k, at)
		}
	}
	spec = cluster.Uniform(2, 4, 0, 100, 0)
	spec.Links = []cluster.LinkOverride{{A: "dev0", B: "dev1", Link: cluster.Link{Bandwidth: 50}}}
	nw = newNetwork(spec, nil)
	nw.add(&flow{key: msgKey{0, 1, 0}, remaining: 100, cap: 50})
	if at := drain(nw)[msgKey{0, 1, 0}]; math.Abs(at-2) > 1e-9 {
		t.Errorf("capped flow done at %g s, want 2", at)
	}
}

// Two flows into one device share its downlink; when one ends the other
// speeds up: 100 and 300 bytes at 100 B/s end at 2 s and 4 s.
func TestNetworkReshare(t *testing.T) {
	nw := newNetwork(cluster.Uniform(3, 4, 0, 100, 0), nil)
	nw.add(&flow{key: msgKey{0, 2, 0}, remaining: 100, cap: 100})
	nw.add(&flow{key: msgKey{1, 2, 0}, remaining: 300, cap: 100})
	done := drain(nw)
	if math.Abs(done[msgKey{0, 2, 0}]-2) > 1e-9 || math.Abs(done[msgKey{1, 2, 0}]-4) > 1e-9 {
		t.Errorf("completions %v, want 2 s and 4 s", done)
	}
}

// Messages between the same two devices go in order on their connection:
// the first is through after one message time, not after two.
func TestNetworkPairFIFO(t *testing.T) {
	nw := newNetwork(cluster.Uniform(2, 4, 0, 100, 0), nil)
	nw.add(&flow{key: msgKey{0, 1, 1}, remaining: 100, cap: 100})
	nw.add(&flow{key: msgKey{0, 1, 2}, remaining: 100, cap: 100})
	done := drain(nw)
	if math.Abs(done[msgKey{0, 1, 1}]-1) > 1e-9 || math.Abs(done[msgKey{0, 1, 2}]-2) > 1e-9 {
		t.Errorf("completions %v, want 1 s and 2 s", done)
	}
}
