package cost

import (
	"math"
	"sort"
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

// sendAll puts messages of the given sizes (bytes) on nw at once, each
// capped at rate, and checks when each is through (seconds from now).
func sendAll(t *testing.T, nw *network, rate float64, size, want map[msgKey]float64) {
	t.Helper()
	start := nw.now
	for _, k := range sortedKeys(size) {
		nw.add(&flow{key: k, remaining: size[k], cap: rate})
	}
	done := drain(nw)
	for k, w := range want {
		if at, ok := done[k]; !ok || math.Abs(at-start-w) > 1e-9 {
			t.Errorf("message %v through at %g s, want %g (all: %v)", k, at-start, w, done)
		}
	}
}

// sortedKeys orders messages by sender, receiver and tag: the order in
// which sendAll adds them (a pair's messages queue in that order).
func sortedKeys(m map[msgKey]float64) []msgKey {
	ks := make([]msgKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if a.from != b.from {
			return a.from < b.from
		}
		if a.to != b.to {
			return a.to < b.to
		}
		return a.tag < b.tag
	})
	return ks
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
	sendAll(t, nw, 100, map[msgKey]float64{{0, 2, 0}: 100, {1, 2, 0}: 300}, map[msgKey]float64{{0, 2, 0}: 2, {1, 2, 0}: 4})
}

// Messages between the same two devices go in order on their connection:
// the first is through after one message time, not after two.
func TestNetworkPairFIFO(t *testing.T) {
	nw := newNetwork(cluster.Uniform(2, 4, 0, 100, 0), nil)
	sendAll(t, nw, 100, map[msgKey]float64{{0, 1, 1}: 100, {0, 1, 2}: 100}, map[msgKey]float64{{0, 1, 1}: 1, {0, 1, 2}: 2})
}

// A link that idled passes its bucket at once: on 100 B/s links with a
// 50-byte bucket, a 40-byte message is through at once, a 100-byte one
// right behind it gets the bucket's last 10 bytes and then the rate (0.9
// s); after the links idle 0.5 s the bucket holds 50 bytes again.
func TestNetworkBurst(t *testing.T) {
	spec := cluster.Uniform(2, 4, 0, 100, 0)
	spec.Link.BurstBytes = 50
	nw := newNetwork(spec, nil)
	sendAll(t, nw, 100, map[msgKey]float64{{0, 1, 1}: 40, {0, 1, 2}: 100}, map[msgKey]float64{{0, 1, 1}: 0, {0, 1, 2}: 0.9})
	// After 0.5 s idle: 50 bytes at once, 100 at the rate.
	nw.advance(nw.now + 0.5)
	sendAll(t, nw, 100, map[msgKey]float64{{0, 1, 3}: 150}, map[msgKey]float64{{0, 1, 3}: 1})
	// A pair whose link has no bucket (an override without burst_bytes)
	// passes at its rate from the first byte.
	spec.Links = []cluster.LinkOverride{{A: "dev0", B: "dev1", Link: cluster.Link{Bandwidth: 100}}}
	sendAll(t, newNetwork(spec, nil), 100, map[msgKey]float64{{0, 1, 1}: 40}, map[msgKey]float64{{0, 1, 1}: 0.4})
}

// Connections share a link in proportion to their weights: from one
// sender, 100 bytes each to two peers with weights 3 and 1 arrive at
// 4/3 s (at 75 B/s) and 2 s (the total), where even shares deliver both at
// 2 s.
func TestNetworkWeightedShare(t *testing.T) {
	nw := newNetwork(cluster.Uniform(3, 4, 0, 100, 0), nil)
	nw.weight[0][1], nw.weight[0][2] = 3, 1
	sendAll(t, nw, 100, map[msgKey]float64{{0, 1, 0}: 100, {0, 2, 0}: 100}, map[msgKey]float64{{0, 1, 0}: 4.0 / 3, {0, 2, 0}: 2})
}
