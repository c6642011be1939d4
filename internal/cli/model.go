package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/iop-edge/iop/internal/graph"
	"github.com/iop-edge/iop/internal/onnx"
	"github.com/iop-edge/iop/internal/zoo"
)

// loadModel resolves MODEL: an existing file is read as ONNX, otherwise the
// argument is looked up in the zoo.
func loadModel(arg string) (*graph.Graph, error) {
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory, not an ONNX model", arg)
		}
		g, err := onnx.LoadFile(arg)
		if err != nil {
			return nil, err
		}
		return g, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if strings.HasSuffix(arg, ".onnx") || strings.ContainsRune(arg, os.PathSeparator) {
		return nil, fmt.Errorf("model file %s does not exist", arg)
	}
	g, err := zoo.Build(arg)
	if err != nil {
		return nil, fmt.Errorf("%q is neither an ONNX file nor a zoo model: %w", arg, err)
	}
	return g, nil
}

// isZooName reports whether arg names a zoo model rather than a file.
func isZooName(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return false
	}
	_, err := zoo.Lookup(arg)
	return err == nil
}
