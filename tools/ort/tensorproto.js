'use strict';
// Minimal reader/writer for serialized onnx.TensorProto messages (the ONNX
// test-data .pb format), written against the protobuf wire format by hand so
// the tool needs no protobuf dependency.
//
// Fields handled (onnx.proto): dims = 1 (int64, packed or not),
// data_type = 2, float_data = 4 (packed or not), int32_data = 5 (INT32 and
// BOOL), int64_data = 7 (packed or not), name = 8, raw_data = 9,
// double_data = 10, data_location = 14 (EXTERNAL is rejected). Other fields
// are skipped. Element types: FLOAT (1), INT32 (6), INT64 (7), BOOL (9) and
// DOUBLE (11); the writer always uses raw_data.

const DataType = Object.freeze({ FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 });

// Per element type: ORT type string, bytes per element, typed array.
const types = {
  [DataType.FLOAT]: { ort: 'float32', size: 4, Array: Float32Array },
  [DataType.INT32]: { ort: 'int32', size: 4, Array: Int32Array },
  [DataType.INT64]: { ort: 'int64', size: 8, Array: BigInt64Array },
  [DataType.BOOL]: { ort: 'bool', size: 1, Array: Uint8Array },
  [DataType.DOUBLE]: { ort: 'float64', size: 8, Array: Float64Array },
};

const protoTypeOf = Object.fromEntries(Object.entries(types).map(([dt, t]) => [t.ort, Number(dt)]));

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

// Reader walks a protobuf-encoded buffer.
class Reader {
  constructor(buf) {
    this.buf = buf;
    this.pos = 0;
  }

  eof() {
    return this.pos >= this.buf.length;
  }

  // varint returns the next varint as a BigInt (unsigned, up to 64 bits).
  varint() {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new Error('varint longer than 10 bytes');
  }

  // int64 returns the next varint as a signed 64-bit BigInt.
  int64() {
    return BigInt.asIntN(64, this.varint());
  }

  // smallInt returns the next varint as a Number; it must fit exactly.
  smallInt() {
    const v = this.int64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`integer ${v} out of range`);
    }
    return Number(v);
  }

  bytes(n) {
    if (n < 0 || this.pos + n > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  lenDelimited() {
    return this.bytes(this.smallInt());
  }

  skip(wire) {
    switch (wire) {
      case WIRE_VARINT: this.varint(); break;
      case WIRE_I64: this.bytes(8); break;
      case WIRE_LEN: this.lenDelimited(); break;
      case WIRE_I32: this.bytes(4); break;
      default: throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

// Reads a repeated varint field that may be packed (WIRE_LEN) or not.
function readRepeatedVarint(r, wire, into, conv) {
  if (wire === WIRE_LEN) {
    const sub = new Reader(r.lenDelimited());
    while (!sub.eof()) into.push(conv(sub));
  } else if (wire === WIRE_VARINT) {
    into.push(conv(r));
  } else {
    throw new Error(`bad wire type ${wire} for a varint field`);
  }
}

function copyBytes(u8) {
  // Copy into a fresh, aligned ArrayBuffer.
  const b = new Uint8Array(u8.length);
  b.set(u8);
  return b.buffer;
}

// decode parses a serialized TensorProto into
// {name, dataType, type (ORT type string), dims (Numbers), data (typed array)}.
function decode(buf) {
  const r = new Reader(buf);
  const dims = [];
  const floats = [];
  const int32s = [];
  const int64s = [];
  const doubles = [];
  let dataType = 0;
  let name = '';
  let raw = null;
  let external = false;
  while (!r.eof()) {
    const key = r.smallInt();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    switch (field) {
      case 1:
        readRepeatedVarint(r, wire, dims, (x) => x.smallInt());
        break;
      case 2:
        if (wire !== WIRE_VARINT) throw new Error('bad wire type for data_type');
        dataType = r.smallInt();
        break;
      case 4:
        if (wire === WIRE_LEN) {
          const b = r.lenDelimited();
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (b.length % 4 !== 0) throw new Error('float_data length not a multiple of 4');
          for (let i = 0; i < b.length; i += 4) floats.push(dv.getFloat32(i, true));
        } else if (wire === WIRE_I32) {
          const b = r.bytes(4);
          floats.push(new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true));
        } else {
          throw new Error('bad wire type for float_data');
        }
        break;
      case 5:
        readRepeatedVarint(r, wire, int32s, (x) => x.smallInt());
        break;
      case 7:
        readRepeatedVarint(r, wire, int64s, (x) => x.int64());
        break;
      case 8:
        if (wire !== WIRE_LEN) throw new Error('bad wire type for name');
        name = Buffer.from(r.lenDelimited()).toString('utf8');
        break;
      case 9:
        if (wire !== WIRE_LEN) throw new Error('bad wire type for raw_data');
        raw = r.lenDelimited();
        break;
      case 10:
        if (wire === WIRE_LEN) {
          const b = r.lenDelimited();
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          if (b.length % 8 !== 0) throw new Error('double_data length not a multiple of 8');
          for (let i = 0; i < b.length; i += 8) doubles.push(dv.getFloat64(i, true));
        } else if (wire === WIRE_I64) {
          const b = r.bytes(8);
          doubles.push(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true));
        } else {
          throw new Error('bad wire type for double_data');
        }
        break;
      case 14:
        if (wire !== WIRE_VARINT) throw new Error('bad wire type for data_location');
        external = r.smallInt() === 1;
        break;
      default:
        r.skip(wire);
    }
  }
  if (external) throw new Error('external tensor data is not supported');
  const info = types[dataType];
  if (!info) throw new Error(`unsupported TensorProto data_type ${dataType} (want FLOAT, INT32, INT64, BOOL or DOUBLE)`);
  if (!littleEndian()) throw new Error('big-endian hosts are not supported');
  const n = dims.reduce((a, b) => a * b, 1);
  let data;
  if (raw !== null) {
    if (raw.length !== info.size * n) {
      throw new Error(`raw_data has ${raw.length} bytes, want ${info.size * n} for ${info.ort} ${JSON.stringify(dims)}`);
    }
    data = new info.Array(copyBytes(raw));
  } else {
    let vals;
    let field;
    switch (dataType) {
      case DataType.FLOAT: vals = floats; field = 'float_data'; break;
      case DataType.INT64: vals = int64s; field = 'int64_data'; break;
      case DataType.DOUBLE: vals = doubles; field = 'double_data'; break;
      case DataType.BOOL: vals = int32s.map((v) => (v ? 1 : 0)); field = 'int32_data'; break;
      default: vals = int32s; field = 'int32_data';
    }
    if (vals.length !== n) throw new Error(`${field} has ${vals.length} values, want ${n}`);
    data = info.Array.from(vals);
  }
  const type = info.ort;
  return { name, dataType, type, dims, data };
}

function littleEndian() {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

// Writer accumulates protobuf-encoded bytes.
class Writer {
  constructor() {
    this.chunks = [];
  }

  varint(v) {
    let x = BigInt.asUintN(64, BigInt(v));
    const out = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.chunks.push(Buffer.from(out));
  }

  key(field, wire) {
    this.varint(field * 8 + wire);
  }

  bytesField(field, b) {
    this.key(field, WIRE_LEN);
    this.varint(b.length);
    this.chunks.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  finish() {
    return Buffer.concat(this.chunks);
  }
}

// encode serializes a tensor as a TensorProto with raw little-endian data.
// type is an ORT type string ('float32', 'float64', 'int32', 'int64' or
// 'bool'); data a typed array of that type.
function encode(name, type, dims, data) {
  const dt = protoTypeOf[type];
  if (!dt) throw new Error(`cannot write tensor ${JSON.stringify(name)} of type ${type} (want float32, float64, int32, int64 or bool)`);
  if (!littleEndian()) throw new Error('big-endian hosts are not supported');
  const w = new Writer();
  if (dims.length > 0) {
    const d = new Writer();
    for (const x of dims) d.varint(x);
    w.bytesField(1, d.finish());
  }
  w.key(2, WIRE_VARINT);
  w.varint(dt);
  if (name) w.bytesField(8, Buffer.from(name, 'utf8'));
  const A = types[dt].Array;
  let raw = data;
  if (!(data instanceof A)) {
    raw = type === 'bool' ? Uint8Array.from(data, (v) => (v ? 1 : 0)) : A.from(data);
  }
  const n = dims.reduce((a, b) => a * b, 1);
  if (raw.length !== n) throw new Error(`tensor ${JSON.stringify(name)}: ${raw.length} values for shape ${JSON.stringify(dims)}`);
  w.bytesField(9, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  return w.finish();
}

module.exports = { decode, encode, DataType, types };
