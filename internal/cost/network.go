package cost

import (
	"math"

	"github.com/iop-edge/iop/internal/cluster"
)

// network is a fluid model of the messages in flight: every message is a
// flow whose rate is its max-min fair share of the links it crosses (the
// sender's uplink and the receiver's downlink on a switched network, the
// one medium on a shared one), capped by the bandwidth of its device pair.
// Rates are recomputed whenever a flow starts or ends, as TCP flows share a
// link. (Booking each message on its links one after another, as the
// simulator did before, serialized an all-gather among three devices into
// three rounds where the links carry it in two: oc, hp and iop on three and
// four devices were predicted 25–45 % slow.) Messages between the same two
// devices share one connection and go one after another.
type network struct {
	spec  *cluster.Spec
	now   float64
	flows []*flow // the messages on the wire: the head of each pair's queue
	// queued holds, per (sender, receiver), the messages waiting behind the
	// one on the wire: a pair of devices shares one TCP connection, whose
	// messages go in order.
	queued map[[2]int][]*flow
	// capacity of each device's uplink and downlink (bytes/s): the fastest
	// link it has to any peer.
	capacity []float64
}

type flow struct {
	key       msgKey
	remaining float64 // bytes
	cap       float64 // pair bandwidth, bytes/s
	latency   float64 // seconds, added on arrival
	rate      float64
	span      int // index of the send span in the sender's timeline
}

func newNetwork(spec *cluster.Spec) *network {
	n := spec.N()
	nw := &network{spec: spec, capacity: make([]float64, n), queued: map[[2]int][]*flow{}}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j {
				nw.capacity[i] = max(nw.capacity[i], float64(spec.LinkBetween(i, j).Bandwidth))
			}
		}
		if nw.capacity[i] == 0 {
			nw.capacity[i] = float64(spec.Link.Bandwidth)
		}
	}
	return nw
}

// add sends a message now: on the wire at once, or behind the messages
// already on its pair's connection.
func (nw *network) add(f *flow) {
	pair := [2]int{f.key.from, f.key.to}
	for _, g := range nw.flows {
		if g.key.from == f.key.from && g.key.to == f.key.to {
			nw.queued[pair] = append(nw.queued[pair], f)
			return
		}
	}
	nw.flows = append(nw.flows, f)
	nw.share()
}

// resources returns the links flow f crosses, as indices: uplink d = d,
// downlink d = n + d, the shared medium = 2n.
func (nw *network) resources(f *flow) []int {
	n := nw.spec.N()
	if nw.spec.Topology == cluster.Shared {
		return []int{2 * n}
	}
	return []int{f.key.from, n + f.key.to}
}

// share sets every flow's rate to its max-min fair share (progressive
// filling: all unfrozen flows grow together until a link is full or a flow
// reaches its pair's bandwidth; those flows freeze).
func (nw *network) share() {
	n := nw.spec.N()
	capacity := make([]float64, 2*n+1)
	for d := 0; d < n; d++ {
		capacity[d], capacity[n+d] = nw.capacity[d], nw.capacity[d]
	}
	capacity[2*n] = float64(nw.spec.Link.Bandwidth)
	left := append([]float64(nil), capacity...)
	active := make([]bool, len(nw.flows))
	count := make([]int, len(left))
	res := make([][]int, len(nw.flows))
	for i, f := range nw.flows {
		f.rate = 0
		active[i] = true
		res[i] = nw.resources(f)
		for _, r := range res[i] {
			count[r]++
		}
	}
	for remaining := len(nw.flows); remaining > 0; {
		inc := math.Inf(1)
		for r, c := range count {
			if c > 0 {
				inc = min(inc, left[r]/float64(c))
			}
		}
		for i, f := range nw.flows {
			if active[i] {
				inc = min(inc, f.cap-f.rate)
			}
		}
		inc = max(inc, 0)
		for i, f := range nw.flows {
			if active[i] {
				f.rate += inc
				for _, r := range res[i] {
					left[r] -= inc
				}
			}
		}
		for i, f := range nw.flows {
			if !active[i] {
				continue
			}
			full := f.rate >= f.cap*(1-1e-12)
			for _, r := range res[i] {
				if left[r] <= 1e-9*capacity[r] {
					full = true
				}
			}
			if full {
				active[i] = false
				remaining--
				for _, r := range res[i] {
					count[r]--
				}
			}
		}
	}
}

// next is the time the next flow completes (ok false without flows).
func (nw *network) next() (t float64, ok bool) {
	t = math.Inf(1)
	for _, f := range nw.flows {
		if f.rate > 0 {
			t = min(t, nw.now+f.remaining/f.rate)
		}
	}
	return t, len(nw.flows) > 0 && !math.IsInf(t, 1)
}

// advance moves the flows on to time t (no flow may complete before t).
func (nw *network) advance(t float64) {
	if t <= nw.now {
		return
	}
	for _, f := range nw.flows {
		f.remaining -= f.rate * (t - nw.now)
	}
	nw.now = t
}

// completed removes and returns the flows that are through at the current
// time, and reshares the links among the others.
func (nw *network) completed() []*flow {
	var done []*flow
	kept := nw.flows[:0]
	for _, f := range nw.flows {
		if f.remaining <= max(1e-6, f.rate*1e-12) { // through, up to rounding
			done = append(done, f)
		} else {
			kept = append(kept, f)
		}
	}
	nw.flows = kept
	for _, f := range done {
		pair := [2]int{f.key.from, f.key.to}
		if q := nw.queued[pair]; len(q) > 0 {
			nw.flows = append(nw.flows, q[0])
			nw.queued[pair] = q[1:]
		}
	}
	if len(done) > 0 {
		nw.share()
	}
	return done
}
