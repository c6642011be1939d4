package profile

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/transport"
)

// A device that sends to several peers at once (an input forwarded to
// every device, an all-gather) has one TCP connection per peer, and they
// leave through one queue. They do not share it evenly: on the testbed,
// three 602 KB tensors sent at once from one device arrived after 0.65,
// 0.89 and 0.98 of the time the three take together, where a fair share
// would deliver all three at the end — and an all-gather waits for its
// slowest message. MeasureFanout times such sends; FitShareSpread turns
// the times into the spread of the shares the cost model draws
// (cluster.Link.ShareSpread).

// FanoutRequest asks a device to send one tensor to every peer at once,
// Rounds times, with the link idle before each round.
type FanoutRequest struct {
	Peers []string `json:"peers"`
	// Bytes per peer (0: 512 KiB); Rounds (0: 8).
	Bytes  int `json:"bytes,omitempty"`
	Rounds int `json:"rounds,omitempty"`
	// Rate and LatencyMS emulate the device's link in process as a
	// worker's connections do: one bucket for all of them.
	Rate      float64 `json:"rate,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// FanoutResult is when each peer had each round's tensor.
type FanoutResult struct {
	// DoneNS[k][i] is the time from the start of round k until peer i had
	// the tensor (its answer to a ping sent behind it, less half the
	// median round trip of small messages before the rounds).
	DoneNS [][]int64 `json:"done_ns"`
	RTTNS  int64     `json:"rtt_ns"`
}

// MeasureFanout sends req's rounds to its peers (each serving ServeProbe).
func MeasureFanout(ctx context.Context, d Dialer, req FanoutRequest, lim transport.Limits) (*FanoutResult, error) {
	if len(req.Peers) < 2 {
		return nil, fmt.Errorf("fan-out needs at least two peers, got %d", len(req.Peers))
	}
	if req.Bytes <= 0 {
		req.Bytes = 512 << 10
	}
	if req.Rounds <= 0 {
		req.Rounds = 8
	}
	lat := msDuration(req.LatencyMS)
	var shape shaper.Options
	if req.Rate > 0 {
		shape.WriteLimiter = shaper.NewLimiter(req.Rate, 0)
	}
	conns, err := dialPeers(ctx, d, req.Peers, shape, lim)
	if err != nil {
		return nil, fmt.Errorf("fan-out: %w", err)
	}
	defer closeConns(conns)
	if dl, ok := ctx.Deadline(); ok {
		for _, c := range conns {
			c.NetConn().SetDeadline(dl)
		}
	}
	ping := func(i int, tag uint64) error {
		if err := conns[i].WriteControl(tag, probeMsg{Type: "ping"}); err != nil {
			return err
		}
		var m probeMsg
		if err := readControl(conns[i], &m, lat); err != nil {
			return err
		}
		if m.Type != "pong" {
			return fmt.Errorf("got %q, want pong", m.Type)
		}
		return nil
	}
	var rtts []float64
	for k := 0; k < 5; k++ {
		for i := range conns {
			s := time.Now()
			if err := ping(i, uint64(k)); err != nil {
				return nil, fmt.Errorf("fan-out %s: %w", req.Peers[i], err)
			}
			rtts = append(rtts, float64(time.Since(s).Nanoseconds()))
		}
	}
	res := &FanoutResult{RTTNS: int64(median(rtts))}
	msg := tensor.New(tensor.Float32, tensor.Shape{req.Bytes / 4})
	// Long enough for a rate limiter's bucket to refill.
	idle := 100 * time.Millisecond
	if req.Rate > 0 {
		idle = max(idle, time.Duration(1.5*float64(shaper.DefaultBurst)/req.Rate*1e9))
	}
	for k := 0; k < req.Rounds; k++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(idle):
		}
		done := make([]int64, len(conns))
		errs := make([]error, len(conns))
		start := time.Now()
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if errs[i] = c.WriteTensor(uint64(k), i, msg); errs[i] == nil {
					errs[i] = ping(i, uint64(k))
				}
				done[i] = max(0, time.Since(start).Nanoseconds()-res.RTTNS/2)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("fan-out %s: %w", req.Peers[i], err)
			}
		}
		res.DoneNS = append(res.DoneNS, done)
	}
	return res, nil
}

// Fanout asks the device to send a tensor to all req.Peers at once, in
// rounds.
func (c *Client) Fanout(ctx context.Context, req FanoutRequest) (*FanoutResult, error) {
	r, err := c.Do(ctx, Request{Type: "bench-fanout", Fanout: &req})
	if err != nil {
		return nil, err
	}
	if r.Fanout == nil || len(r.Fanout.DoneNS) == 0 {
		return nil, fmt.Errorf("profile %s: empty bench-fanout reply", c.Addr)
	}
	return r.Fanout, nil
}

// earlyShare is the mean, over rounds, of the arrival times of all but the
// last message of a round as fractions of the last one's. Messages that
// share their link evenly arrive together (1); the more uneven the
// shares, the earlier the first ones.
func earlyShare(rounds [][]int64) float64 {
	var sum float64
	var cnt int
	for _, r := range rounds {
		t := make([]float64, len(r))
		for i, v := range r {
			t[i] = float64(v)
		}
		slices.Sort(t)
		last := t[len(t)-1]
		if last <= 0 {
			continue
		}
		for _, v := range t[:len(t)-1] {
			sum += v / last
			cnt++
		}
	}
	if cnt == 0 {
		return 1
	}
	return sum / float64(cnt)
}

// shareArrivals returns when k equal messages that start together on one
// link arrive, as fractions of the last arrival, when they share it in
// proportion to the weights w (the fluid model of cost/network.go on one
// link), sorted.
func shareArrivals(w []float64) []float64 {
	left := make([]float64, len(w))
	for i := range left {
		left[i] = 1
	}
	var t float64
	var out []float64
	active := len(w)
	for active > 0 {
		var sum float64
		for i, r := range left {
			if r > 0 {
				sum += w[i]
			}
		}
		dt := math.Inf(1)
		for i, r := range left {
			if r > 0 {
				dt = min(dt, r*sum/w[i])
			}
		}
		t += dt
		for i, r := range left {
			if r > 0 {
				left[i] = r - dt*w[i]/sum
				if left[i] <= 1e-9 {
					left[i] = 0
					out = append(out, t)
					active--
				}
			}
		}
	}
	for i := range out {
		out[i] /= t
	}
	return out
}

// FitShareSpread returns the spread σ of the connections' log shares
// (cluster.Link.ShareSpread: weights exp(σ·N(0,1))) under which k
// messages sent at once arrive, on average, at the measured earlyShare
// (k ≥ 2), to 0.05.
func FitShareSpread(early float64, k int) float64 {
	if k < 2 {
		return 0
	}
	const draws = 2000
	best, bestErr := 0.0, math.Inf(1)
	for s := 0; s <= 60; s++ {
		sigma := float64(s) * 0.05
		rng := rand.New(rand.NewPCG(3, uint64(k))) // the same draws for every σ
		var sum float64
		w := make([]float64, k)
		for n := 0; n < draws; n++ {
			for i := range w {
				w[i] = math.Exp(sigma * rng.NormFloat64())
			}
			a := shareArrivals(w)
			for _, v := range a[:k-1] {
				sum += v
			}
		}
		if e := math.Abs(sum/float64(draws*(k-1)) - early); e < bestErr {
			best, bestErr = sigma, e
		}
	}
	return math.Round(best*100) / 100
}
