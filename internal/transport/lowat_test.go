package transport

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"
)

// trickleConn writes in small pieces with pauses, as a slow link delivers.
type trickleConn struct {
	net.Conn
	piece int
	pause time.Duration
}

func (c trickleConn) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Conn.Write(b[n:min(len(b), n+c.piece)])
		n += m
		if err != nil {
			return n, err
		}
		time.Sleep(c.pause)
	}
	return n, nil
}

// TestLowWaterMarkTrickle reads frames whose payloads arrive in small
// pieces, the last one smaller than the mark: with a mark above what is
// still to come the read would wait for its deadline instead.
func TestLowWaterMarkTrickle(t *testing.T) {
	w, r := pipeLimits(t, func(c net.Conn) net.Conn {
		return trickleConn{Conn: c, piece: 3000, pause: 200 * time.Microsecond}
	}, Limits{ReadTimeout: 3 * time.Second})

	sizes := []int{3*lowatMax + 1000, lowatMin - 1, lowatMax, 100}
	go func() {
		for i, n := range sizes {
			if err := w.WriteFrame(Header{Kind: Control, Req: uint64(i)}, payload(n, i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i, n := range sizes {
		start := time.Now()
		h, err := r.ReadHeader(time.Time{})
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		got := make([]byte, h.Len)
		if err := r.ReadPayload(h, got); err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(got, payload(n, i)) {
			t.Fatalf("frame %d: payload differs", i)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("frame %d of %d bytes took %v: the mark held the reader back", i, n, d)
		}
	}
	if runtime.GOOS == "linux" && r.lw.max != lowatMax {
		t.Errorf("largest low-water mark set %d, want %d", r.lw.max, lowatMax)
	}
	if r.lw.cur > 1 {
		t.Errorf("mark left at %d after the read", r.lw.cur)
	}
}

func payload(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}
