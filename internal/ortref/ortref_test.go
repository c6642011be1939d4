package ortref

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/tensor"
)

// requireORT skips the test when ONNX Runtime is not installed, or fails it
// when IOP_REQUIRE_ORT=1.
func requireORT(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("IOP_REQUIRE_ORT") == "1" {
			t.Fatalf("ONNX Runtime required (IOP_REQUIRE_ORT=1) but unavailable: %v", err)
		}
		t.Skipf("ONNX Runtime not installed, skipping (see tools/ort/README.md): %v", err)
	}
}

// conformanceDir returns $IOP_CONFORMANCE_DIR or <repo root>/../shared/onnx-conformance.
func conformanceDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("IOP_CONFORMANCE_DIR")
	if d == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		d = filepath.Join(root, "testdata", "onnx-conformance") // the vendored copy
	}
	if _, err := os.Stat(d); err != nil {
		if os.Getenv("IOP_REQUIRE_ORT") == "1" {
			t.Fatalf("conformance cases not found: %v (set IOP_CONFORMANCE_DIR)", err)
		}
		t.Skipf("conformance cases not found, skipping: %v (set IOP_CONFORMANCE_DIR)", err)
	}
	return d
}

// readPBs reads dir/prefix_N.pb for N = 0, 1, ... in order.
func readPBs(t testing.TB, dir, prefix string) []*tensor.Tensor {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, prefix+"_*.pb"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool {
		return len(files[i]) < len(files[j]) || len(files[i]) == len(files[j]) && files[i] < files[j]
	})
	out := make([]*tensor.Tensor, len(files))
	for i, f := range files {
		tt, _, err := onnx.ReadTensorFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tt
	}
	return out
}

func TestRunConformance(t *testing.T) {
	requireORT(t)
	dir := conformanceDir(t)
	t.Logf("ONNX Runtime %s", Version())
	cases := []string{
		"node/test_basic_conv_with_padding",
		"node/test_conv_with_strides_and_asymmetric_padding",
		"node/test_batchnorm_example",
		"node/test_maxpool_2d_pads",
		"node/test_gemm_all_attributes",
		"node/test_gather_0",             // INT64 input
		"node/test_reshape_negative_dim", // INT64 input with a negative value
		"node/test_shape",                // INT64 output
		"pytorch-converted/test_Conv2d_groups",
		"pytorch-operator/test_operator_conv",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c, "/", "_"), func(t *testing.T) {
			data := filepath.Join(dir, c, "test_data_set_0")
			inputs := readPBs(t, data, "input")
			want := readPBs(t, data, "output")
			got, err := Run(ctx, filepath.Join(dir, c, "model.onnx"), inputs, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				if err := tensor.AllClose(got[i], want[i], 1e-3, 1e-5); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}

func TestBench(t *testing.T) {
	requireORT(t)
	dir := conformanceDir(t)
	c := filepath.Join(dir, "node", "test_basic_conv_with_padding")
	inputs := readPBs(t, filepath.Join(c, "test_data_set_0"), "input")
	res, err := Bench(context.Background(), filepath.Join(c, "model.onnx"), inputs, 2, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !(res.MinMS > 0 && res.MinMS <= res.MedianMS) {
		t.Fatalf("implausible timings %+v", res)
	}
	t.Logf("conv 5x5 on 2 threads: median %.4f ms, min %.4f ms", res.MedianMS, res.MinMS)
}

func TestBenchArgs(t *testing.T) {
	if _, err := Bench(context.Background(), "m.onnx", nil, 1, 0, 0); err == nil {
		t.Fatal("iters=0: want an error")
	}
	if _, err := Bench(context.Background(), "m.onnx", nil, 1, -1, 1); err == nil {
		t.Fatal("warmup=-1: want an error")
	}
}

func TestRunErrors(t *testing.T) {
	requireORT(t)
	dir := conformanceDir(t)
	ctx := context.Background()
	if _, err := Run(ctx, filepath.Join(t.TempDir(), "missing.onnx"), nil, 1); err == nil {
		t.Fatal("missing model: want an error")
	} else {
		t.Logf("missing model: %v", err)
	}
	// Wrong number of inputs.
	model := filepath.Join(dir, "node", "test_basic_conv_with_padding", "model.onnx")
	_, err := Run(ctx, model, []*tensor.Tensor{tensor.FromFloat32(tensor.Shape{1}, []float32{1})}, 1)
	if err == nil || !strings.Contains(err.Error(), "inputs") {
		t.Fatalf("wrong input count: got %v, want an error about inputs", err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "ort", "run.js")); err != nil {
		t.Fatalf("repo root %s: %v", root, err)
	}
}

// TestRunAllConformance runs every conformance case through ONNX Runtime; it
// takes a while (one Node.js process per case), so it runs only with
// IOP_ORT_ALL=1.
func TestRunAllConformance(t *testing.T) {
	if os.Getenv("IOP_ORT_ALL") != "1" {
		t.Skip("set IOP_ORT_ALL=1 to run every conformance case through ONNX Runtime")
	}
	requireORT(t)
	dir := conformanceDir(t)
	models, err := filepath.Glob(filepath.Join(dir, "*", "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range models {
		c := filepath.Dir(m)
		t.Run(filepath.Base(filepath.Dir(c))+"_"+filepath.Base(c), func(t *testing.T) {
			data := filepath.Join(c, "test_data_set_0")
			inputs := readPBs(t, data, "input")
			want := readPBs(t, data, "output")
			got, err := Run(ctx, m, inputs, 1)
			if err != nil && strings.Contains(err.Error(), "Could not find an implementation") {
				// ONNX Runtime 1.30 has no kernels for some pre-opset-7 ops
				// (e.g. Add-6, Gemm-6, BatchNormalization-6, AveragePool-1).
				t.Skipf("ONNX Runtime does not implement this legacy operator version: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				if err := tensor.AllClose(got[i], want[i], 1e-3, 1e-5); err != nil {
					t.Errorf("output %d: %v", i, err)
				}
			}
		})
	}
}

func TestCheckNotInstalled(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "run.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvToolDir, dir)
	err := check()
	if err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Fatalf("check() with no node_modules = %v, want an error giving the install command", err)
	}
	t.Setenv(EnvToolDir, filepath.Join(dir, "nowhere"))
	if err := check(); err == nil {
		t.Fatal("check() with a missing tool dir: want an error")
	}
}
