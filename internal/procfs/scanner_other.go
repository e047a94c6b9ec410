//go:build !linux

package procfs

import (
	"errors"
	"fmt"
)

// Scanner reads the threads of one process from /proc. Only Linux has
// /proc/<pid>/task; elsewhere [NewScanner] fails with an error matching
// [errors.ErrUnsupported].
type Scanner struct{}

var errUnsupported = fmt.Errorf("procfs: per-thread /proc files: %w", errors.ErrUnsupported)

// NewScanner returns an error matching [errors.ErrUnsupported] on this
// system.
func NewScanner(root string) (*Scanner, error) {
	return nil, fmt.Errorf("procfs: reading %s/task: %w", root, errors.ErrUnsupported)
}

// Scan returns an error matching [errors.ErrUnsupported] on this system.
func (s *Scanner) Scan() (*Scan, error) { return nil, errUnsupported }

// Close does nothing on this system.
func (s *Scanner) Close() error { return nil }
