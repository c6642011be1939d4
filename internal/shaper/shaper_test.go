package shaper

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// pipeTCP returns both ends of a loopback TCP connection.
func pipeTCP(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

// goodput writes through w for about d in chunks of size chunk and returns
// the rate at which the reader received the bytes, in bytes per second.
func goodput(t testing.TB, w io.WriteCloser, r io.Reader, d time.Duration, chunk int) float64 {
	t.Helper()
	type res struct {
		n   int64
		dur time.Duration
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var n int64
		var start time.Time
		for {
			k, err := r.Read(buf)
			if k > 0 && start.IsZero() {
				start = time.Now()
			}
			n += int64(k)
			if err != nil {
				ch <- res{n, time.Since(start)}
				return
			}
		}
	}()
	buf := make([]byte, chunk)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	} else {
		w.Close()
	}
	rr := <-ch
	return float64(rr.n) / rr.dur.Seconds()
}

func TestGoodput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mbps  float64
		chunk int
	}{
		{"50Mbps/64KiB", 50, 64 << 10},
		{"100Mbps/64KiB", 100, 64 << 10},
		{"100Mbps/1MiB", 100, 1 << 20},
		{"50Mbps/1400B", 50, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pipeTCP(t)
			rate := tc.mbps * 1e6 / 8
			got := goodput(t, Wrap(a, rate), b, 700*time.Millisecond, tc.chunk)
			ratio := got / rate
			t.Logf("rate %.0f Mbit/s, goodput %.1f Mbit/s (%.1f %%)", tc.mbps, got*8/1e6, 100*ratio)
			// Generous band: the machine may be busy; the bucket itself is
			// exact over the long run.
			if ratio < 0.75 || ratio > 1.10 {
				t.Errorf("goodput %.1f %% of the rate, want about 100 %% (90–105 %% on an idle machine)", 100*ratio)
			}
		})
	}
}

func TestReadShaping(t *testing.T) {
	a, b := pipeTCP(t)
	rate := 50e6 / 8
	got := goodput(t, a, New(b, Options{ReadRate: rate}), 600*time.Millisecond, 64<<10)
	ratio := got / rate
	t.Logf("read-shaped goodput %.1f Mbit/s (%.1f %%)", got*8/1e6, 100*ratio)
	if ratio < 0.75 || ratio > 1.15 {
		t.Errorf("goodput %.1f %% of the rate", 100*ratio)
	}
}

func TestSharedLimiter(t *testing.T) {
	rate := 80e6 / 8
	l := NewLimiter(rate, 0)
	a1, b1 := pipeTCP(t)
	a2, b2 := pipeTCP(t)
	done := make(chan float64, 2)
	for _, p := range [][2]net.Conn{{a1, b1}, {a2, b2}} {
		go func() {
			done <- goodput(t, New(p[0], Options{WriteLimiter: l}), p[1], 600*time.Millisecond, 32<<10)
		}()
	}
	sum := <-done + <-done
	t.Logf("two connections on one limiter: %.1f Mbit/s together", sum*8/1e6)
	if r := sum / rate; r < 0.7 || r > 1.15 {
		t.Errorf("combined goodput %.1f %% of the shared rate", 100*r)
	}
}

func TestUnlimited(t *testing.T) {
	a, b := pipeTCP(t)
	c := New(a, Options{})
	go func() { c.Write([]byte("hello")); c.Close() }()
	d, err := io.ReadAll(b)
	if err != nil || string(d) != "hello" {
		t.Fatalf("got %q, %v", d, err)
	}
}

func BenchmarkGoodput100Mbps(b *testing.B) {
	for i := 0; i < b.N; i++ {
		x, y := pipeTCP(b)
		rate := 100e6 / 8
		got := goodput(b, Wrap(x, rate), y, time.Second, 64<<10)
		b.ReportMetric(got*8/1e6, "Mbit/s")
		b.ReportMetric(100*got/rate, "%rate")
	}
}

func BenchmarkGoodput50Mbps(b *testing.B) {
	for i := 0; i < b.N; i++ {
		x, y := pipeTCP(b)
		rate := 50e6 / 8
		got := goodput(b, Wrap(x, rate), y, time.Second, 64<<10)
		b.ReportMetric(got*8/1e6, "Mbit/s")
		b.ReportMetric(100*got/rate, "%rate")
	}
}

// TestSubMillisecondLatency checks that SleepUntil keeps a LAN-like
// latency below a millisecond when the process is otherwise idle (Go's
// timers would round it up to about a millisecond).
func TestSubMillisecondLatency(t *testing.T) {
	lat := 300 * time.Microsecond
	var delays []time.Duration
	for i := 0; i < 25; i++ {
		time.Sleep(3 * time.Millisecond) // every thread idle
		start := time.Now()
		SleepUntil(start.Add(lat))
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	t.Logf("%v held: median %v, min %v, max %v", lat, delays[len(delays)/2], delays[0], delays[len(delays)-1])
	if delays[0] < lat {
		t.Errorf("held %v, less than %v", delays[0], lat)
	}
	// The fastest of 25 is what the mechanism allows, whatever else runs
	// on the machine (Go's timers: 1.2 ms at best here).
	if delays[0] > lat+500*time.Microsecond {
		t.Errorf("shortest hold %v for %v", delays[0], lat)
	}
	SleepUntil(time.Now().Add(-time.Second)) // in the past: returns at once
}
