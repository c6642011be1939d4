//go:build linux

package profile

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/testbed"
)

// TestClusterOnTestbed measures the links of a kernel-shaped testbed: the
// agents listen and dial inside the devices' namespaces, `iop profile`'s
// side talks to them over the host link.
func TestClusterOnTestbed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if err := testbed.Available(); err != nil {
		t.Skipf("testbed not available: %v", err)
	}
	rate := 50e6 / 8
	bed, err := testbed.Up(context.Background(), testbed.Config{Devices: 3, Limits: testbed.Limits{Bandwidth: rate},
		HostLink: true, Prefix: fmt.Sprintf("p%d", os.Getpid()%1000000)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Down(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := cluster.Uniform(3, 1, 0, 100e6/8, 1)
	for i := range bed.Devices {
		ln, err := bed.Listen(i, "tcp4", bed.Devices[i].Addr+":7000")
		if err != nil {
			t.Fatal(err)
		}
		dial := func(ctx context.Context, addr string) (net.Conn, error) { return bed.Dial(ctx, i, "tcp4", addr) }
		go Serve(ctx, ln, AgentOptions{Name: bed.Devices[i].Name, Dialer: Dialer{Net: dial}})
		s.Devices[i].Address = ln.Addr().String()
	}
	out, rep, err := Cluster(ctx, s, ClusterOptions{SkipOps: true, Link: LinkRequest{Seconds: 1.5, Pings: 10}, MeshSeconds: -1, MessageRounds: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Links {
		r := p.Link.Bandwidth / rate
		t.Logf("%s → %s: %.1f Mbit/s framed-tensor goodput (%.1f %% of the 50 Mbit/s tbf rate), rtt median %.3f ms, burst %.0f bytes",
			p.A, p.B, p.Link.Bandwidth*8/1e6, 100*r, p.Link.MedianRTTMS, p.Link.BurstBytes)
		if r < 0.75 || r > 1.05 {
			t.Errorf("%s → %s: %.1f %% of the tbf rate, want 90–105 %%", p.A, p.B, 100*r)
		}
	}
	t.Logf("spec link %v, %g ms, burst %.0f bytes, share spread %.2f; %d overrides", out.Link.Bandwidth, out.Link.LatencyMS, out.Link.BurstBytes, out.Link.ShareSpread, len(out.Links))
	for _, d := range rep.Devices {
		t.Logf("%s fan-out: early share %.2f, spread %.2f", d.Name, earlyShare(d.Fanout.DoneNS), d.ShareSpread)
	}
	// Connections through one tbf FIFO share unevenly (0.6–0.7 measured
	// at 100 Mbit/s, docs/VALIDATION.md).
	if sg := out.Link.ShareSpread; sg <= 0 || sg > 2 {
		t.Errorf("share spread %g on the testbed, want a positive spread", sg)
	}
	// Both tbfs of a link hold a bucket of testbed.TBFBurst bytes of
	// packets (headers included).
	for _, p := range rep.Links {
		if b := p.Link.BurstBytes; p.A != "coordinator" && (b < 0.1*testbed.TBFBurst(rate) || b > 1.2*testbed.TBFBurst(rate)) {
			t.Errorf("%s → %s: burst %.0f bytes, want about the tbf bucket's %.0f", p.A, p.B, b, testbed.TBFBurst(rate))
		}
	}
}
