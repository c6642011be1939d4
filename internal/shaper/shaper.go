// Package shaper limits the rate of a net.Conn in process: a token bucket on
// writes (and optionally reads). It is the emulation used where the kernel
// testbed (internal/testbed: network namespaces and tc tbf) is not
// available — loopback plus a shaper with the same parameters. SleepUntil
// waits precisely for short times: how the workers hold an arriving message
// for an emulated latency (transport.MeshConfig.Latency).
//
// The bucket is a GCRA (generic cell rate algorithm): every byte advances a
// theoretical arrival time by 1/rate, and a write waits while that time runs
// more than one burst ahead of the clock. Sleep overshoot is therefore not
// lost: the long-run rate is exact, and bursts never exceed Burst bytes.
package shaper

import (
	"net"
	"sync"
	"time"
)

// DefaultBurst is the bucket depth used when Options.Burst is 0: 64 KiB,
// about 10 ms at 50 Mbit/s and 5 ms at 100 Mbit/s. A writer that oversleeps
// by less than that loses no rate.
const DefaultBurst = 64 << 10

// Limiter is a token bucket that can be shared by several connections, e.g.
// all the connections leaving one emulated device share its uplink. It is
// safe for concurrent use.
type Limiter struct {
	mu    sync.Mutex
	rate  float64       // bytes per second
	burst int           // bytes
	tau   time.Duration // burst / rate
	tat   time.Time     // theoretical arrival time of the next byte
}

// NewLimiter returns a limiter of bytesPerSec with a bucket of burst bytes
// (0: DefaultBurst). A rate <= 0 means unlimited.
func NewLimiter(bytesPerSec float64, burst int) *Limiter {
	if burst <= 0 {
		burst = DefaultBurst
	}
	l := &Limiter{rate: bytesPerSec, burst: burst}
	if bytesPerSec > 0 {
		l.tau = time.Duration(float64(burst) / bytesPerSec * float64(time.Second))
	}
	return l
}

// Rate is the limiter's rate in bytes per second (<= 0: unlimited).
func (l *Limiter) Rate() float64 { return l.rate }

// Burst is the largest number of bytes passed at once.
func (l *Limiter) Burst() int { return l.burst }

// reserve accounts n bytes (n <= Burst) and returns how long to wait before
// they may pass.
func (l *Limiter) reserve(n int) time.Duration {
	if l == nil || l.rate <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return l.tat.Sub(now) - l.tau
}

// Wait blocks until n bytes may pass (n may exceed the burst; the wait is
// then spread over several bucket fills). A nil limiter never waits.
func (l *Limiter) Wait(n int) {
	if l == nil {
		return
	}
	for n > 0 {
		k := min(n, l.burst)
		if d := l.reserve(k); d > 0 {
			time.Sleep(d)
		}
		n -= k
	}
}

// Options configures a shaped connection.
type Options struct {
	// WriteRate and ReadRate are in bytes per second; 0 leaves that
	// direction unshaped.
	WriteRate, ReadRate float64
	// Burst is the bucket depth in bytes (0: DefaultBurst).
	Burst int
	// WriteLimiter and ReadLimiter, when set, are used instead of fresh
	// limiters built from the rates, so several connections can share one
	// bucket.
	WriteLimiter, ReadLimiter *Limiter
}

// Wrap returns c with writes limited to bytesPerSec.
func Wrap(c net.Conn, bytesPerSec float64) net.Conn {
	return New(c, Options{WriteRate: bytesPerSec})
}

// New returns c shaped as o says.
func New(c net.Conn, o Options) net.Conn {
	s := &Conn{Conn: c, w: o.WriteLimiter, r: o.ReadLimiter}
	if s.w == nil && o.WriteRate > 0 {
		s.w = NewLimiter(o.WriteRate, o.Burst)
	}
	if s.r == nil && o.ReadRate > 0 {
		s.r = NewLimiter(o.ReadRate, o.Burst)
	}
	return s
}

// Conn is a shaped connection.
type Conn struct {
	net.Conn
	w, r *Limiter
	wmu  sync.Mutex // serializes writes so chunks of one Write stay together
}

// Write sends p at the shaped rate.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return shapedWrite(c.Conn, c.w, p)
}

func shapedWrite(c net.Conn, l *Limiter, p []byte) (int, error) {
	if l == nil || l.rate <= 0 {
		return c.Write(p)
	}
	done := 0
	for done < len(p) {
		k := min(len(p)-done, l.burst)
		if d := l.reserve(k); d > 0 {
			time.Sleep(d)
		}
		n, err := c.Write(p[done : done+k])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Read reads at most one burst and then waits for the read bucket.
func (c *Conn) Read(p []byte) (int, error) {
	if c.r == nil || c.r.rate <= 0 {
		return c.Conn.Read(p)
	}
	if len(p) > c.r.burst {
		p = p[:c.r.burst]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if d := c.r.reserve(n); d > 0 {
			time.Sleep(d)
		}
	}
	return n, err
}

// SleepUntil waits until t, precisely for short waits (see sleep): how an
// emulated link's latency is applied to a message that has arrived.
func SleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		sleep(d)
	}
}
