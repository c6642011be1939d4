package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/tensor"
)

// TestBadInputErrors checks that bad models and inputs end in a one-line
// error naming the problem and a non-zero exit — never a panic or a hang.
func TestBadInputErrors(t *testing.T) {
	dir := t.TempDir()
	bin := buildIop(t, dir)
	conf := conformanceDir(t)
	relu := filepath.Join(conf, "node", "test_relu", "model.onnx")
	reluIn := filepath.Join(conf, "node", "test_relu", "test_data_set_0", "input_0.pb")
	good, err := os.ReadFile(relu)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.onnx", good[:len(good)*2/3])
	random := write("random.onnx", bytes.Repeat([]byte{0x9a, 0x13, 0xff, 0x07}, 300))
	notImage := write("photo.jpg", []byte("this is not really a JPEG"))
	textInput := write("input.pb", []byte("hello"))
	wrongShape := filepath.Join(dir, "wrong_shape.pb")
	if err := onnx.WriteTensorFile(wrongShape, "x", tensor.New(tensor.Float32, tensor.Shape{2, 2})); err != nil {
		t.Fatal(err)
	}
	wrongType := filepath.Join(dir, "wrong_type.pb")
	if err := onnx.WriteTensorFile(wrongType, "x", tensor.New(tensor.Int64, tensor.Shape{3, 4, 5})); err != nil {
		t.Fatal(err)
	}
	// A model with an operator we do not implement.
	g, err := onnx.LoadFile(relu)
	if err != nil {
		t.Fatal(err)
	}
	g.Nodes[0].Op = "NonMaxSuppression"
	unsupported := filepath.Join(dir, "unsupported.onnx")
	if err := onnx.SaveFile(g, unsupported); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"truncated model", []string{"infer", truncated, "--input", reluIn}, "truncated.onnx"},
		{"random bytes", []string{"infer", random, "--input", reluIn}, "not an ONNX model"},
		{"missing model", []string{"infer", filepath.Join(dir, "nope.onnx")}, "does not exist"},
		{"unknown zoo name", []string{"infer", "resnet1000"}, "neither an ONNX file nor a zoo model"},
		{"unsupported operator", []string{"infer", unsupported, "--input", reluIn}, "unsupported operator NonMaxSuppression"},
		{"wrong input shape", []string{"infer", relu, "--input", wrongShape}, "shape"},
		{"wrong input dtype", []string{"infer", relu, "--input", wrongType}, "element type"},
		{"missing input file", []string{"infer", relu, "--input", filepath.Join(dir, "none.pb")}, "none.pb"},
		{"input not a tensor", []string{"infer", relu, "--input", textInput}, "input.pb"},
		{"image that is not an image", []string{"infer", "tiny-resnet", "--input", notImage}, "photo.jpg"},
		{"too many inputs", []string{"infer", relu, "--input", reluIn, "--input", reluIn}, "takes 1 input"},
		{"bad flag", []string{"infer", relu, "--threads", "many"}, "threads"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("hung: %v", c.args)
			}
			if err == nil {
				t.Fatalf("exit status 0 for %v", c.args)
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("error is not one line:\n%s", msg)
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "internal error") || strings.Contains(msg, "goroutine") {
				t.Errorf("crashed: %s", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
		})
	}
}
