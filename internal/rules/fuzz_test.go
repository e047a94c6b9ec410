package rules

import (
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		";",
		DefaultRules,
		"mutex_wait > 0.5",
		"mutex_wait >= 20 for 1s",
		"sched_latency_p99 > 5ms",
		"sched_latency_p99 > 1h30m for 1m30s",
		"mutex_wait > 2.5x baseline min 0.5 for 100ms;",
		"mutex_wait > 1e3; lock_waiters > 4x baseline",
		"mutex_wait > -1",
		"mutex_wait > 1e999",
		"mutex_wait > 4x baseline min",
		"mutex_wait > 1;\nlock_waiters >= .5E-3 for 250µs",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := Parse(text, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rules: ") {
				t.Fatalf("Parse(%q) error without prefix: %v", text, err)
			}
			if rs != nil {
				t.Fatalf("Parse(%q) returned rules with an error", text)
			}
			return
		}
		if len(rs) > MaxRules {
			t.Fatalf("Parse(%q) returned %d rules, more than %d", text, len(rs), MaxRules)
		}
		checkRoundTrip(t, rs)

		// The canonical forms joined parse back to the same rules.
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = r.String()
		}
		joined := strings.Join(parts, "; ")
		back, err := Parse(joined, nil)
		if err != nil {
			t.Fatalf("Parse(%q) (canonical form of %q): %v", joined, text, err)
		}
		if !reflect.DeepEqual(back, rs) {
			t.Fatalf("Parse(%q) = %v, want %v", joined, back, rs)
		}

		// With a list of known signals, the result is the same or an
		// unknown signal error.
		known, err := Parse(text, testSignals)
		if err != nil && !strings.Contains(err.Error(), "unknown signal") {
			t.Fatalf("Parse(%q) with signals: %v, without: ok", text, err)
		}
		if err == nil && !reflect.DeepEqual(known, rs) {
			t.Fatalf("Parse(%q) with signals = %v, without = %v", text, known, rs)
		}
	})
}
