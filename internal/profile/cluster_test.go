package profile

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/shaper"
	"github.com/iop-edge/iop/internal/transport"
)

// agents starts n agents on loopback and returns a spec naming them.
func agents(t *testing.T, n int) *cluster.Spec {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := cluster.Uniform(n, 1, 0, 100e6/8, 1)
	for i := range s.Devices {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go Serve(ctx, ln, AgentOptions{Name: s.Devices[i].Name})
		s.Devices[i].Address = ln.Addr().String()
	}
	return s
}

func TestClusterLoopbackShaped(t *testing.T) {
	s := agents(t, 3)
	rate := 50e6 / 8
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, rep, err := Cluster(ctx, s, ClusterOptions{
		Ops:           OpsRequest{Threads: 1, BudgetMS: 250},
		Link:          LinkRequest{Seconds: 0.6, Pings: 5, Rate: rate},
		MeshSeconds:   0.6,
		MessageRounds: 50,
		FanoutRounds:  2,
		Progress:      func(m string) { t.Log(m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// The shaper's bucket holds shaper.DefaultBurst bytes of frames.
	for _, p := range rep.Links {
		// Timing on a loaded machine stretches the probe, which reads as
		// a smaller burst: only its presence and its bound are asserted.
		if b := p.Link.BurstBytes; p.A != "coordinator" && (b < 0.1*shaper.DefaultBurst || b > 1.5*shaper.DefaultBurst) {
			t.Errorf("%s → %s: burst %.0f bytes, want about the shaper's %d", p.A, p.B, b, shaper.DefaultBurst)
		}
	}
	if out.Link.BurstBytes <= 0 {
		t.Errorf("spec link %+v: no burst", out.Link)
	}
	for _, d := range rep.Devices {
		// Each device sent to its two peers at once, twice.
		if d.Fanout == nil || len(d.Fanout.DoneNS) != 2 || len(d.Fanout.DoneNS[0]) != 2 {
			t.Errorf("%s: fan-out not measured: %+v", d.Name, d.Fanout)
		}
	}
	if sg := out.Link.ShareSpread; sg < 0 || sg > 3 {
		t.Errorf("spec link share spread %g", sg)
	}
	for i, d := range rep.Devices {
		// Every device streamed to both others and received from them.
		t.Logf("%s: mesh %d bytes moved, %.2f ns CPU per byte", d.Name, d.MeshBytes, d.MeshCPUNSPerByte)
		if d.MeshBytes <= 0 || d.MeshCPUNSPerByte <= 0 || out.Devices[i].SendCPUNSPerByte != d.MeshCPUNSPerByte {
			t.Errorf("%s: mesh not measured or not in the spec: %+v, spec %+v", d.Name, d, out.Devices[i])
		}
	}
	for i, d := range rep.Devices {
		// Each device sent 50 tensors to each of its 2 peers and got them
		// back, and echoed theirs (the agents share this process: its
		// CPU time covers all three).
		m := d.Messages
		t.Logf("%s: %+v, %.0f ns CPU per message beyond its bytes", d.Name, m, d.MessageCPUNS)
		if m == nil || m.Messages < 2*50*2 || m.Bytes != m.Messages*4096 || m.CPUNS <= 0 {
			t.Errorf("%s: messages not measured: %+v", d.Name, m)
		}
		// What the per-byte figure does not already charge, per message
		// (in one process the mesh's per-byte figure covers all three
		// agents and may leave nothing).
		perByte := out.Devices[i].SendCPUNSPerByte
		want := max(0, float64(m.CPUNS)-perByte*float64(m.Bytes)) / float64(m.Messages)
		if v := out.Devices[i].MessageCPUMS; math.Abs(v*1e6-want) > 0.01*want+1 || v > 5 {
			t.Errorf("%s: %.4f ms of CPU per message in the spec, want %.4f", d.Name, v, want/1e6)
		}
	}
	for _, d := range out.Devices {
		t.Logf("%s: %.1f GFLOP/s, by class %v", d.Name, d.GFLOPS, d.ByClass)
		if d.GFLOPS <= 0 || len(d.ByClass) != len(Classes) {
			t.Errorf("%s: speeds not measured: %+v", d.Name, d)
		}
	}
	for _, p := range rep.Links {
		if p.A == "coordinator" {
			// This process's own connection, unshaped: faster.
			t.Logf("coordinator → %s: %.1f Mbit/s, rtt %.3f ms", p.B, p.Link.Bandwidth*8/1e6, p.Link.MedianRTTMS)
			continue
		}
		r := p.Link.Bandwidth / rate
		t.Logf("%s → %s: %.1f Mbit/s (%.0f %% of the shaped rate), rtt %.3f ms, burst %.0f bytes", p.A, p.B, p.Link.Bandwidth*8/1e6, 100*r, p.Link.MedianRTTMS, p.Link.BurstBytes)
		if r < 0.7 || r > 1.15 {
			t.Errorf("%s → %s: goodput %.0f %% of the shaper's rate", p.A, p.B, 100*r)
		}
	}
	t.Logf("link %+v, overrides %+v, coordinator %+v", out.Link, out.Links, out.Coordinator)
	if out.Coordinator == nil || out.Coordinator.Bandwidth < out.Link.Bandwidth {
		t.Errorf("coordinator link %+v: not measured, or slower than the shaped links", out.Coordinator)
	}
	if out.Link.Bandwidth <= 0 || out.Link.LatencyMS < 0 {
		t.Errorf("link %+v", out.Link)
	}
	if err := out.Validate(); err != nil {
		t.Error(err)
	}
	// The input spec is not modified.
	if s.Devices[0].ByClass != nil {
		t.Error("Cluster modified its input")
	}
}

func TestAgentErrors(t *testing.T) {
	s := agents(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.Devices[0].Address, transportDialer(), zeroLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(ctx, Request{Type: "nonsense"}); err == nil {
		t.Error("unknown request: no error")
	}
	if _, err := c.Link(ctx, LinkRequest{Peer: "127.0.0.1:1", Seconds: 0.1}); err == nil {
		t.Error("link to a closed port: no error")
	}
	// The session survives errors.
	info, err := c.Info(ctx)
	if err != nil || info.NumCPU <= 0 {
		t.Errorf("info after errors: %+v, %v", info, err)
	}
}

func TestLocal(t *testing.T) {
	s, r, err := Local(context.Background(), "here", OpsRequest{BudgetMS: 250})
	if err != nil {
		t.Fatal(err)
	}
	if s.N() != 1 || s.Devices[0].Name != "here" || s.Devices[0].GFLOPS != r.GFLOPS {
		t.Errorf("spec %+v", s)
	}
}

// A probe whose own writes carry an emulated latency delays only the
// outbound half of each round trip; every message between workers carries
// it, so the link's one-way latency is the whole emulated delay, not half.
func TestLinkEmulatedLatency(t *testing.T) {
	s := agents(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const lat = 20.0
	r, err := LinkTo(ctx, Dialer{}, LinkRequest{Peer: s.Devices[0].Address, Seconds: 0.3, Pings: 5, LatencyMS: lat}, transport.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("emulated %g ms: rtt %.3f ms, one-way latency %.3f ms", lat, r.MedianRTTMS, r.LatencyMS)
	if r.LatencyMS < 0.95*lat || r.LatencyMS > 1.5*lat {
		t.Errorf("one-way latency %.3f ms for an emulated %g ms", r.LatencyMS, lat)
	}
}

// MeasureMessages against one agent in this process: every round sends a
// tensor, gets it back, and (serving) received and echoed it.
func TestMeasureMessages(t *testing.T) {
	s := agents(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const rounds, lat = 40, 0.5
	start := time.Now()
	r, err := MeasureMessages(ctx, Dialer{}, MessagesRequest{Peers: []string{s.Devices[0].Address}, Rounds: rounds, Bytes: 1024, LatencyMS: lat}, transport.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v in %v: %.1f µs CPU per message", r, time.Since(start), float64(r.CPUNS)/float64(r.Messages)/1e3)
	if r.Messages != 4*rounds || r.Bytes != 4*rounds*1024 || r.CPUNS <= 0 {
		t.Errorf("%+v: want %d messages of 1024 bytes and some CPU time", r, 4*rounds)
	}
	// Each round waits for its echo and holds it for the latency.
	if min := time.Duration(rounds * lat * float64(time.Millisecond)); time.Duration(r.WallNS) < min {
		t.Errorf("%d rounds took %v, less than their emulated latency %v", rounds, time.Duration(r.WallNS), min)
	}
	if _, err := MeasureMessages(ctx, Dialer{}, MessagesRequest{Peers: []string{"127.0.0.1:1"}}, transport.Limits{}); err == nil {
		t.Error("no error for a peer that does not listen")
	}
}
