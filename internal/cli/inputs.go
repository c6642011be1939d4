package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/preprocess"
	"github.com/iop-edge/iop/internal/tensor"
)

// readInputs reads one tensor per --input flag: TensorProto .pb files as
// they are, JPEG/PNG images preprocessed to the model's input size. The Nth
// file feeds the Nth graph input.
func readInputs(g *graph.Graph, files []string) ([]*tensor.Tensor, error) {
	if len(files) != len(g.Inputs) {
		names := make([]string, len(g.Inputs))
		for i, in := range g.Inputs {
			names[i] = fmt.Sprintf("%s %v", in.Name, in.Shape)
		}
		return nil, fmt.Errorf("model takes %d input(s) (%v), %d --input given", len(g.Inputs), names, len(files))
	}
	out := make([]*tensor.Tensor, len(files))
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		in := g.Inputs[i]
		if preprocess.IsImage(data) || isImageExt(f) {
			if len(in.Shape) != 4 || in.Shape[1] != 3 || in.Shape[2] <= 0 || in.Shape[3] <= 0 {
				return nil, fmt.Errorf("%s: an image can feed only a [N,3,H,W] input; input %q is %v", f, in.Name, in.Shape)
			}
			t, err := preprocess.Decode(data, in.Shape[2], in.Shape[3])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out[i] = t
			continue
		}
		t, _, err := onnx.ReadTensorFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w (inputs are ONNX TensorProto .pb files or JPEG/PNG images)", err)
		}
		out[i] = t
	}
	return out, nil
}

func isImageExt(f string) bool {
	switch filepath.Ext(f) {
	case ".jpg", ".jpeg", ".JPG", ".JPEG", ".png", ".PNG":
		return true
	}
	return false
}

// writeOutputs writes output_0.pb, output_1.pb, … into dir.
func writeOutputs(dir string, g *graph.Graph, outs []*tensor.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, t := range outs {
		name := ""
		if i < len(g.Outputs) {
			name = g.Outputs[i].Name
		}
		if err := onnx.WriteTensorFile(filepath.Join(dir, fmt.Sprintf("output_%d.pb", i)), name, t); err != nil {
			return err
		}
	}
	return nil
}
