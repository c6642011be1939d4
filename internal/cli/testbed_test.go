package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iop-edge/iop/internal/cluster"
	"github.com/iop-edge/iop/internal/profile"
	"github.com/iop-edge/iop/internal/testbed"
)

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String() + errb.String(), code
}

func TestProfileLocal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "local.yaml")
	out, code := runCLI(t, "profile", "--local", "--budget", "300ms", "--name", "box", "-o", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	s, err := cluster.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.N() != 1 || s.Devices[0].Name != "box" || len(s.Devices[0].ByClass) != 5 {
		t.Errorf("spec %+v", s.Devices)
	}
	if out, code := runCLI(t, "profile"); code != 2 {
		t.Errorf("profile without --cluster or --local: exit %d: %s", code, out)
	}
}

// TestTestbedProfileCLI runs the documented flow: testbed up writing a
// cluster spec, profile agents in the devices, iop profile over it,
// testbed status and down.
func TestTestbedProfileCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if err := testbed.Available(); err != nil {
		t.Skipf("testbed not available: %v", err)
	}
	prefix := fmt.Sprintf("cli%d", os.Getpid()%1000000)
	dir := t.TempDir()
	spec := filepath.Join(dir, "bed.yaml")
	out, code := runCLI(t, "testbed", "up", "--devices", "2", "--bandwidth", "50Mbps", "--cpu-quota", "1,0.5",
		"--memory", "256MiB", "--prefix", prefix, "--write-cluster", spec, "--port", "7100")
	t.Cleanup(func() { testbed.Cleanup(prefix) })
	if code != 0 {
		t.Fatalf("up: exit %d: %s", code, out)
	}
	if !strings.Contains(out, "iop-"+prefix+"-dev1") || !strings.Contains(out, "ip netns exec") {
		t.Errorf("up output lacks the namespaces or the worker command:\n%s", out)
	}
	b, err := testbed.Load(prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Agents inside the devices' namespaces (in this process).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range b.Devices {
		ln, err := b.Listen(i, "tcp4", b.Devices[i].Addr+":7100")
		if err != nil {
			t.Fatal(err)
		}
		dial := func(ctx context.Context, addr string) (net.Conn, error) { return b.Dial(ctx, i, "tcp4", addr) }
		go profile.Serve(ctx, ln, profile.AgentOptions{Dialer: profile.Dialer{Net: dial}})
	}
	measured := filepath.Join(dir, "measured.yaml")
	out, code = runCLI(t, "profile", "--cluster", spec, "-o", measured, "--skip-ops", "--link-seconds", "1")
	if code != 0 {
		t.Fatalf("profile: exit %d: %s", code, out)
	}
	t.Log(out)
	s, err := cluster.Load(measured)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Link.Bandwidth.Mbps() / 50; r < 0.75 || r > 1.05 {
		t.Errorf("measured link %v for a 50 Mbit/s tbf rate", s.Link.Bandwidth)
	}
	if s.Devices[1].Memory != 256<<20 || s.Devices[0].Address != b.Devices[0].Addr+":7100" {
		t.Errorf("devices %+v", s.Devices)
	}
	out, code = runCLI(t, "testbed", "status")
	if code != 0 || !strings.Contains(out, "iop-"+prefix+"-dev0") {
		t.Errorf("status: exit %d:\n%s", code, out)
	}
	out, code = runCLI(t, "testbed", "exec", "--prefix", prefix, "dev1", "--", "cat", "/proc/self/cgroup")
	if code != 0 || !strings.Contains(out, "iop-"+prefix+"/dev1") {
		t.Errorf("exec: exit %d:\n%s", code, out)
	}
	out, code = runCLI(t, "testbed", "down", "--prefix", prefix)
	if code != 0 {
		t.Fatalf("down: exit %d: %s", code, out)
	}
	if left := testbed.Leftovers(prefix); len(left) > 0 {
		t.Errorf("left over after down: %v", left)
	}
}
