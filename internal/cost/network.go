package cost

import (
	"math"
	"math/rand/v2"

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
// devices share one connection and go one after another. Connections do
// not share a link evenly: each (sender, receiver) connection gets a weight
// (see newNetwork) and the fair share is weighted by it.
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
	// burst is the token bucket of each resource (uplink d, downlink d,
	// the medium; bytes, 0: none) and tokens what it holds now. A link
	// that carries less than its capacity refills at the difference; a
	// message going on the wire first passes at once what all its links
	// hold (tc tbf's bucket, the in-process shaper's burst: 45 KB halos on
	// the testbed cross faster than the sustained rate allows).
	burst, tokens []float64
	free          []float64 // scratch: each resource's unused capacity
	// weight of each connection (sender, receiver) in the fair share.
	weight [][]float64
}

type flow struct {
	key       msgKey
	remaining float64 // bytes
	cap       float64 // pair bandwidth, bytes/s
	latency   float64 // seconds, added on arrival
	rate      float64
	span      int // index of the send span in the sender's timeline
}

// newNetwork returns the network of spec with the links idle. rng, if not
// nil, draws each connection's weight, exp(σ·N(0,1)) with σ the link's
// ShareSpread: TCP connections leaving one device through one FIFO queue
// take unequal shares of it (three 602 KB messages sent at once from one
// testbed device arrived after 0.65, 0.89 and 0.98 of the time the three
// take together; `iop profile` fits σ to such fan-outs, 0.4–0.75 on the
// testbed), and an all-gather waits for the slowest. Nil: every weight 1.
func newNetwork(spec *cluster.Spec, rng *rand.Rand) *network {
	n := spec.N()
	nw := &network{spec: spec, capacity: make([]float64, n), queued: map[[2]int][]*flow{}}
	nw.weight = make([][]float64, n)
	for i := range nw.weight {
		nw.weight[i] = make([]float64, n)
		for j := range nw.weight[i] {
			nw.weight[i][j] = 1
			if sg := spec.LinkBetween(i, j).ShareSpread; rng != nil && i != j && sg > 0 {
				nw.weight[i][j] = math.Exp(sg * rng.NormFloat64())
			}
		}
	}
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
	nw.burst = make([]float64, 2*n+1)
	if spec.Topology != cluster.Shared {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i != j {
					b := spec.LinkBetween(i, j).BurstBytes
					nw.burst[i], nw.burst[n+i] = max(nw.burst[i], b), max(nw.burst[n+i], b)
				}
			}
		}
	}
	nw.tokens = append([]float64(nil), nw.burst...) // the links idled before the request
	nw.free = make([]float64, 2*n+1)
	return nw
}

// onWire puts flow f on the wire: its first bytes pass with the tokens all
// its links hold.
func (nw *network) onWire(f *flow) {
	x := f.remaining
	for _, r := range nw.resources(f) {
		x = min(x, nw.tokens[r])
	}
	if x > 0 {
		f.remaining -= x
		for _, r := range nw.resources(f) {
			nw.tokens[r] -= x
		}
	}
	nw.flows = append(nw.flows, f)
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
	nw.onWire(f)
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

// share sets every flow's rate to its weighted max-min fair share
// (progressive filling: all unfrozen flows grow together, each in
// proportion to its connection's weight, until a link is full or a flow
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
	wsum := make([]float64, len(left)) // weight of the unfrozen flows on each link
	res := make([][]int, len(nw.flows))
	w := make([]float64, len(nw.flows))
	for i, f := range nw.flows {
		f.rate = 0
		active[i] = true
		res[i] = nw.resources(f)
		w[i] = nw.weight[f.key.from][f.key.to]
		for _, r := range res[i] {
			wsum[r] += w[i]
		}
	}
	for remaining := len(nw.flows); remaining > 0; {
		inc := math.Inf(1)
		for r, c := range wsum {
			if c > 1e-12 {
				inc = min(inc, left[r]/c)
			}
		}
		for i, f := range nw.flows {
			if active[i] {
				inc = min(inc, (f.cap-f.rate)/w[i])
			}
		}
		inc = max(inc, 0)
		for i, f := range nw.flows {
			if active[i] {
				f.rate += inc * w[i]
				for _, r := range res[i] {
					left[r] -= inc * w[i]
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
					wsum[r] -= w[i]
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

// advance moves the flows on to time t (no flow may complete before t)
// and refills the token buckets of the links they leave idle.
func (nw *network) advance(t float64) {
	if t <= nw.now {
		return
	}
	dt := t - nw.now
	free := nw.free
	n := nw.spec.N()
	for d := 0; d < n; d++ {
		free[d], free[n+d] = nw.capacity[d], nw.capacity[d]
	}
	for _, f := range nw.flows {
		f.remaining -= f.rate * dt
		for _, r := range nw.resources(f) {
			free[r] -= f.rate
		}
	}
	for r, b := range nw.burst {
		if b > 0 {
			nw.tokens[r] = min(b, nw.tokens[r]+max(0, free[r])*dt)
		}
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
			nw.onWire(q[0])
			nw.queued[pair] = q[1:]
		}
	}
	if len(done) > 0 {
		nw.share()
	}
	return done
}
