'use strict';
// Tests for tensorproto.js. Run: node --test tools/ort/
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const tp = require('./tensorproto');

// Hand-encoding helpers (independent of tensorproto.js's Writer).
function varint(v) {
  let x = BigInt.asUintN(64, BigInt(v));
  const out = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}
const key = (field, wire) => varint(field * 8 + wire);
const lenField = (field, bytes) => [...key(field, 2), ...varint(bytes.length), ...bytes];

test('float raw_data round trip', () => {
  const data = Float32Array.from([1.5, -2, 0, 3.25e-8, Infinity]);
  const buf = tp.encode('x', 'float32', [1, 5], data);
  const t = tp.decode(buf);
  assert.equal(t.name, 'x');
  assert.equal(t.type, 'float32');
  assert.deepEqual(t.dims, [1, 5]);
  assert.deepEqual(Array.from(t.data), Array.from(data));
});

test('int64 raw_data round trip with negatives and large values', () => {
  const data = BigInt64Array.from([-1n, 0n, 9007199254740993n, -9223372036854775808n]);
  const t = tp.decode(tp.encode('i', 'int64', [4], data));
  assert.equal(t.type, 'int64');
  assert.deepEqual(Array.from(t.data), Array.from(data));
});

test('bool and scalar round trip', () => {
  const t = tp.decode(tp.encode('', 'bool', [], Uint8Array.from([1])));
  assert.equal(t.type, 'bool');
  assert.deepEqual(t.dims, []);
  assert.deepEqual(Array.from(t.data), [1]);
});

test('typed fields, unpacked dims and int64_data', () => {
  // dims 2 and 1 unpacked, data_type INT64, int64_data unpacked: -3, 7.
  const bytes = [
    ...key(1, 0), ...varint(2),
    ...key(1, 0), ...varint(1),
    ...key(2, 0), ...varint(7),
    ...key(7, 0), ...varint(-3n),
    ...key(7, 0), ...varint(7),
    ...lenField(8, [...Buffer.from('n')]),
    ...key(12, 2), 0, // doc_string (skipped)
  ];
  const t = tp.decode(Buffer.from(bytes));
  assert.deepEqual(t.dims, [2, 1]);
  assert.equal(t.name, 'n');
  assert.deepEqual(Array.from(t.data), [-3n, 7n]);
});

test('packed float_data and packed int64_data', () => {
  const f = Buffer.alloc(8);
  f.writeFloatLE(0.5, 0);
  f.writeFloatLE(-4, 4);
  const tf = tp.decode(Buffer.from([
    ...lenField(1, varint(2)), ...key(2, 0), ...varint(1), ...lenField(4, [...f]),
  ]));
  assert.deepEqual(Array.from(tf.data), [0.5, -4]);
  const ti = tp.decode(Buffer.from([
    ...lenField(1, varint(3)), ...key(2, 0), ...varint(7),
    ...lenField(7, [...varint(1), ...varint(-1n), ...varint(300)]),
  ]));
  assert.deepEqual(Array.from(ti.data), [1n, -1n, 300n]);
});

test('errors', () => {
  assert.throws(() => tp.decode(Buffer.from([...key(2, 0), ...varint(8)])), /unsupported TensorProto data_type 8/);
  assert.throws(() => tp.decode(Buffer.from([...lenField(1, varint(3)), ...key(2, 0), 1, ...lenField(9, [0, 0, 0, 0])])), /raw_data has 4 bytes, want 12/);
  assert.throws(() => tp.decode(Buffer.from([...key(9, 2), 10, 1])), /truncated/);
  assert.throws(() => tp.encode('s', 'string', [1], ['a']), /cannot write/);
});

// Every conformance .pb decodes, and encoding then decoding gives it back.
test('conformance files round trip', (t) => {
  const dir = process.env.IOP_CONFORMANCE_DIR || path.join(__dirname, '..', '..', '..', 'shared', 'onnx-conformance');
  if (!fs.existsSync(dir)) {
    t.skip(`no conformance cases at ${dir}`);
    return;
  }
  let n = 0;
  for (const suite of fs.readdirSync(dir)) {
    const sdir = path.join(dir, suite);
    if (!fs.statSync(sdir).isDirectory()) continue;
    for (const c of fs.readdirSync(sdir)) {
      const data = path.join(sdir, c, 'test_data_set_0');
      if (!fs.existsSync(data)) continue;
      for (const f of fs.readdirSync(data)) {
        if (!f.endsWith('.pb')) continue;
        const file = path.join(data, f);
        let a;
        try {
          a = tp.decode(fs.readFileSync(file));
        } catch (e) {
          if (/unsupported TensorProto data_type/.test(e.message)) continue;
          throw new Error(`${file}: ${e.message}`);
        }
        const b = tp.decode(tp.encode(a.name, a.type, a.dims, a.data));
        assert.equal(b.name, a.name, file);
        assert.deepEqual(b.dims, a.dims, file);
        assert.deepEqual(Array.from(b.data), Array.from(a.data), file);
        n++;
      }
    }
  }
  assert.ok(n > 100, `only ${n} conformance tensors found`);
});

test('int32 and double, raw and typed', () => {
  const i = tp.decode(tp.encode('a', 'int32', [3], Int32Array.from([-5, 0, 2147483647])));
  assert.equal(i.type, 'int32');
  assert.deepEqual(Array.from(i.data), [-5, 0, 2147483647]);
  const d = tp.decode(tp.encode('d', 'float64', [2], Float64Array.from([0.1, -1e300])));
  assert.equal(d.type, 'float64');
  assert.deepEqual(Array.from(d.data), [0.1, -1e300]);
  // int32_data (field 5, packed) with a negative value, and unpacked double_data.
  const ti = tp.decode(Buffer.from([...lenField(1, varint(2)), ...key(2, 0), ...varint(6), ...lenField(5, [...varint(-7), ...varint(9)])]));
  assert.deepEqual(Array.from(ti.data), [-7, 9]);
  const db = Buffer.alloc(8);
  db.writeDoubleLE(2.5, 0);
  const td = tp.decode(Buffer.from([...key(2, 0), ...varint(11), ...key(10, 1), ...db]));
  assert.deepEqual(td.dims, []);
  assert.deepEqual(Array.from(td.data), [2.5]);
});
