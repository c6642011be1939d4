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

// A link that idled passes its bucket at once: on 100 B/s links with a
// 50-byte bucket, a 40-byte message is through at once, a 100-byte one
// right behind it gets the bucket's last 10 bytes and then the rate (0.9
// s); after the links idle 0.5 s the bucket holds 50 bytes again.
func TestNetworkBurst(t *testing.T) {
	spec := cluster.Uniform(2, 4, 0, 100, 0)
	spec.Link.BurstBytes = 50
	nw := newNetwork(spec, nil)
	nw.add(&flow{key: msgKey{0, 1, 1}, remaining: 40, cap: 100})
	nw.add(&flow{key: msgKey{0, 1, 2}, remaining: 100, cap: 100})
	done := drain(nw)
	if math.Abs(done[msgKey{0, 1, 1}]) > 1e-9 || math.Abs(done[msgKey{0, 1, 2}]-0.9) > 1e-9 {
		t.Errorf("completions %v, want 0 s and 0.9 s", done)
	}
	nw.advance(nw.now + 0.5)
	nw.add(&flow{key: msgKey{0, 1, 3}, remaining: 150, cap: 100})
	start := nw.now
	if at := drain(nw)[msgKey{0, 1, 3}]; math.Abs(at-start-1) > 1e-9 {
		t.Errorf("after 0.5 s idle a 150-byte message took %g s, want 1 (50 at once, 100 at the rate)", at-start)
	}
	// A pair whose link has no bucket (an override without burst_bytes)
	// passes at its rate from the first byte.
	spec.Links = []cluster.LinkOverride{{A: "dev0", B: "dev1", Link: cluster.Link{Bandwidth: 100}}}
	nw = newNetwork(spec, nil)
	nw.add(&flow{key: msgKey{0, 1, 1}, remaining: 40, cap: 100})
	if at := drain(nw)[msgKey{0, 1, 1}]; math.Abs(at-0.4) > 1e-9 {
		t.Errorf("without a bucket the message took %g s, want 0.4", at)
	}
}

// Connections share a link in proportion to their weights: from one
// sender, 100 bytes each to two peers with weights 3 and 1 arrive at
// 4/3 s (at 75 B/s) and 2 s (the total), where even shares deliver both at
// 2 s.
func TestNetworkWeightedShare(t *testing.T) {
	nw := newNetwork(cluster.Uniform(3, 4, 0, 100, 0), nil)
	nw.weight[0][1], nw.weight[0][2] = 3, 1
	nw.add(&flow{key: msgKey{0, 1, 0}, remaining: 100, cap: 100})
	nw.add(&flow{key: msgKey{0, 2, 0}, remaining: 100, cap: 100})
	done := drain(nw)
	if math.Abs(done[msgKey{0, 1, 0}]-4.0/3) > 1e-9 || math.Abs(done[msgKey{0, 2, 0}]-2) > 1e-9 {
		t.Errorf("completions %v, want 4/3 s and 2 s", done)
	}
}
