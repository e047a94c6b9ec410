package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestGuard(t *testing.T) {
	host := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(host)

	// No host limit: the guard sets one near what is in use, and puts
	// "none" back.
	debug.SetMemoryLimit(math.MaxInt64)
	used, ok := inUse()
	if !ok {
		t.Skip("no runtime/metrics memory classes")
	}
	release := Guard(64 << 20)
	got := debug.SetMemoryLimit(-1)
	if got == math.MaxInt64 || got < used || got > used+256<<20 {
		t.Errorf("limit under a guard = %d, want about %d + 64 MiB", got, used)
	}
	if h, ok := Tightest(); ok && h.Source == "GOMEMLIMIT" {
		t.Errorf("Tightest sees the guard's own limit: %v", h)
	}
	inner := Guard(1 << 40) // a looser guard inside: the tighter stays
	if now := debug.SetMemoryLimit(-1); now != got {
		t.Errorf("a looser nested guard changed the limit to %d", now)
	}
	inner()
	if now := debug.SetMemoryLimit(-1); now != got {
		t.Errorf("releasing the inner guard changed the limit to %d", now)
	}
	release()
	release() // twice is harmless
	if now := debug.SetMemoryLimit(-1); now != math.MaxInt64 {
		t.Errorf("after the guard the limit is %d, want none again", now)
	}

	// A host limit below the guard's is left alone.
	debug.SetMemoryLimit(used / 2)
	release = Guard(64 << 20)
	if now := debug.SetMemoryLimit(-1); now != used/2 {
		t.Errorf("a guard raised the host's limit to %d", now)
	}
	release()

	// A host that sets its own limit meanwhile keeps it.
	debug.SetMemoryLimit(math.MaxInt64)
	release = Guard(64 << 20)
	debug.SetMemoryLimit(1 << 40)
	release()
	if now := debug.SetMemoryLimit(-1); now != 1<<40 {
		t.Errorf("the guard overwrote the host's new limit: %d", now)
	}
}
