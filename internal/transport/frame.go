// Package transport is the wire protocol between the coordinator and the
// workers and among the workers: length-prefixed frames over TCP (optionally
// mutual TLS) carrying either raw tensor bytes or small JSON control
// messages, and a full mesh of peer connections that implements
// partition.Transport for the device programs' Send/Recv steps.
//
// # Frames
//
// Every frame is a 32-byte little-endian header followed by Len payload
// bytes:
//
//	off size field
//	  0    2 magic "IF"
//	  2    1 version (1)
//	  3    1 kind (Control, TensorHead, TensorData, Ping, Abort)
//	  4    8 request id
//	 12    4 tag (the Send/Recv step's tag, input/output/weight index)
//	 16    4 slice (chunk index within a tensor)
//	 20    4 length of the payload
//	 24    4 CRC32C (Castagnoli) of header bytes 0..23 and the payload
//	 28    4 reserved (zero)
//
// A tensor is one TensorHead frame (dtype, shape, byte count) followed by
// as many TensorData frames as needed, each at most ChunkSize bytes, whose
// payloads are the raw little-endian element bytes. Receivers check every
// frame's length against a bound before reading it and the tensor's byte
// count against another before allocating it, and verify the CRC of every
// frame; a mismatch closes the connection (its framing can no longer be
// trusted). Control frames carry JSON.
package transport

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"time"

	"github.com/iop-edge/iop/internal/tensor"
)

// Kind is a frame kind.
type Kind uint8

// Frame kinds.
const (
	// Control frames carry one JSON message.
	Control Kind = iota + 1
	// TensorHead starts a tensor: dtype, shape and byte count.
	TensorHead
	// TensorData carries a chunk of a tensor's raw bytes.
	TensorData
	// Ping keeps an idle connection's read deadline from expiring.
	Ping
	// Abort says why the sender is closing the connection (text payload).
	Abort
)

func (k Kind) String() string {
	switch k {
	case Control:
		return "control"
	case TensorHead:
		return "tensor-head"
	case TensorData:
		return "tensor-data"
	case Ping:
		return "ping"
	case Abort:
		return "abort"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Protocol constants.
const (
	HeaderSize = 32
	Version    = 1
	// ChunkSize is the largest TensorData payload a sender writes.
	ChunkSize = 1 << 18
	// DefaultMaxFrame bounds a frame's payload on receive.
	DefaultMaxFrame = 4 << 20
	// DefaultMaxTensor bounds one tensor's size on receive.
	DefaultMaxTensor = 2 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a decoded frame header.
type Header struct {
	Kind  Kind
	Req   uint64
	Tag   int32
	Slice uint32
	Len   uint32
	CRC   uint32
}

func (h *Header) put(b []byte) {
	b[0], b[1], b[2], b[3] = 'I', 'F', Version, byte(h.Kind)
	binary.LittleEndian.PutUint64(b[4:], h.Req)
	binary.LittleEndian.PutUint32(b[12:], uint32(h.Tag))
	binary.LittleEndian.PutUint32(b[16:], h.Slice)
	binary.LittleEndian.PutUint32(b[20:], h.Len)
	binary.LittleEndian.PutUint32(b[28:], 0)
}

// Errors a receiver reports.
var (
	// ErrCorrupt is a CRC mismatch or malformed header.
	ErrCorrupt = errors.New("corrupted frame")
	// ErrTooLarge is a frame or tensor beyond the receiver's bound.
	ErrTooLarge = errors.New("frame too large")
)

// Limits bound what a Conn accepts and how long it waits.
type Limits struct {
	// MaxFrame is the largest frame payload accepted (DefaultMaxFrame if 0).
	MaxFrame int
	// MaxTensor is the largest tensor accepted (DefaultMaxTensor if 0).
	MaxTensor int64
	// ReadTimeout bounds the wait for each frame (header and payload).
	ReadTimeout time.Duration
	// WriteTimeout bounds each frame write.
	WriteTimeout time.Duration
}

// DefaultLimits are used where a zero Limits is given.
var DefaultLimits = Limits{MaxFrame: DefaultMaxFrame, MaxTensor: DefaultMaxTensor, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.MaxFrame <= 0 {
		l.MaxFrame = DefaultMaxFrame
	}
	if l.MaxTensor <= 0 {
		l.MaxTensor = DefaultMaxTensor
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultLimits.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultLimits.WriteTimeout
	}
	return l
}

// Conn is a framed connection. Reads must come from one goroutine at a
// time; writes are serialized by an internal lock (a whole tensor is
// written atomically with respect to other writers).
type Conn struct {
	nc     net.Conn
	r      *bufio.Reader
	lim    Limits
	wmu    sync.Mutex
	hdr    [HeaderSize]byte
	rhdr   [HeaderSize]byte
	bufs   net.Buffers
	scr    []byte // scratch for big-endian conversion and small payloads
	rscr   []byte
	lw     lowat
	Fault  FaultHook
	closed chan struct{}
	once   sync.Once
}

// FaultHook lets tests corrupt outgoing frames: it is called with each
// header and payload before the write and may modify them (after the CRC is
// computed). It is nil in normal operation.
type FaultHook func(h *Header, payload []byte)

// NewConn wraps nc.
func NewConn(nc net.Conn, lim Limits) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), lw: newLowat(nc), lim: lim.withDefaults(), closed: make(chan struct{})}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Limits returns the connection's limits.
func (c *Conn) Limits() Limits { return c.lim }

// Close closes the connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		err = c.nc.Close()
	})
	return err
}

// Done is closed when Close was called.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// writeFrameLocked writes one frame; c.wmu is held. payload may be nil.
func (c *Conn) writeFrameLocked(h Header, payload []byte) error {
	h.Len = uint32(len(payload))
	h.put(c.hdr[:])
	crc := crc32.Update(0, castagnoli, c.hdr[:24])
	crc = crc32.Update(crc, castagnoli, payload)
	h.CRC = crc
	if c.Fault != nil {
		c.Fault(&h, payload)
		h.put(c.hdr[:])
	}
	binary.LittleEndian.PutUint32(c.hdr[24:], h.CRC)
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.lim.WriteTimeout)); err != nil {
		return err
	}
	if len(payload) == 0 {
		_, err := c.nc.Write(c.hdr[:])
		return err
	}
	c.bufs = append(c.bufs[:0], c.hdr[:], payload)
	bufs := c.bufs
	_, err := bufs.WriteTo(c.nc)
	return err
}

// WriteFrame writes one frame.
func (c *Conn) WriteFrame(h Header, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrameLocked(h, payload)
}

// WriteControl writes v as a JSON control frame.
func (c *Conn) WriteControl(req uint64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode control message: %w", err)
	}
	return c.WriteFrame(Header{Kind: Control, Req: req}, b)
}

// WriteTensor writes t as a TensorHead frame and its data chunks.
func (c *Conn) WriteTensor(req uint64, tag int, t *tensor.Tensor) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	head := encodeTensorHead(t)
	if err := c.writeFrameLocked(Header{Kind: TensorHead, Req: req, Tag: int32(tag)}, head); err != nil {
		return err
	}
	total := int(t.Bytes())
	for off, slice := 0, uint32(0); off < total; slice++ {
		n := min(ChunkSize, total-off)
		var chunk []byte
		chunk, c.scr = tensorChunk(t, off, n, c.scr)
		if err := c.writeFrameLocked(Header{Kind: TensorData, Req: req, Tag: int32(tag), Slice: slice}, chunk); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// ReadHeader reads and checks the next frame header (waiting at most the
// read timeout, or until deadline if it is later and non-zero).
func (c *Conn) ReadHeader(deadline time.Time) (Header, error) {
	dl := time.Now().Add(c.lim.ReadTimeout)
	if deadline.After(dl) {
		dl = deadline
	}
	if err := c.nc.SetReadDeadline(dl); err != nil {
		return Header{}, err
	}
	b := c.rhdr[:]
	if _, err := io.ReadFull(c.r, b); err != nil {
		return Header{}, err
	}
	if b[0] != 'I' || b[1] != 'F' {
		return Header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:2])
	}
	if b[2] != Version {
		return Header{}, fmt.Errorf("protocol version %d, want %d", b[2], Version)
	}
	h := Header{Kind: Kind(b[3]), Req: binary.LittleEndian.Uint64(b[4:]), Tag: int32(binary.LittleEndian.Uint32(b[12:])),
		Slice: binary.LittleEndian.Uint32(b[16:]), Len: binary.LittleEndian.Uint32(b[20:]), CRC: binary.LittleEndian.Uint32(b[24:])}
	if int64(h.Len) > int64(c.lim.MaxFrame) {
		return h, fmt.Errorf("%w: %s frame of %d bytes (request %d, tag %d) exceeds the %d-byte limit", ErrTooLarge, h.Kind, h.Len, h.Req, h.Tag, c.lim.MaxFrame)
	}
	return h, nil
}

// ReadPayload reads h's payload into dst (len(dst) == h.Len) and verifies
// the CRC.
func (c *Conn) ReadPayload(h Header, dst []byte) error {
	if len(dst) != int(h.Len) {
		return fmt.Errorf("internal: payload buffer of %d bytes for a %d-byte frame", len(dst), h.Len)
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(c.lim.ReadTimeout)); err != nil {
		return err
	}
	if err := c.readFull(dst); err != nil {
		return err
	}
	crc := crc32.Update(0, castagnoli, c.rhdr[:24])
	crc = crc32.Update(crc, castagnoli, dst)
	if crc != h.CRC {
		return fmt.Errorf("%w: CRC32C mismatch on %s frame (request %d, tag %d, slice %d, %d bytes)", ErrCorrupt, h.Kind, h.Req, h.Tag, h.Slice, h.Len)
	}
	return nil
}

// ReadSmall reads h's payload into a reused scratch buffer (valid until the
// next read).
func (c *Conn) ReadSmall(h Header) ([]byte, error) {
	if cap(c.rscr) < int(h.Len) {
		c.rscr = make([]byte, h.Len)
	}
	b := c.rscr[:h.Len]
	return b, c.ReadPayload(h, b)
}

// ReadControl reads a control frame's JSON into v.
func (c *Conn) ReadControl(h Header, v any) error {
	b, err := c.ReadSmall(h)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: bad control message: %v", ErrCorrupt, err)
	}
	return nil
}

// ReadTensorBody reads the rest of a tensor whose TensorHead frame header
// is h: the head payload, then the data chunks. Tensors are allocated
// by alloc (nil: tensor.New).
func (c *Conn) ReadTensorBody(h Header) (*tensor.Tensor, error) {
	b, err := c.ReadSmall(h)
	if err != nil {
		return nil, err
	}
	dt, shape, nbytes, err := decodeTensorHead(b)
	if err != nil {
		return nil, err
	}
	if nbytes > c.lim.MaxTensor {
		return nil, fmt.Errorf("%w: tensor %v%v of %d bytes (request %d, tag %d) exceeds the %d-byte limit", ErrTooLarge, dt, shape, nbytes, h.Req, h.Tag, c.lim.MaxTensor)
	}
	t := tensor.New(dt, shape)
	if err := c.readTensorData(h, t); err != nil {
		return nil, err
	}
	return t, nil
}

func (c *Conn) readTensorData(head Header, t *tensor.Tensor) error {
	total := int(t.Bytes())
	for off, slice := 0, uint32(0); off < total; slice++ {
		h, err := c.ReadHeader(time.Time{})
		if err != nil {
			return err
		}
		want := min(ChunkSize, total-off)
		if h.Kind != TensorData || h.Req != head.Req || h.Tag != head.Tag || h.Slice != slice || int(h.Len) != want {
			return fmt.Errorf("%w: expected data chunk %d (%d bytes) of tensor tag %d request %d, got %s frame tag %d slice %d (%d bytes)",
				ErrCorrupt, slice, want, head.Tag, head.Req, h.Kind, h.Tag, h.Slice, h.Len)
		}
		dst, direct := tensorDest(t, off, want, &c.rscr)
		if err := c.ReadPayload(h, dst); err != nil {
			return err
		}
		if !direct {
			storeChunk(t, off, dst)
		}
		off += want
	}
	return nil
}

// encodeTensorHead: dtype u8, rank u8, 6 zero bytes, dims as int64, then the
// byte count as int64.
func encodeTensorHead(t *tensor.Tensor) []byte {
	b := make([]byte, 8+8*len(t.Shape)+8)
	b[0], b[1] = byte(t.DType), byte(len(t.Shape))
	for i, d := range t.Shape {
		binary.LittleEndian.PutUint64(b[8+8*i:], uint64(d))
	}
	binary.LittleEndian.PutUint64(b[8+8*len(t.Shape):], uint64(t.Bytes()))
	return b
}

func decodeTensorHead(b []byte) (tensor.DType, tensor.Shape, int64, error) {
	if len(b) < 16 {
		return 0, nil, 0, fmt.Errorf("%w: short tensor head", ErrCorrupt)
	}
	dt, rank := tensor.DType(b[0]), int(b[1])
	if dt.Size() == 0 {
		return 0, nil, 0, fmt.Errorf("%w: unknown dtype %d", ErrCorrupt, b[0])
	}
	if len(b) != 16+8*rank {
		return 0, nil, 0, fmt.Errorf("%w: tensor head of %d bytes for rank %d", ErrCorrupt, len(b), rank)
	}
	shape := make(tensor.Shape, rank)
	n := int64(1)
	for i := range shape {
		d := int64(binary.LittleEndian.Uint64(b[8+8*i:]))
		if d < 0 || d > 1<<40 {
			return 0, nil, 0, fmt.Errorf("%w: bad dimension %d", ErrCorrupt, d)
		}
		shape[i] = int(d)
		n *= d
		if n > 1<<40 {
			return 0, nil, 0, fmt.Errorf("%w: tensor of shape %v is too large", ErrTooLarge, shape[:i+1])
		}
	}
	nbytes := int64(binary.LittleEndian.Uint64(b[8+8*rank:]))
	if nbytes != n*int64(dt.Size()) {
		return 0, nil, 0, fmt.Errorf("%w: tensor head says %d bytes for %v%v", ErrCorrupt, nbytes, dt, shape)
	}
	return dt, shape, nbytes, nil
}
