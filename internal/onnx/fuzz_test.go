package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the model loader: it must return a
// graph or an error, never panic or hang.
func FuzzDecode(f *testing.F) {
	models, _ := filepath.Glob("../../testdata/onnx-conformance/*/*/model.onnx")
	for i, m := range models {
		if i%8 != 0 {
			continue
		}
		if b, err := os.ReadFile(m); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("not a model"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Decode(data, "")
		if err == nil && g == nil {
			t.Fatal("nil graph without error")
		}
	})
}

func TestDecodeRejectsGarbage(t *testing.T) {
	models, _ := filepath.Glob("../../testdata/onnx-conformance/node/test_relu/model.onnx")
	if len(models) != 1 {
		t.Fatal("test_relu case missing")
	}
	good, err := os.ReadFile(models[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good, ""); err != nil {
		t.Fatalf("valid model: %v", err)
	}
	for name, data := range map[string][]byte{
		"empty":     {},
		"text":      []byte("hello, this is not a protobuf"),
		"truncated": good[:len(good)/2],
		"random":    {0x12, 0x34, 0xff, 0xfe, 0x00, 0x01, 0x99, 0x42, 0x08, 0x96, 0x01},
	} {
		if _, err := Decode(data, ""); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
