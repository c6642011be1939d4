//go:build !amd64 || purego

package kernels

// archKernelSets: no assembly kernels on this architecture or build.
func archKernelSets() []*kernelSet { return nil }
