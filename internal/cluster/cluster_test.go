package cluster

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseUnits(t *testing.T) {
	for in, want := range map[string]float64{"100Mbps": 12.5e6, "1Gbit": 125e6, "50mbit/s": 6.25e6, "12.5MB/s": 12.5e6, "8000": 1000} {
		got, err := ParseBandwidth(in)
		if err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GB": 1e9, "1.5G": 3 << 29, "4096": 4096} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "fast", "-1Mbps", "10furlongs"} {
		if _, err := ParseBandwidth(bad); err == nil {
			t.Errorf("ParseBandwidth(%q) accepted", bad)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(`
topology: switched
link: {bandwidth: 100Mbps, latency_ms: 0.5}
links:
  - {a: pi0, b: pi1, bandwidth: 1Gbit, latency_ms: 0.1}
devices:
  - {name: pi0, address: "10.0.0.1:7000", gflops: 4, memory: 1GiB}
  - {name: pi1, gflops: 2, memory: 512MiB, gflops_by_class: {conv: 3}}
`), 0o644)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.N() != 2 || s.Devices[1].Memory != 512<<20 || s.Speed(1, "conv") != 3e9 || s.Speed(1, "gemm") != 2e9 {
		t.Fatalf("bad spec %+v", s)
	}
	if l := s.LinkBetween(1, 0); float64(l.Bandwidth) != 125e6 {
		t.Fatalf("override link: %+v", l)
	}
	os.WriteFile(p, []byte("devices: [{name: a, gflops: 1}, {name: a, gflops: 1}]\nlink: {bandwidth: 1Mbps}\n"), 0o644)
	if _, err := Load(p); err == nil {
		t.Fatal("duplicate names accepted")
	}
	os.WriteFile(p, []byte("devices: [{name: a, gflops: 1, speed: 3}]\nlink: {bandwidth: 1Mbps}\n"), 0o644)
	if _, err := Load(p); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestCFSLimit(t *testing.T) {
	s := Uniform(2, 1, 0, 12.5e6, 0.1)
	if _, _, ok := s.CFS(0); ok {
		t.Error("a device without a quota reports a CFS limit")
	}
	s.Devices[0].CPUQuota, s.Devices[0].CPUPeriodMS = 0.45, 5
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if q, per, ok := s.CFS(0); !ok || q != 0.45 || per != 0.005 {
		t.Errorf("CFS(0) = %v, %v, %v; want 0.45, 0.005, true", q, per, ok)
	}
	s.Devices[1].CPUQuota = 2 // a core or more: the fluid share
	s.Devices[1].CPUPeriodMS = 100
	if _, _, ok := s.CFS(1); ok {
		t.Error("a quota of two cores reports a limit")
	}
	s.Devices[1].CPUPeriodMS = 0
	if err := s.Validate(); err == nil {
		t.Error("cpu_quota without cpu_period_ms accepted")
	}
}
