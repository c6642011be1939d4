// Package onnxpb holds the Go types generated from ONNX's onnx.proto
// (ONNX 1.12, IR version 8; later ONNX versions only add fields).
//
// Regenerate with:
//
//	go generate ./internal/onnx/onnxpb
//
// which needs protoc (Debian: protobuf-compiler) and
// protoc-gen-go v1.36.12 (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12).
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
