package profile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/iop-edge/iop/internal/cputime"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/tensor"
	"github.com/iop-edge/iop/internal/transport"
)

// LinkRequest asks a device to measure its link to a peer.
type LinkRequest struct {
	// Peer is the address of the other device's worker (or agent).
	Peer string `json:"peer"`
	// Seconds is how long the bulk transfer streams (0: 2).
	Seconds float64 `json:"seconds,omitempty"`
	// Pings is the number of round trips for the latency (0: 20).
	Pings int `json:"pings,omitempty"`
	// Bursts is the number of timed single messages after idle pauses
	// that measure the link's burst (0: 3; negative: none).
	Bursts int `json:"bursts,omitempty"`
	// ChunkBytes is the size of each tensor sent (0: 1 MiB).
	ChunkBytes int `json:"chunk_bytes,omitempty"`
	// Rate, when set, shapes the measuring connection in process
	// (internal/shaper), for loopback emulation without the kernel
	// testbed. LatencyMS, when set, is held on every reply this side
	// receives, as the workers' meshes hold every message.
	Rate      float64 `json:"rate,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// latency is the emulated per-message latency as a duration.
func (r *LinkRequest) latency() time.Duration { return msDuration(r.LatencyMS) }

// msDuration converts milliseconds to a duration.
func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

func (r *LinkRequest) defaults() {
	if r.Seconds <= 0 {
		r.Seconds = 2
	}
	if r.Pings <= 0 {
		r.Pings = 20
	}
	if r.ChunkBytes <= 0 {
		r.ChunkBytes = 1 << 20
	}
	if r.Bursts == 0 {
		r.Bursts = 3
	}
}

// LinkResult is a measured link.
type LinkResult struct {
	// Bandwidth is the goodput of framed tensors (bytes/s) as the
	// receiver saw it, after a warm-up: what the runtime's transfers get.
	Bandwidth float64 `json:"bandwidth"`
	// LatencyMS is half the median round trip of a small control
	// message (with an emulated LatencyMS in the request, which holds
	// only the reply, that delay is added once more): the per-message
	// latency of the cost model.
	LatencyMS float64 `json:"latency_ms"`
	// MinRTTMS and MedianRTTMS are the round-trip times measured.
	MinRTTMS    float64 `json:"min_rtt_ms"`
	MedianRTTMS float64 `json:"median_rtt_ms"`
	// Bytes and Seconds are what the bandwidth was computed from.
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// SendCPUNSPerByte and RecvCPUNSPerByte are the CPU time the sending
	// and the receiving process spent per byte of the stream (framing,
	// CRC, system calls, the kernel's network stack as far as it runs in
	// the process); 0 when unknown.
	SendCPUNSPerByte float64 `json:"send_cpu_ns_per_byte,omitempty"`
	RecvCPUNSPerByte float64 `json:"recv_cpu_ns_per_byte,omitempty"`
	// Sent is every byte this side streamed (warm-up included).
	Sent int64 `json:"sent,omitempty"`
	// BurstBytes is what the link passes at once after a pause (a
	// shaper's token bucket): a message of BurstProbeBytes sent after the
	// link idled arrives (BurstProbeBytes − BurstBytes)/Bandwidth after
	// the round trip; the median of the probes, about 0 for a plain link.
	// Reported, not in the cluster spec: letting messages through with it
	// made the cost model's predictions worse (docs/VALIDATION.md).
	BurstBytes      float64 `json:"burst_bytes"`
	BurstProbeBytes int64   `json:"burst_probe_bytes,omitempty"`
}

// probeMsg is a control message of the probe protocol.
//
//	measuring side                  far side (ServeProbe)
//	{ping}                     ─►
//	                           ◄─   {pong}
//	{bulk, warmup_ms}          ─►
//	tensor × many              ─►   (counted after the warm-up)
//	{end}                      ─►
//	                           ◄─   {bulk-result, bytes, ns}
//	(idle) tensor, {ping}      ─►   (× Bursts: the burst)
//	                           ◄─   {pong}
//	{bye}                      ─►   (closes)
//
// MeasureMessages sends {echo} instead; the far side then sends every
// tensor back.
type probeMsg struct {
	Type     string `json:"type"`
	WarmupMS int64  `json:"warmup_ms,omitempty"`
	Bytes    int64  `json:"bytes,omitempty"`
	NS       int64  `json:"ns,omitempty"`
	CPUNS    int64  `json:"cpu_ns,omitempty"` // the receiver's CPU time over NS
	Error    string `json:"error,omitempty"`
}

// MeasureLink measures the link over c, whose far end runs ServeProbe: the
// round-trip time of small control messages, then the goodput of a stream
// of tensors. It does not close c.
func MeasureLink(ctx context.Context, c *transport.Conn, req LinkRequest) (*LinkResult, error) {
	req.defaults()
	if dl, ok := ctx.Deadline(); ok {
		c.NetConn().SetDeadline(dl)
		defer c.NetConn().SetDeadline(time.Time{})
	}
	res := &LinkResult{}
	rtts := make([]float64, 0, req.Pings)
	for k := 0; k < req.Pings; k++ {
		s := time.Now()
		if err := c.WriteControl(uint64(k), probeMsg{Type: "ping"}); err != nil {
			return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
		}
		var m probeMsg
		if err := readControl(c, &m, req.latency()); err != nil {
			return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
		}
		if m.Type != "pong" {
			return nil, fmt.Errorf("probe %s: got %q, want pong", req.Peer, m.Type)
		}
		rtts = append(rtts, time.Since(s).Seconds()*1e3)
	}
	res.MedianRTTMS = median(append([]float64(nil), rtts...))
	res.MinRTTMS = rtts[0]
	for _, r := range rtts {
		res.MinRTTMS = min(res.MinRTTMS, r)
	}
	res.LatencyMS = res.MedianRTTMS / 2
	if req.LatencyMS > 0 {
		// Only this side holds what it receives for the emulated
		// latency, once per round trip; every message between workers
		// is held.
		res.LatencyMS = (res.MedianRTTMS + req.LatencyMS) / 2
	}

	dur := time.Duration(req.Seconds * float64(time.Second))
	if err := c.WriteControl(0, probeMsg{Type: "bulk", WarmupMS: (dur / 5).Milliseconds()}); err != nil {
		return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
	}
	chunk := tensor.New(tensor.Float32, tensor.Shape{req.ChunkBytes / 4})
	for i := range chunk.F {
		chunk.F[i] = float32(i % 1000)
	}
	end := time.Now().Add(dur)
	cpu0 := cputime.Process()
	var sent int64
	for k := 0; time.Now().Before(end); k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.WriteTensor(1, k, chunk); err != nil {
			return nil, fmt.Errorf("probe %s: send: %w", req.Peer, err)
		}
		sent += chunk.Bytes()
	}
	if cpu := cputime.Process() - cpu0; cpu > 0 && sent > 0 {
		res.SendCPUNSPerByte = float64(cpu.Nanoseconds()) / float64(sent)
	}
	if err := c.WriteControl(0, probeMsg{Type: "end"}); err != nil {
		return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
	}
	var m probeMsg
	if err := readControl(c, &m, 0); err != nil {
		return nil, fmt.Errorf("probe %s: %w", req.Peer, err)
	}
	if m.Type != "bulk-result" || m.Error != "" {
		return nil, fmt.Errorf("probe %s: %s %s", req.Peer, m.Type, m.Error)
	}
	if m.NS <= 0 || m.Bytes <= 0 {
		return nil, fmt.Errorf("probe %s: too little data after the warm-up (%d bytes in %d ns); stream longer", req.Peer, m.Bytes, m.NS)
	}
	res.Bytes, res.Seconds = m.Bytes, float64(m.NS)/1e9
	res.Bandwidth = float64(m.Bytes) / res.Seconds
	if m.CPUNS > 0 {
		res.RecvCPUNSPerByte = float64(m.CPUNS) / float64(m.Bytes)
	}
	res.Sent = sent
	if req.Bursts > 0 {
		if err := measureBurst(ctx, c, req, res); err != nil {
			return nil, fmt.Errorf("probe %s: burst: %w", req.Peer, err)
		}
	}
	c.WriteControl(0, probeMsg{Type: "bye"})
	return res, nil
}

// measureBurst times single messages sent after the link idled: a shaper
// that keeps a token bucket (tc tbf) lets the bucket's bytes through at
// once, and only the rest at the sustained rate. Each probe writes a
// tensor of res.BurstProbeBytes and a ping behind it, and waits for the
// pong: (probe − burst)/bandwidth + one round trip.
func measureBurst(ctx context.Context, c *transport.Conn, req LinkRequest, res *LinkResult) error {
	bw := res.Bandwidth
	size := int64(min(max(bw*0.02, 256<<10), 4<<20)) &^ 3 // ~20 ms at the rate
	res.BurstProbeBytes = size
	// A bucket that matters holds less than the probe and refills at the
	// rate: the link idles that long before each probe.
	idle := time.Duration(max(60e6, 1.2e9*float64(size)/bw))
	probes := req.Bursts
	if float64(size)/bw > 0.5 {
		probes = 1 // a slow link: one probe of a second or more
	}
	chunk := tensor.New(tensor.Float32, tensor.Shape{int(size / 4)})
	rtt := res.MedianRTTMS / 1e3 // with this side's emulated delay, as the tensor has
	var bursts []float64
	for k := 0; k < probes; k++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(idle):
		}
		s := time.Now()
		if err := c.WriteTensor(2, k, chunk); err != nil {
			return err
		}
		if err := c.WriteControl(uint64(k), probeMsg{Type: "ping"}); err != nil {
			return err
		}
		var m probeMsg
		if err := readControl(c, &m, req.latency()); err != nil {
			return err
		}
		if m.Type != "pong" {
			return fmt.Errorf("got %q, want pong", m.Type)
		}
		transfer := max(0, time.Since(s).Seconds()-rtt)
		bursts = append(bursts, min(float64(size), max(0, float64(size)-transfer*bw)))
	}
	res.BurstBytes = math.Round(median(bursts))
	return nil
}

// readControl reads the next frame, which must be a control message, into
// v and then holds it for the emulated latency lat, as a worker's mesh
// holds every message it receives (transport.MeshConfig.Latency).
func readControl(c *transport.Conn, v any, lat time.Duration) error {
	h, err := c.ReadHeader(time.Time{})
	if err != nil {
		return err
	}
	if h.Kind != transport.Control {
		return fmt.Errorf("got a %s frame, want a control message", h.Kind)
	}
	if err := c.ReadControl(h, v); err != nil {
		return err
	}
	if lat > 0 {
		shaper.SleepUntil(time.Now().Add(lat))
	}
	return nil
}

// ServeProbe is the far end of MeasureLink: it answers pings and counts a
// bulk stream until the measuring side says bye or closes. The caller has
// read the hello and closes c afterwards.
func ServeProbe(c *transport.Conn) error {
	var (
		warmup      time.Duration
		first, from time.Time
		last        time.Time
		counted     int64
		cpuFrom     time.Duration // CPU time at from
		cpuLast     time.Duration // CPU time at last
		echo        bool          // send every tensor back (MeasureMessages)
	)
	for {
		h, err := c.ReadHeader(time.Time{})
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("probe: %w", err)
		}
		switch h.Kind {
		case transport.Control:
			var m probeMsg
			if err := c.ReadControl(h, &m); err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			switch m.Type {
			case "ping":
				if err := c.WriteControl(h.Req, probeMsg{Type: "pong"}); err != nil {
					return fmt.Errorf("probe: %w", err)
				}
			case "echo":
				echo = true
			case "bulk":
				warmup = time.Duration(m.WarmupMS) * time.Millisecond
				first, from, last, counted = time.Time{}, time.Time{}, time.Time{}, 0
			case "end":
				r := probeMsg{Type: "bulk-result"}
				if !from.IsZero() && last.After(from) {
					r.Bytes, r.NS = counted, last.Sub(from).Nanoseconds()
					r.CPUNS = (cpuLast - cpuFrom).Nanoseconds()
				}
				if err := c.WriteControl(h.Req, r); err != nil {
					return fmt.Errorf("probe: %w", err)
				}
			case "bye":
				return nil
			default:
				return fmt.Errorf("probe: unknown message %q", m.Type)
			}
		case transport.TensorHead:
			t, err := c.ReadTensorBody(h)
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
			if echo {
				echoed.Add(2) // one received, one sent (counted before the reply arrives)
				if err := c.WriteTensor(h.Req, int(h.Tag), t); err != nil {
					return fmt.Errorf("probe: %w", err)
				}
				continue
			}
			now := time.Now()
			switch {
			case first.IsZero():
				first = now
			case from.IsZero() && now.Sub(first) >= warmup:
				from = now // bytes up to here belong to the warm-up
				cpuFrom = cputime.Process()
			case !from.IsZero():
				counted += t.Bytes()
				last = now
				cpuLast = cputime.Process()
			}
		case transport.Ping:
			if _, err := c.ReadSmall(h); err != nil {
				return fmt.Errorf("probe: %w", err)
			}
		default:
			return fmt.Errorf("probe: unexpected %s frame", h.Kind)
		}
	}
}
