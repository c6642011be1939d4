//go:build !linux

package worker

// SteadySysmon does nothing outside Linux.
func SteadySysmon() error { return nil }
