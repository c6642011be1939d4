package profile

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/transport"
)

// Besides its bytes, every message costs the worker CPU of its own: the
// system calls of its frames, waking the goroutines that write, read and
// hand it on, the scheduler and futex work around them. Streams of large
// messages (MeasureMesh) hide that cost in their per-byte figure; the
// layers of a partitioned request exchange many small ones (AlexNet's
// fully-connected slices, MobileNetV2's halos), and on the testbed the
// workers' process CPU per request exceeded compute plus bytes by about
// 0.3 ms per message sent or received (docs/VALIDATION.md, session 6).

// MessagesRequest asks a device to exchange small tensors with every
// peer in lockstep rounds, as a partitioned layer does: in each round it
// sends one tensor to every peer and waits for each to come back. Every
// device measures at once, so each also echoes its peers' tensors.
type MessagesRequest struct {
	Peers []string `json:"peers"`
	// Rounds (0: 300) after 20 untimed ones; Bytes per tensor (0: 4096).
	Rounds int `json:"rounds,omitempty"`
	Bytes  int `json:"bytes,omitempty"`
	// Rate and LatencyMS emulate the links as for a LinkRequest.
	Rate      float64 `json:"rate,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// MessagesResult is one device's side of the message measurement.
type MessagesResult struct {
	// CPUNS and WallNS are the process's CPU time and the wall time of the
	// timed rounds; Messages and Bytes what it sent and received in them
	// (its own tensors and their echoes, and its peers' tensors it
	// echoed).
	CPUNS    int64 `json:"cpu_ns"`
	WallNS   int64 `json:"wall_ns"`
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// echoed counts the tensors this process's probe servers received and
// sent back (ServeProbe in echo mode).
var echoed atomic.Int64

// MeasureMessages runs the rounds of req against its peers (each serving
// ServeProbe) and reports the process's CPU time over them.
func MeasureMessages(ctx context.Context, d Dialer, req MessagesRequest, lim transport.Limits) (*MessagesResult, error) {
	if req.Rounds <= 0 {
		req.Rounds = 300
	}
	if req.Bytes <= 0 {
		req.Bytes = 4096
	}
	lat := msDuration(req.LatencyMS)
	conns, err := dialPeers(ctx, d, req.Peers, shaper.Options{WriteRate: req.Rate}, lim)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer closeConns(conns)
	for i, c := range conns {
		if err := c.WriteControl(0, probeMsg{Type: "echo"}); err != nil {
			return nil, fmt.Errorf("messages %s: %w", req.Peers[i], err)
		}
	}
	msg := tensor.New(tensor.Float32, tensor.Shape{req.Bytes / 4})
	round := func(k int) error {
		for i, c := range conns {
			if err := c.WriteTensor(uint64(k), i, msg); err != nil {
				return fmt.Errorf("messages %s: send: %w", req.Peers[i], err)
			}
		}
		for i, c := range conns {
			h, err := c.ReadHeader(time.Time{})
			if err == nil && h.Kind != transport.TensorHead {
				err = fmt.Errorf("got a %s frame, want a tensor", h.Kind)
			}
			if err == nil {
				_, err = c.ReadTensorBody(h)
			}
			if err != nil {
				return fmt.Errorf("messages %s: receive: %w", req.Peers[i], err)
			}
			if lat > 0 {
				shaper.SleepUntil(time.Now().Add(lat)) // as a worker's mesh holds it
			}
		}
		return nil
	}
	const warmup = 20
	for k := 0; k < warmup; k++ {
		if err := round(k); err != nil {
			return nil, err
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		for _, c := range conns {
			c.NetConn().SetDeadline(dl)
		}
	}
	start, cpu0, served0 := time.Now(), cputime.Process(), echoed.Load()
	for k := warmup; k < warmup+req.Rounds; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := round(k); err != nil {
			return nil, err
		}
	}
	res := &MessagesResult{CPUNS: (cputime.Process() - cpu0).Nanoseconds(), WallNS: time.Since(start).Nanoseconds()}
	res.Messages = 2*int64(req.Rounds)*int64(len(conns)) + echoed.Load() - served0
	res.Bytes = res.Messages * int64(msg.Bytes())
	return res, nil
}
