package profdelta

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func hasFunc(p *profile.Profile, fn string) bool {
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && strings.HasSuffix(l.Function.Name, fn) {
					return true
				}
			}
		}
	}
	return false
}

// stuckContention makes n goroutines wait for a held lock, then releases
// them: n contention events whose Unlock is in contention.Stuck's release.
func stuckContention(t *testing.T, n int) {
	_, release := contention.Stuck(n)
	testkit.WaitFor(t, 5*time.Second, "parked waiters", func() bool {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "contention.StuckWaiter") >= n
	})
	release()
}

func TestDelta(t *testing.T) {
	prev := runtime.SetMutexProfileFraction(1)
	t.Cleanup(func() { runtime.SetMutexProfileFraction(prev) })

	stuckContention(t, 4) // before the window
	before, err := Read("mutex")
	if err != nil {
		t.Fatal(err)
	}
	if before.Data == nil || before.Time.IsZero() {
		t.Fatalf("capture = %+v", before)
	}
	after, err := Read("mutex")
	if err != nil {
		t.Fatal(err)
	}
	// The contention before the window is not in the delta (the runtime
	// may record some of its own locks meanwhile).
	d, err := Delta(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if hasFunc(d, "contention.Stuck.func2") {
		t.Errorf("contention from before the window is in the delta: %v", d)
	}
	if d.DurationNanos != after.Time.Sub(before.Time).Nanoseconds() || d.TimeNanos != before.Time.UnixNano() {
		t.Errorf("window = %d+%d", d.TimeNanos, d.DurationNanos)
	}

	stuckContention(t, 4) // inside the window
	later, err := Read("mutex")
	if err != nil {
		t.Fatal(err)
	}
	d, err = Delta(after, later)
	if err != nil {
		t.Fatal(err)
	}
	if !hasFunc(d, "contention.Stuck.func2") {
		t.Errorf("delta lacks the release: %v", d)
	}
	if got := Total(d, "contentions"); got < 1 {
		t.Errorf("contentions in the window = %d", got)
	}
	// The whole history: at least both rounds.
	all, err := Delta(Capture{}, later)
	if err != nil {
		t.Fatal(err)
	}
	if Total(all, "contentions") <= Total(d, "contentions") {
		t.Errorf("cumulative %d <= window %d", Total(all, "contentions"), Total(d, "contentions"))
	}
	if Total(d, "nope") != 0 || Total(nil, "delay") != 0 {
		t.Error("Total of a missing type or profile is not 0")
	}
}

func TestDeltaErrors(t *testing.T) {
	if _, err := Delta(Capture{}, Capture{}); err == nil {
		t.Error("Delta of nothing succeeded")
	}
	if _, err := Delta(Capture{}, Capture{Data: []byte("junk")}); err == nil {
		t.Error("Delta of junk succeeded")
	}
	if _, err := Read("nope"); err == nil {
		t.Error("Read of an unknown profile succeeded")
	}
}
