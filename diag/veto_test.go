package diag

import (
	"math"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// mutexProfile builds a mutex profile delta with one sample per stack
// (leaf first) of the given delays.
func mutexProfile(stacks [][]string, delays []int64) *profile.Profile {
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		DurationNanos: 4_200_000_000,
	}
	fns := map[string]*profile.Function{}
	for i, stk := range stacks {
		s := &profile.Sample{Value: []int64{1, delays[i]}}
		for _, name := range stk {
			fn := fns[name]
			if fn == nil {
				fn = &profile.Function{ID: uint64(len(fns) + 1), Name: name}
				fns[name] = fn
				p.Function = append(p.Function, fn)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func TestRuntimeLockVeto(t *testing.T) {
	rt := []string{"runtime.unlock", "runtime.findRunnable", "runtime.schedule"}
	lost := []string{"runtime._LostContendedRuntimeLock"}
	prog := []string{"sync.(*Mutex).Unlock", "main.handle", "net/http.HandlerFunc.ServeHTTP"}
	unknown := math.NaN()
	tests := []struct {
		name   string
		stacks [][]string
		delays []int64
		wait   float64 // counted by runtime/metrics over the span, s
		veto   bool
	}{
		{"runtime only", [][]string{rt}, []int64{5e8}, unknown, true},
		{"runtime only, and it is the counted wait", [][]string{rt}, []int64{5e8}, 0.6, true},
		{"runtime and lost records", [][]string{rt, lost, prog}, []int64{5e8, 2e8, 1e8}, 0.9, true},
		{"mostly the program's", [][]string{rt, prog}, []int64{5e8, 5e8}, 1, false},
		{"the program's only", [][]string{prog}, []int64{5e8}, 0.5, false},
		{"no samples", nil, nil, 2, false},
		// A program lock held all through the breach: its waiters have
		// no sample until it is released, and the runtime's locks are the
		// whole profile with microseconds beside seconds of counted wait.
		{"runtime only, but not the counted wait", [][]string{rt}, []int64{40e3}, 1.3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runtimeLockVeto(mutexProfile(tt.stacks, tt.delays), tt.wait)
			if (got != "") != tt.veto {
				t.Fatalf("veto = %q, want a veto: %v", got, tt.veto)
			}
			if tt.veto && !strings.HasPrefix(got, SkipRuntimeLocks+": ") || tt.veto && !strings.Contains(got, "4.2s") {
				t.Errorf("veto = %q, want the class %q and the profile's span", got, SkipRuntimeLocks)
			}
		})
	}
}

func TestSkipCountedByClass(t *testing.T) {
	var c counters
	c.skip(SkipRuntimeLocks + ": the mutex profile of the last 4s puts 90% ...")
	c.skip("cooldown: 41s left")
	c.skip("something else")
	got := map[string]uint64{}
	for i, r := range SkipReasons() {
		got[r] = c.skipped[i].Load()
	}
	want := map[string]uint64{SkipRuntimeLocks: 1, SkipCooldown: 1, SkipNotRunning: 1, SkipBudget: 0, SkipInFlight: 0}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("skipped[%s] = %d, want %d (all: %v)", r, got[r], n, got)
		}
	}
}
