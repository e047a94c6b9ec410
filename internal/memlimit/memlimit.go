// Package memlimit says how close the process is to the memory limits it
// lives under: GOMEMLIMIT (the Go runtime's soft limit) and, on Linux, the
// cgroup v2 memory.max of its container. A snapshot's analysis asks before
// it parses a trace window, which needs a few times the window's size.
package memlimit

import (
	"fmt"
	"math"
)

// A Headroom is the memory left under the tightest limit.
type Headroom struct {
	// Limit and Used are the limit and what counts against it, in bytes;
	// Source names the limit ("GOMEMLIMIT", "cgroup memory.max").
	Limit, Used int64
	Source      string
}

// Left is Limit minus Used, at least 0.
func (h Headroom) Left() int64 { return max(h.Limit-h.Used, 0) }

func (h Headroom) String() string {
	return fmt.Sprintf("%d MiB used of %s %d MiB", h.Used>>20, h.Source, h.Limit>>20)
}

// Tightest returns the headroom under the tightest limit, and false when
// the process has none.
func Tightest() (Headroom, bool) {
	best, ok := goLimit()
	if c, cok := cgroupLimit(); cok && (!ok || c.Left() < best.Left()) {
		best, ok = c, true
	}
	return best, ok
}

// goLimit is GOMEMLIMIT against the memory the Go runtime holds.
func goLimit() (Headroom, bool) {
	limit := hostLimit()
	if limit == math.MaxInt64 {
		return Headroom{}, false
	}
	used, ok := inUse()
	if !ok {
		return Headroom{}, false
	}
	return Headroom{Limit: limit, Used: used, Source: "GOMEMLIMIT"}, true
}
