// Package onnx reads and writes ONNX files: models (ModelProto) to and from
// the graph IR, and tensors (TensorProto, the ONNX test-data format) to and
// from tensor.Tensor.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/iop-edge/iop/internal/onnx/onnxpb"
	"github.com/iop-edge/iop/internal/tensor"
	"google.golang.org/protobuf/proto"
)

// maxTensorElems bounds the element count a TensorProto may claim, so a
// corrupt file fails with an error instead of an enormous allocation.
const maxTensorElems = 1 << 33

// dataTypeName returns ONNX's name for a TensorProto data type.
func dataTypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return "type " + strconv.Itoa(int(dt))
}

// elemDType maps an ONNX element type to the engine's type.
func elemDType(dt int32) (tensor.DType, error) {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		return tensor.Float32, nil
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32, onnxpb.TensorProto_INT16, onnxpb.TensorProto_INT8,
		onnxpb.TensorProto_UINT8, onnxpb.TensorProto_UINT16, onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64:
		return tensor.Int64, nil
	case onnxpb.TensorProto_BOOL:
		return tensor.Bool, nil
	}
	return 0, fmt.Errorf("unsupported element type %s", dataTypeName(dt))
}

// TensorFromProto converts a TensorProto. dir is the directory that external
// data locations are relative to ("" forbids external data).
func TensorFromProto(tp *onnxpb.TensorProto, dir string) (*tensor.Tensor, error) {
	dt := tp.GetDataType()
	et, err := elemDType(dt)
	if err != nil {
		return nil, err
	}
	shape := make(tensor.Shape, len(tp.Dims))
	n := int64(1)
	for i, d := range tp.Dims {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension %d in shape %v", d, tp.Dims)
		}
		shape[i] = int(d)
		n *= d
		if n > maxTensorElems {
			return nil, fmt.Errorf("shape %v is too large", tp.Dims)
		}
	}
	raw := tp.RawData
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		raw, err = readExternal(tp, dir)
		if err != nil {
			return nil, err
		}
	}
	t := tensor.New(et, shape)
	count := int(n)
	if raw != nil || tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return t, decodeRaw(t, dt, raw, count)
	}
	return t, decodeTyped(t, tp, dt, count)
}

func readExternal(tp *onnxpb.TensorProto, dir string) ([]byte, error) {
	var loc string
	var off, length int64 = 0, -1
	for _, kv := range tp.ExternalData {
		var err error
		switch kv.GetKey() {
		case "location":
			loc = kv.GetValue()
		case "offset":
			off, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("external data of %q: bad %s %q", tp.GetName(), kv.GetKey(), kv.GetValue())
		}
	}
	if loc == "" {
		return nil, fmt.Errorf("external data of %q has no location", tp.GetName())
	}
	if dir == "" {
		return nil, fmt.Errorf("external data of %q (%s): model was not loaded from a file", tp.GetName(), loc)
	}
	if filepath.IsAbs(loc) || strings.Contains(filepath.ToSlash(filepath.Clean(loc)), "../") {
		return nil, fmt.Errorf("external data of %q: location %q escapes the model directory", tp.GetName(), loc)
	}
	path := filepath.Join(dir, loc)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("external data of %q: %w", tp.GetName(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("external data of %q: %w", tp.GetName(), err)
	}
	if length < 0 {
		length = st.Size() - off
	}
	if off < 0 || length < 0 || off+length > st.Size() {
		return nil, fmt.Errorf("external data of %q: range [%d,+%d) is outside %s (%d bytes)", tp.GetName(), off, length, path, st.Size())
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("external data of %q: reading %s: %w", tp.GetName(), path, err)
	}
	return buf, nil
}

func elemBytes(dt int32) int {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64:
		return 8
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		return 4
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16, onnxpb.TensorProto_INT16, onnxpb.TensorProto_UINT16:
		return 2
	}
	return 1
}

func decodeRaw(t *tensor.Tensor, dt int32, raw []byte, n int) error {
	sz := elemBytes(dt)
	if len(raw) != n*sz {
		return fmt.Errorf("raw data has %d bytes, shape %v of %s needs %d", len(raw), t.Shape, dataTypeName(dt), n*sz)
	}
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		b := raw[i*sz:]
		switch onnxpb.TensorProto_DataType(dt) {
		case onnxpb.TensorProto_FLOAT:
			t.F[i] = math.Float32frombits(le.Uint32(b))
		case onnxpb.TensorProto_DOUBLE:
			t.F[i] = float32(math.Float64frombits(le.Uint64(b)))
		case onnxpb.TensorProto_FLOAT16:
			t.F[i] = halfToFloat(le.Uint16(b))
		case onnxpb.TensorProto_BFLOAT16:
			t.F[i] = math.Float32frombits(uint32(le.Uint16(b)) << 16)
		case onnxpb.TensorProto_INT64:
			t.I[i] = int64(le.Uint64(b))
		case onnxpb.TensorProto_UINT64:
			t.I[i] = int64(le.Uint64(b))
		case onnxpb.TensorProto_INT32:
			t.I[i] = int64(int32(le.Uint32(b)))
		case onnxpb.TensorProto_UINT32:
			t.I[i] = int64(le.Uint32(b))
		case onnxpb.TensorProto_INT16:
			t.I[i] = int64(int16(le.Uint16(b)))
		case onnxpb.TensorProto_UINT16:
			t.I[i] = int64(le.Uint16(b))
		case onnxpb.TensorProto_INT8:
			t.I[i] = int64(int8(b[0]))
		case onnxpb.TensorProto_UINT8:
			t.I[i] = int64(b[0])
		case onnxpb.TensorProto_BOOL:
			t.B[i] = b[0] != 0
		}
	}
	return nil
}

func decodeTyped(t *tensor.Tensor, tp *onnxpb.TensorProto, dt int32, n int) error {
	have := 0
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT:
		have = len(tp.FloatData)
		if have == n {
			copy(t.F, tp.FloatData)
		}
	case onnxpb.TensorProto_DOUBLE:
		have = len(tp.DoubleData)
		if have == n {
			for i, v := range tp.DoubleData {
				t.F[i] = float32(v)
			}
		}
	case onnxpb.TensorProto_INT64:
		have = len(tp.Int64Data)
		if have == n {
			copy(t.I, tp.Int64Data)
		}
	case onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64:
		have = len(tp.Uint64Data)
		if have == n {
			for i, v := range tp.Uint64Data {
				t.I[i] = int64(v)
			}
		}
	default: // int32 field carries int32, int16, int8, uint16, uint8, bool, float16 bits
		have = len(tp.Int32Data)
		if have == n {
			for i, v := range tp.Int32Data {
				switch onnxpb.TensorProto_DataType(dt) {
				case onnxpb.TensorProto_BOOL:
					t.B[i] = v != 0
				case onnxpb.TensorProto_FLOAT16:
					t.F[i] = halfToFloat(uint16(v))
				case onnxpb.TensorProto_BFLOAT16:
					t.F[i] = math.Float32frombits(uint32(v) << 16)
				default:
					t.I[i] = int64(v)
				}
			}
		}
	}
	if have != n {
		return fmt.Errorf("tensor %q holds %d values, shape %v needs %d", tp.GetName(), have, t.Shape, n)
	}
	return nil
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// TensorToProto converts a tensor to a TensorProto with raw little-endian
// data (FLOAT, INT64 or BOOL).
func TensorToProto(name string, t *tensor.Tensor) *onnxpb.TensorProto {
	tp := &onnxpb.TensorProto{Name: proto.String(name)}
	for _, d := range t.Shape {
		tp.Dims = append(tp.Dims, int64(d))
	}
	le := binary.LittleEndian
	switch t.DType {
	case tensor.Float32:
		tp.DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
		raw := make([]byte, 4*len(t.F))
		for i, v := range t.F {
			le.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		tp.RawData = raw
	case tensor.Int64:
		tp.DataType = proto.Int32(int32(onnxpb.TensorProto_INT64))
		raw := make([]byte, 8*len(t.I))
		for i, v := range t.I {
			le.PutUint64(raw[8*i:], uint64(v))
		}
		tp.RawData = raw
	case tensor.Bool:
		tp.DataType = proto.Int32(int32(onnxpb.TensorProto_BOOL))
		raw := make([]byte, len(t.B))
		for i, v := range t.B {
			if v {
				raw[i] = 1
			}
		}
		tp.RawData = raw
	}
	return tp
}

// ReadTensorFile reads a serialized TensorProto (.pb) file.
func ReadTensorFile(path string) (*tensor.Tensor, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	tp := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, tp); err != nil {
		return nil, "", fmt.Errorf("%s: not a serialized ONNX TensorProto: %w", path, err)
	}
	if tp.DataType == nil && len(tp.Dims) == 0 && tp.RawData == nil {
		return nil, "", fmt.Errorf("%s: not a serialized ONNX TensorProto (no data type, shape or data)", path)
	}
	t, err := TensorFromProto(tp, filepath.Dir(path))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return t, tp.GetName(), nil
}

// WriteTensorFile writes t as a serialized TensorProto.
func WriteTensorFile(path, name string, t *tensor.Tensor) error {
	b, err := proto.Marshal(TensorToProto(name, t))
	if err != nil {
		return fmt.Errorf("encoding tensor %q: %w", name, err)
	}
	return os.WriteFile(path, b, 0o644)
}

// ErrNotONNX is wrapped by errors for files that are not ONNX models.
var ErrNotONNX = errors.New("not an ONNX model")
