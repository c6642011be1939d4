// Package ortref runs ONNX models with ONNX Runtime, the reference the
// engine's results and speed are checked against.
//
// ONNX Runtime is reached through the Node.js tool in tools/ort (npm package
// onnxruntime-node, CPU execution provider): tensors go to it and come back as
// serialized TensorProto (.pb) files in a temporary directory. The tool must
// be installed first; see tools/ort/README.md.
package ortref

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/tensor"
)

// EnvToolDir names an environment variable that, when set, gives the
// directory of the ORT tool (the one holding run.js) instead of
// <repo root>/tools/ort.
const EnvToolDir = "IOP_ORT_DIR"

// modulePath identifies the repository root's go.mod.
const modulePath = "github.com/iop-edge/iop"

// Result is the outcome of a benchmark: per-run wall time of ONNX Runtime's
// session.run, in milliseconds.
type Result struct {
	MedianMS float64 // median of the timed runs
	MinMS    float64 // fastest timed run
}

var (
	availOnce sync.Once
	availErr  error
	toolDir   string
	nodePath  string
	version   string
)

// Available reports whether ONNX Runtime can be used: node is on PATH, the
// tool's dependencies are installed in tools/ort/node_modules and the native
// library loads. It returns an error saying what is missing otherwise. The
// check runs once per process.
func Available() error {
	availOnce.Do(func() { availErr = check() })
	return availErr
}

// Version returns the ONNX Runtime version in use, or "" when Available
// fails.
func Version() string {
	if Available() != nil {
		return ""
	}
	return version
}

func check() error {
	dir, err := findToolDir()
	if err != nil {
		return err
	}
	np, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("ortref: node (Node.js) is not on PATH: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		return fmt.Errorf("ortref: onnxruntime-node is not installed in %s (run: cd %s && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --ignore-scripts)", dir, dir)
	}
	cmd := exec.Command(np, filepath.Join(dir, "run.js"), "--check")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ortref: loading ONNX Runtime failed: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var v struct {
		ORTVersion string `json:"ort_version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		return fmt.Errorf("ortref: parsing run.js --check output %q: %w", stdout.String(), err)
	}
	toolDir, nodePath, version = dir, np, v.ORTVersion
	return nil
}

// findToolDir locates tools/ort: $IOP_ORT_DIR, else relative to the repository
// root found from this source file's path, else from the working directory.
func findToolDir() (string, error) {
	if d := os.Getenv(EnvToolDir); d != "" {
		if _, err := os.Stat(filepath.Join(d, "run.js")); err != nil {
			return "", fmt.Errorf("ortref: %s=%s has no run.js: %w", EnvToolDir, d, err)
		}
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(root, "tools", "ort")
	if _, err := os.Stat(filepath.Join(d, "run.js")); err != nil {
		return "", fmt.Errorf("ortref: %s has no run.js: %w", d, err)
	}
	return d, nil
}

// RepoRoot returns the repository root: the nearest directory above this
// package's source (or, failing that, above the working directory) whose
// go.mod declares module github.com/iop-edge/iop.
func RepoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		for d := s; ; {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && declaresModule(b) {
				return d, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", fmt.Errorf("ortref: repository root (go.mod of %s) not found above %v", modulePath, starts)
}

func declaresModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}

// Run runs the model at modelPath once with ONNX Runtime on threads intra-op
// threads (0 lets ONNX Runtime choose) and returns its outputs in the model's
// output order. inputs are given in the model's input order (initializers
// excluded).
func Run(ctx context.Context, modelPath string, inputs []*tensor.Tensor, threads int) ([]*tensor.Tensor, error) {
	outs, _, err := invoke(ctx, modelPath, inputs, threads, true, 0, 0)
	return outs, err
}

// Bench runs the model warmup times untimed and then iters times timed, and
// reports the median and minimum wall time of one run.
func Bench(ctx context.Context, modelPath string, inputs []*tensor.Tensor, threads, warmup, iters int) (Result, error) {
	if iters < 1 {
		return Result{}, fmt.Errorf("ortref: bench %s: iters must be >= 1, got %d", modelPath, iters)
	}
	if warmup < 0 {
		return Result{}, fmt.Errorf("ortref: bench %s: warmup must be >= 0, got %d", modelPath, warmup)
	}
	_, res, err := invoke(ctx, modelPath, inputs, threads, false, warmup, iters)
	return res, err
}

// manifest is run.js's JSON report (run or bench mode).
type manifest struct {
	MedianMS *float64 `json:"median_ms"`
	MinMS    *float64 `json:"min_ms"`
	Outputs  []struct {
		Name string `json:"name"`
		File string `json:"file"`
	} `json:"outputs"`
}

func invoke(ctx context.Context, modelPath string, inputs []*tensor.Tensor, threads int, wantOutputs bool, warmup, iters int) ([]*tensor.Tensor, Result, error) {
	if err := Available(); err != nil {
		return nil, Result{}, err
	}
	if threads < 0 {
		return nil, Result{}, fmt.Errorf("ortref: %s: threads must be >= 0, got %d", modelPath, threads)
	}
	model, err := filepath.Abs(modelPath)
	if err != nil {
		return nil, Result{}, fmt.Errorf("ortref: %s: %w", modelPath, err)
	}
	tmp, err := os.MkdirTemp("", "ortref-")
	if err != nil {
		return nil, Result{}, fmt.Errorf("ortref: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	args := []string{filepath.Join(toolDir, "run.js"), "--model", model, "--threads", strconv.Itoa(threads)}
	for i, t := range inputs {
		if t == nil {
			return nil, Result{}, fmt.Errorf("ortref: %s: input %d is nil", modelPath, i)
		}
		p := filepath.Join(tmp, fmt.Sprintf("input_%d.pb", i))
		// Unnamed, so run.js matches inputs to the model by position.
		if err := onnx.WriteTensorFile(p, "", t); err != nil {
			return nil, Result{}, fmt.Errorf("ortref: writing input %d: %w", i, err)
		}
		args = append(args, "--input", p)
	}
	outDir := filepath.Join(tmp, "out")
	if wantOutputs {
		args = append(args, "--output-dir", outDir)
	}
	if iters > 0 {
		args = append(args, "--bench", strconv.Itoa(iters), "--warmup", strconv.Itoa(warmup))
	}

	cmd := exec.CommandContext(ctx, nodePath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, Result{}, fmt.Errorf("ortref: %s: %w", modelPath, ctxErr)
		}
		return nil, Result{}, fmt.Errorf("ortref: onnxruntime on %s: %w: %s", modelPath, err, strings.TrimSpace(stderr.String()))
	}
	var m manifest
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		return nil, Result{}, fmt.Errorf("ortref: %s: parsing run.js output %q: %w", modelPath, stdout.String(), err)
	}

	var res Result
	if iters > 0 {
		if m.MedianMS == nil || m.MinMS == nil {
			return nil, Result{}, fmt.Errorf("ortref: %s: run.js printed no timings: %q", modelPath, stdout.String())
		}
		res = Result{MedianMS: *m.MedianMS, MinMS: *m.MinMS}
	}
	if !wantOutputs {
		return nil, res, nil
	}
	if len(m.Outputs) == 0 {
		return nil, Result{}, errors.New("ortref: " + modelPath + ": run.js reported no outputs")
	}
	outs := make([]*tensor.Tensor, len(m.Outputs))
	for i, o := range m.Outputs {
		t, _, err := onnx.ReadTensorFile(o.File)
		if err != nil {
			return nil, Result{}, fmt.Errorf("ortref: %s: reading output %d (%s): %w", modelPath, i, o.Name, err)
		}
		outs[i] = t
	}
	return outs, res, nil
}
