//go:build !linux

package testbed

import (
	"context"
	"net"
	"os/exec"
	"time"
)

// Available reports why the testbed cannot run here.
func Available() error { return ErrNotLinux }

// Up needs Linux.
func Up(ctx context.Context, c Config) (*Bed, error) { return nil, ErrNotLinux }

// Load needs Linux.
func Load(prefix string) (*Bed, error) { return nil, ErrNotLinux }

// List needs Linux.
func List() ([]*Bed, error) { return nil, ErrNotLinux }

// Cleanup needs Linux.
func Cleanup(prefix string) error { return ErrNotLinux }

// Down needs Linux.
func (b *Bed) Down() error { return ErrNotLinux }

// Command needs Linux.
func (b *Bed) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("false")
}

// Listen needs Linux.
func (b *Bed) Listen(i int, network, addr string) (net.Listener, error) { return nil, ErrNotLinux }

// Dial needs Linux.
func (b *Bed) Dial(ctx context.Context, i int, network, addr string) (net.Conn, error) {
	return nil, ErrNotLinux
}

// MeasureBandwidth needs Linux.
func (b *Bed) MeasureBandwidth(ctx context.Context, i, j int, d time.Duration) (float64, error) {
	return 0, ErrNotLinux
}

// Leftovers finds nothing: there is no testbed here.
func Leftovers(prefix string) []string { return nil }

// CPUStat needs Linux.
func (b *Bed) CPUStat(i int) (map[string]int64, error) { return nil, ErrNotLinux }

// MemoryStat needs Linux.
func (b *Bed) MemoryStat(i int) (map[string]int64, error) { return nil, ErrNotLinux }

// CommandContext needs Linux.
func (b *Bed) CommandContext(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "false")
}
