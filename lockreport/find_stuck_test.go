package lockreport

import (
	"strings"
	"testing"
	"time"
)

// TestCheckStuck: a site the monitor took for stuck is refuted by a wait
// the trace saw served there within the time the verdict covers, and
// kept when the last served wait is older than that.
func TestCheckStuck(t *testing.T) {
	report := func(lastServed time.Duration) *Report {
		return &Report{
			Window: &Window{Duration: 10 * time.Second},
			Sites: []Site{{Kind: "RWMutex.Lock", Func: "cache.(*Cache).Add", File: "cache.go", Line: 81,
				Waits: 40, WaitingAtEnd: 2, LastServed: lastServed}},
			Parked: []ParkedSite{{Kind: "RWMutex.Lock", Func: "cache.(*Cache).Add", File: "cache.go", Line: 81,
				Waiters: 2, NoProgress: 4 * time.Second}},
		}
	}
	busy := report(9990 * time.Millisecond)
	checkStuck(busy)
	if busy.Parked[0].NoProgress != 0 {
		t.Errorf("a site whose waiter was served 10ms before the end kept NoProgress %v", busy.Parked[0].NoProgress)
	}
	if len(busy.Caveats) != 1 || !strings.Contains(busy.Caveats[0], "busy lock, not a stuck one") || !strings.Contains(busy.Caveats[0], "38 waits served") {
		t.Errorf("caveats = %q, want the refutation with the served waits", busy.Caveats)
	}
	if cs := stuckCandidates(busy); len(cs) != 0 {
		t.Errorf("a refuted site is still a stuck candidate: %+v", cs)
	}

	stuck := report(5 * time.Second)
	checkStuck(stuck)
	if stuck.Parked[0].NoProgress != 4*time.Second || len(stuck.Caveats) != 0 {
		t.Errorf("a site last served 5s before the end, stuck for 4s: NoProgress %v, caveats %q", stuck.Parked[0].NoProgress, stuck.Caveats)
	}
	if cs := stuckCandidates(stuck); len(cs) != 1 {
		t.Errorf("stuck candidates = %d, want 1", len(cs))
	}
}
