//go:build !linux

package procfs

import (
	"errors"
	"testing"
)

func TestUnsupported(t *testing.T) {
	s, err := NewScanner("/proc/self")
	if !errors.Is(err, errors.ErrUnsupported) || s != nil {
		t.Fatalf("NewScanner = %v, %v; want nil and an error matching errors.ErrUnsupported", s, err)
	}
	var z Scanner
	if _, err := z.Scan(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Scan: %v", err)
	}
	if err := z.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
