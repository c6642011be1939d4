package transport

import (
	"io"
	"net"
	"syscall"
)

// Reading a large payload as it trickles in over a slow link wakes the
// reading goroutine for every packet (about 1.4 KB): at 100 Mbit/s that is
// thousands of wake-ups a second, each costing the Go scheduler tens of
// microseconds of CPU, which a device with a CPU quota pays out of its
// compute. A receive low-water mark (SO_RCVLOWAT) lets the kernel hold the
// wake-up until a useful amount has arrived. The mark never exceeds what
// the frame still has to deliver, so the last bytes always wake the reader.
const (
	// lowatMin is the smallest payload read with a low-water mark.
	lowatMin = 16 << 10
	// lowatMax is the largest mark set: small enough that the kernel never
	// grows the receive buffer for it (and so never clamps the window).
	lowatMax = 32 << 10
	// lowatSmallRead: a read returning less than this (a few packets)
	// means the payload trickles in, and the next reads use a mark.
	lowatSmallRead = 8 << 10
)

// lowat sets a TCP connection's receive low-water mark; the zero value
// (not a TCP connection, or an OS without the option) does nothing.
type lowat struct {
	rc   syscall.RawConn
	cur  int
	bad  bool // setting failed once: stop trying
	max  int  // largest mark set (for tests)
	slow bool // the last read returned little
}

func newLowat(nc net.Conn) lowat {
	tc, ok := nc.(*net.TCPConn)
	if !ok || !lowatSupported {
		return lowat{}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return lowat{}
	}
	return lowat{rc: rc, cur: 1}
}

// set makes n bytes (at least 1) the mark.
func (l *lowat) set(n int) {
	if l.rc == nil || l.bad || n == l.cur {
		return
	}
	var serr error
	if err := l.rc.Control(func(fd uintptr) { serr = setRcvLowat(fd, n) }); err != nil || serr != nil {
		l.bad = true
		return
	}
	l.cur = n
	l.max = max(l.max, n)
}

// readFull reads len(dst) bytes: first what the buffered reader holds,
// then straight from the connection. Once a read returns only a packet or
// two while much of the payload is still to come (a slow link), the rest
// is read with a low-water mark of at most the bytes still to come; on a
// fast link the reads return large pieces and no mark is set.
func (c *Conn) readFull(dst []byte) error {
	if c.lw.rc == nil || c.lw.bad || len(dst) < lowatMin {
		_, err := io.ReadFull(c.r, dst)
		return err
	}
	n := 0
	if b := c.r.Buffered(); b > 0 {
		m, err := io.ReadFull(c.r, dst[:min(b, len(dst))])
		n += m
		if err != nil {
			return err
		}
	}
	defer c.lw.set(1)
	for n < len(dst) {
		if c.lw.cur > 1 || c.lw.slow {
			c.lw.set(min(len(dst)-n, lowatMax))
		}
		m, err := c.nc.Read(dst[n:])
		n += m
		if err != nil && n < len(dst) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		c.lw.slow = m < lowatSmallRead
	}
	return nil
}
