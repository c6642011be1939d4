#!/usr/bin/env node
'use strict';
// run.js runs an ONNX model with ONNX Runtime (onnxruntime-node, CPU
// execution provider) as the reference the iop engine is checked against.
//
// Usage:
//   node run.js --model m.onnx --input a.pb [--input b.pb ...]
//               [--output-dir DIR] [--threads N]
//               [--bench K [--warmup W]]
//   node run.js --check
//
// Inputs and outputs are serialized onnx.TensorProto files (the ONNX
// test-data .pb format). Inputs are matched to the model's inputs by the
// TensorProto name when every input file names a model input, and by position
// otherwise. An int64 input is narrowed to int32, and float32 and float64 are
// converted, when the model declares that type. With --output-dir, output i is written to DIR/output_i.pb and a
// JSON manifest {"outputs":[{"name","file","type","dims"}...]} is printed.
// With --bench K, W warm-up runs (default 3) are followed by K timed runs and
// {"median_ms","min_ms","mean_ms","runs","times_ms","threads","ort_version"}
// is printed. --check only loads ONNX Runtime and prints its version.
//
// Session options: CPU EP, intraOpNumThreads = N (0 = ONNX Runtime's
// default), interOpNumThreads = 1, graphOptimizationLevel 'all', sequential
// execution.

const fs = require('node:fs');
const path = require('node:path');
const tp = require('./tensorproto');

function usage(msg) {
  if (msg) process.stderr.write(`run.js: ${msg}\n`);
  process.stderr.write(
    'usage: node run.js --model M.onnx --input X.pb [--input Y.pb ...] ' +
      '[--output-dir DIR] [--threads N] [--bench K] [--warmup W]\n' +
      '       node run.js --check\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { inputs: [], threads: 1, warmup: 3, bench: 0, outputDir: '', model: '', check: false };
  const intArg = (flag, v, min) => {
    if (v === undefined) usage(`${flag} needs a value`);
    if (!/^-?\d+$/.test(v)) usage(`${flag}: not an integer: ${v}`);
    const n = Number(v);
    if (n < min) usage(`${flag} must be >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--model': opts.model = next(); break;
      case '--input': opts.inputs.push(next()); break;
      case '--output-dir': opts.outputDir = next(); break;
      case '--threads': opts.threads = intArg(a, next(), 0); break;
      case '--bench': opts.bench = intArg(a, next(), 1); break;
      case '--warmup': opts.warmup = intArg(a, next(), 0); break;
      case '--check': opts.check = true; break;
      case '-h':
      case '--help': usage(); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!opts.check && !opts.model) usage('--model is required');
  return opts;
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    throw new Error(
      `cannot load onnxruntime-node (install it with: cd ${__dirname} && ` +
        `ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --ignore-scripts): ${e.message}`,
    );
  }
}

// convert returns data (of ORT type from) as the ORT type to that the model
// declares, for the widenings and narrowings a caller whose tensors are only
// float32/int64/bool needs: int64 -> int32 (range-checked) and
// float32 <-> float64. Other mismatches are left for ONNX Runtime to reject.
function convert(data, from, to, name) {
  if (from === to) return data;
  if (from === 'int64' && to === 'int32') {
    const out = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < -2147483648n || v > 2147483647n) {
        throw new Error(`input ${name}: value ${v} at ${i} does not fit the model's int32`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  if (from === 'float32' && to === 'float64') return Float64Array.from(data);
  if (from === 'float64' && to === 'float32') return Float32Array.from(data);
  return data;
}

function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const version = ort.env.versions.node || ort.env.versions.common;
  if (opts.check) {
    process.stdout.write(JSON.stringify({ ort_version: version, node_version: process.versions.node }) + '\n');
    return;
  }

  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  });

  const files = opts.inputs.map((f) => {
    try {
      return tp.decode(fs.readFileSync(f));
    } catch (e) {
      throw new Error(`${f}: ${e.message}`);
    }
  });
  const names = session.inputNames;
  if (files.length !== names.length) {
    throw new Error(`model ${opts.model} has ${names.length} inputs (${names.join(', ')}), got ${files.length} input files`);
  }
  const byName = files.every((t) => names.includes(t.name)) && new Set(files.map((t) => t.name)).size === files.length;
  const meta = new Map((session.inputMetadata || []).map((m) => [m.name, m]));
  const feeds = {};
  files.forEach((t, i) => {
    const key = byName ? t.name : names[i];
    const m = meta.get(key);
    const want = m && m.isTensor ? m.type : t.type;
    feeds[key] = new ort.Tensor(want, convert(t.data, t.type, want, key), t.dims);
  });

  let results;
  let report = null;
  if (opts.bench > 0) {
    for (let i = 0; i < opts.warmup; i++) results = await session.run(feeds);
    const times = [];
    for (let i = 0; i < opts.bench; i++) {
      const t0 = process.hrtime.bigint();
      results = await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const sorted = [...times].sort((a, b) => a - b);
    report = {
      median_ms: median(sorted),
      min_ms: sorted[0],
      mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
      runs: times.length,
      warmup: opts.warmup,
      threads: opts.threads,
      ort_version: version,
      times_ms: times,
    };
  } else {
    results = await session.run(feeds);
  }

  const manifest = [];
  if (opts.outputDir) {
    fs.mkdirSync(opts.outputDir, { recursive: true });
    session.outputNames.forEach((name, i) => {
      const t = results[name];
      const file = path.join(opts.outputDir, `output_${i}.pb`);
      fs.writeFileSync(file, tp.encode(name, t.type, t.dims, t.data));
      manifest.push({ name, file, type: t.type, dims: t.dims });
    });
  }
  await session.release();

  if (report) {
    if (opts.outputDir) report.outputs = manifest;
    process.stdout.write(JSON.stringify(report) + '\n');
  } else if (opts.outputDir) {
    process.stdout.write(JSON.stringify({ outputs: manifest }) + '\n');
  } else {
    for (const name of session.outputNames) {
      const t = results[name];
      process.stdout.write(`${name}: ${t.type} [${t.dims.join(', ')}]\n`);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`run.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
