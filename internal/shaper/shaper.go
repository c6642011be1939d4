// Package shaper limits the rate of a net.Conn in process: a token bucket on
// writes (and optionally reads) and an optional per-message latency. It is
// the emulation used where the kernel testbed (internal/testbed: network
// namespaces and tc tbf) is not available — loopback plus a shaper with the
// same parameters.
//
// The bucket is a GCRA (generic cell rate algorithm): every byte advances a
// theoretical arrival time by 1/rate, and a write waits while that time runs
// more than one burst ahead of the clock. Sleep overshoot is therefore not
// lost: the long-run rate is exact, and bursts never exceed Burst bytes.
package shaper

import (
	"errors"
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
	// Latency delays every Write: its bytes reach the peer no earlier than
	// Latency after the Write call (propagation delay, applied before the
	// rate limit). Writes return without waiting for the delay; up to
	// QueueBytes bytes are buffered. A goroutine of the writing process
	// sends them when due, so they wait for that process to be scheduled:
	// the workers hold arriving messages instead (transport.MeshConfig.
	// Latency), which a busy sender cannot delay.
	Latency time.Duration
	// QueueBytes bounds the bytes buffered for the latency (0: enough for
	// Latency at WriteRate plus one burst, at least 1 MiB).
	QueueBytes int
	// WriteLimiter and ReadLimiter, when set, are used instead of fresh
	// limiters built from the rates, so several connections can share one
	// bucket.
	WriteLimiter, ReadLimiter *Limiter
}

// Wrap returns c with writes limited to bytesPerSec.
func Wrap(c net.Conn, bytesPerSec float64) net.Conn {
	return New(c, Options{WriteRate: bytesPerSec})
}

// WrapLatency returns c with writes limited to bytesPerSec and every write
// delayed by latency.
func WrapLatency(c net.Conn, bytesPerSec float64, latency time.Duration) net.Conn {
	return New(c, Options{WriteRate: bytesPerSec, Latency: latency})
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
	if o.Latency > 0 {
		q := o.QueueBytes
		if q <= 0 {
			rate := o.WriteRate
			if s.w != nil {
				rate = s.w.Rate()
			}
			q = int(rate*o.Latency.Seconds()) + 2*DefaultBurst
			q = max(q, 1<<20)
		}
		s.lat = newDelayLine(c, s.w, o.Latency, q)
	}
	return s
}

// Conn is a shaped connection.
type Conn struct {
	net.Conn
	w, r *Limiter
	lat  *delayLine
	wmu  sync.Mutex // serializes writes so chunks of one Write stay together
}

// Write sends p at the shaped rate (and, with a latency, returns once p is
// queued).
func (c *Conn) Write(p []byte) (int, error) {
	if c.lat != nil {
		return c.lat.write(p)
	}
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

// Close flushes bytes still held for the latency (waiting at most one
// second past their due time) and closes the connection.
func (c *Conn) Close() error {
	if c.lat != nil {
		c.lat.close()
	}
	return c.Conn.Close()
}

// CloseWrite flushes delayed bytes and half-closes the connection when the
// underlying one supports it (TCP).
func (c *Conn) CloseWrite() error {
	if c.lat != nil {
		c.lat.close()
		if err := c.lat.error(); err != nil {
			return err
		}
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("shaper: underlying connection has no CloseWrite")
}

// delayLine holds written messages until their latency has passed and then
// sends them through the write limiter, in order, from one goroutine.
type delayLine struct {
	c       net.Conn
	l       *Limiter
	latency time.Duration
	limit   int

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []message
	queued int
	closed bool
	err    error
	done   chan struct{}
}

type message struct {
	due  time.Time
	data []byte
}

func newDelayLine(c net.Conn, l *Limiter, latency time.Duration, limit int) *delayLine {
	d := &delayLine{c: c, l: l, latency: latency, limit: limit, done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	go d.run()
	return d
}

// write queues a copy of p. It blocks while the queue is full.
func (d *delayLine) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.queued > 0 && d.queued+len(p) > d.limit && !d.closed && d.err == nil {
		d.cond.Wait()
	}
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, net.ErrClosed
	}
	d.queue = append(d.queue, message{due: time.Now().Add(d.latency), data: append([]byte(nil), p...)})
	d.queued += len(p)
	d.cond.Broadcast()
	return len(p), nil
}

func (d *delayLine) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.queue) == 0 {
			d.mu.Unlock()
			return
		}
		m := d.queue[0]
		d.mu.Unlock()

		if w := time.Until(m.due); w > 0 {
			sleep(w)
		}
		_, err := shapedWrite(d.c, d.l, m.data)

		d.mu.Lock()
		d.queue[0] = message{}
		d.queue = d.queue[1:]
		d.queued -= len(m.data)
		if err != nil && d.err == nil {
			d.err = err
		}
		d.cond.Broadcast()
		stop := d.err != nil
		d.mu.Unlock()
		if stop {
			return
		}
	}
}

// close stops accepting writes and waits for the queue to drain (at most
// one second past the last message's due time).
func (d *delayLine) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.done
		return
	}
	d.closed = true
	var last time.Time
	if n := len(d.queue); n > 0 {
		last = d.queue[n-1].due
	}
	d.cond.Broadcast()
	d.mu.Unlock()
	select {
	case <-d.done:
	case <-time.After(time.Until(last) + time.Second):
	}
}

func (d *delayLine) error() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Listener wraps every connection accepted by ln with New(c, o). Limiters
// in o are shared by all accepted connections.
func Listener(ln net.Listener, o Options) net.Listener {
	return &listener{Listener: ln, o: o}
}

type listener struct {
	net.Listener
	o Options
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return New(c, l.o), nil
}

// SleepUntil waits until t, precisely for short waits (see sleep): how an
// emulated link's latency is applied to a message that has arrived.
func SleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		sleep(d)
	}
}
