package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var testSignals = []string{"mutex_wait", "lock_waiters", "sched_latency_p99"}

func TestParseGood(t *testing.T) {
	tests := []struct {
		in   string
		want []Rule
	}{
		{"", nil},
		{" ;; ; ", nil},
		{"mutex_wait > 0.5", []Rule{{Signal: "mutex_wait", Threshold: 0.5}}},
		{"mutex_wait>=20", []Rule{{Signal: "mutex_wait", Op: GreaterEqual, Threshold: 20}}},
		{"mutex_wait > 1e3", []Rule{{Signal: "mutex_wait", Threshold: 1000}}},
		{"mutex_wait > 2.5E-3", []Rule{{Signal: "mutex_wait", Threshold: 0.0025}}},
		{"mutex_wait > .5", []Rule{{Signal: "mutex_wait", Threshold: 0.5}}},
		{"mutex_wait > 0", []Rule{{Signal: "mutex_wait"}}},
		{"sched_latency_p99 > 5ms", []Rule{{Signal: "sched_latency_p99", Threshold: 0.005}}},
		{"sched_latency_p99 > 1.5s", []Rule{{Signal: "sched_latency_p99", Threshold: 1.5}}},
		{"sched_latency_p99 > 2m", []Rule{{Signal: "sched_latency_p99", Threshold: 120}}},
		{"sched_latency_p99 > 1h30m", []Rule{{Signal: "sched_latency_p99", Threshold: 5400}}},
		{"sched_latency_p99 > 250µs", []Rule{{Signal: "sched_latency_p99", Threshold: 0.00025}}},
		{"mutex_wait > 1 for 2s", []Rule{{Signal: "mutex_wait", Threshold: 1, For: 2 * time.Second}}},
		{"mutex_wait > 1 for 0", []Rule{{Signal: "mutex_wait", Threshold: 1}}},
		{"mutex_wait > 1 for 1m30s", []Rule{{Signal: "mutex_wait", Threshold: 1, For: 90 * time.Second}}},
		{"mutex_wait > 4x baseline", []Rule{{Signal: "mutex_wait", Factor: 4}}},
		{"mutex_wait >= 2.5x baseline min 0.5", []Rule{{Signal: "mutex_wait", Op: GreaterEqual, Factor: 2.5, Min: 0.5}}},
		{"mutex_wait > 4x baseline for 100ms", []Rule{{Signal: "mutex_wait", Factor: 4, For: 100 * time.Millisecond}}},
		{"sched_latency_p99 > 3x baseline min 10ms for 1s",
			[]Rule{{Signal: "sched_latency_p99", Factor: 3, Min: 0.01, For: time.Second}}},
		{"\tmutex_wait\n>\r\n4x   baseline  min 1\tfor 100ms ;",
			[]Rule{{Signal: "mutex_wait", Factor: 4, Min: 1, For: 100 * time.Millisecond}}},
		{DefaultRules, []Rule{
			{Signal: "mutex_wait", Factor: 4, Min: 1, For: 100 * time.Millisecond},
			{Signal: "lock_waiters", Factor: 4, Min: 16, For: 2 * time.Second},
		}},
		{";mutex_wait > 1;; lock_waiters > 10 for 1s;",
			[]Rule{{Signal: "mutex_wait", Threshold: 1}, {Signal: "lock_waiters", Threshold: 10, For: time.Second}}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, testSignals)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"mutex_wait > abc",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "abc"`},
		{"mutex_wait > 1; lock_waiters > abc",
			`rules: rule 2 at column 32: expected a number, duration or factor (like 4x) after ">", found "abc"`},
		{"mutex_wait > 1;; lock_waiters >",
			`rules: rule 2 at column 32: expected a number, duration or factor (like 4x) after ">", found end of input`},
		{"mutex_wiat > 1",
			`rules: rule 1 at column 1: unknown signal "mutex_wiat" (known signals: mutex_wait, lock_waiters, sched_latency_p99)`},
		{"> 1", `rules: rule 1 at column 1: expected a signal name, found ">"`},
		{"1 > 1", `rules: rule 1 at column 1: expected a signal name, found "1"`},
		{"mutex-wait > 1", `rules: rule 1 at column 1: expected a signal name, found "mutex-wait"`},
		{"mutex_wait 1", `rules: rule 1 at column 12: expected ">" or ">=" after "mutex_wait", found "1"`},
		{"mutex_wait < 1", `rules: rule 1 at column 12: expected ">" or ">=" after "mutex_wait", found "<"`},
		{"mutex_wait => 1", `rules: rule 1 at column 12: expected ">" or ">=" after "mutex_wait", found "=>"`},
		{"mutex_wait", `rules: rule 1 at column 11: expected ">" or ">=" after "mutex_wait", found end of input`},
		{"mutex_wait > -1",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "-1": must not be negative`},
		{"mutex_wait > 1e999",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "1e999": out of range`},
		{"mutex_wait > 9999999999h",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "9999999999h": out of range`},
		{"mutex_wait > 1.2.3",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "1.2.3"`},
		{"mutex_wait > NaN",
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "NaN"`},
		{"mutex_wait > 5 ms",
			`rules: rule 1 at column 16: expected "for", ";" or end of input after "5", found "ms"`},
		{"mutex_wait > 1 min 2",
			`rules: rule 1 at column 16: expected "for", ";" or end of input after "1", found "min"`},
		{"mutex_wait > 4x",
			`rules: rule 1 at column 16: expected "baseline" after "4x", found end of input`},
		{"mutex_wait > 4x base",
			`rules: rule 1 at column 17: expected "baseline" after "4x", found "base"`},
		{"mutex_wait > 0.5x baseline",
			`rules: rule 1 at column 14: the factor "0.5x" must be at least 1`},
		{"mutex_wait > 4x baseline mex 3",
			`rules: rule 1 at column 26: expected "min", "max", "for", ";" or end of input after "baseline", found "mex"`},
		{"mutex_wait > 4x baseline min 2 max 1",
			`rules: rule 1 at column 36: the ceiling "1" must be above 0 and at least the floor (min 2)`},
		{"mutex_wait > 4x baseline max 3 min 1",
			`rules: rule 1 at column 32: expected "for", ";" or end of input after "3", found "min"`},
		{"mutex_wait > 4x baseline min",
			`rules: rule 1 at column 29: expected a number or duration after "min", found end of input`},
		{"mutex_wait > 4x baseline min 2x",
			`rules: rule 1 at column 30: expected a number or duration after "min", found "2x"`},
		{"mutex_wait > 4x baseline min 1 min 2",
			`rules: rule 1 at column 32: expected "max", "for", ";" or end of input after "1", found "min"`},
		{"mutex_wait > 1 for",
			`rules: rule 1 at column 19: expected a duration (like 2s) after "for", found end of input`},
		{"mutex_wait > 1 for 2",
			`rules: rule 1 at column 20: expected a duration (like 2s) after "for", found "2"`},
		{"mutex_wait > 1 for -2s",
			`rules: rule 1 at column 20: expected a duration (like 2s) after "for", found "-2s": must not be negative`},
		{"mutex_wait > 1 for 2s for 3s",
			`rules: rule 1 at column 23: expected ";" or end of input after "2s", found "for"`},
		{"mutex_wait > 1 lock_waiters > 2",
			`rules: rule 1 at column 16: expected "for", ";" or end of input after "1", found "lock_waiters"`},
		{"mutex_wait > 1;\nlock_waiters > x",
			`rules: rule 2 at line 2, column 16: expected a number, duration or factor (like 4x) after ">", found "x"`},
		{strings.Repeat("s", 40) + " > 1",
			`rules: rule 1 at column 1: unknown signal "ssssssssssssssssssssssssssssssss"... (known signals: mutex_wait, lock_waiters, sched_latency_p99)`},
		{"mutex_wait > " + strings.Repeat("a", 40),
			`rules: rule 1 at column 14: expected a number, duration or factor (like 4x) after ">", found "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"...`},
		{strings.Repeat("mutex_wait > 1;", MaxRules) + " lock_waiters > 1",
			`rules: rule 33 at column 482: too many rules (the limit is 32)`},
		{strings.Repeat(" ", MaxInput+1), `rules: text is 4097 bytes long, the limit is 4096`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, testSignals)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", tt.in, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error:\n got %s\nwant %s", tt.in, err, tt.want)
		}
		if got != nil {
			t.Errorf("Parse(%q) returned rules %v with an error", tt.in, got)
		}
	}
}

func TestParseAnySignal(t *testing.T) {
	rs, err := Parse("whatever_signal > 1", nil)
	if err != nil || len(rs) != 1 || rs[0].Signal != "whatever_signal" {
		t.Fatalf("Parse with nil signals = %v, %v; want one rule on whatever_signal", rs, err)
	}
}

func TestParseLimits(t *testing.T) {
	text := strings.Repeat("mutex_wait > 1;", MaxRules)
	if rs, err := Parse(text, testSignals); err != nil || len(rs) != MaxRules {
		t.Errorf("Parse(%d rules) = %d rules, %v; want %d rules", MaxRules, len(rs), err, MaxRules)
	}
	text = "mutex_wait > 1" + strings.Repeat(" ", MaxInput-len("mutex_wait > 1"))
	if _, err := Parse(text, testSignals); err != nil {
		t.Errorf("Parse of exactly %d bytes: %v", MaxInput, err)
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"mutex_wait>0.5", "mutex_wait > 0.5"},
		{"mutex_wait >= 20 for 0s", "mutex_wait >= 20"},
		{"sched_latency_p99 > 5ms", "sched_latency_p99 > 0.005"},
		{"sched_latency_p99 > 1e6", "sched_latency_p99 > 1000000"},
		{"sched_latency_p99 > 1e15", "sched_latency_p99 > 1e+15"},
		{"sched_latency_p99 > 1e-7", "sched_latency_p99 > 1e-07"},
		{"mutex_wait > 1 for 90s", "mutex_wait > 1 for 1m30s"},
		{"mutex_wait > 4x baseline", "mutex_wait > 4x baseline"},
		{"mutex_wait > 2.50x baseline min 0 for 100ms", "mutex_wait > 2.5x baseline for 100ms"},
		{"lock_waiters > 4x   baseline min 16 for 2000ms", "lock_waiters > 4x baseline min 16 for 2s"},
	}
	for _, tt := range tests {
		rs, err := Parse(tt.in, testSignals)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if got := rs[0].String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// checkRoundTrip parses the canonical form of every rule in rs and
// reports a difference.
func checkRoundTrip(t *testing.T, rs []Rule) {
	t.Helper()
	for _, r := range rs {
		s := r.String()
		back, err := Parse(s, nil)
		if err != nil {
			t.Fatalf("Parse(%q), the String of %+v: %v", s, r, err)
		}
		if len(back) != 1 || back[0] != r {
			t.Fatalf("Parse(%q) = %+v, want %+v", s, back, r)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{
		DefaultRules,
		"mutex_wait > 0.30000000000000004; lock_waiters >= 123456789.123 for 1h2m3.5s",
		"sched_latency_p99 > 1ns; sched_latency_p99 > 2562047h47m16.854775807s",
		"mutex_wait > 1.7976931348623157e308",
		"mutex_wait >= 1e15x baseline min 4.9e-324 for 1ns",
		"mutex_wait > 999999999999999 ; mutex_wait > 1.5x baseline min 1s",
	} {
		rs, err := Parse(in, nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		checkRoundTrip(t, rs)
	}
}

// DefaultRules are lockdiag's default rules (diag.DefaultRules), which
// the tests replay.
const DefaultRules = "mutex_wait > 4x baseline min 1 for 100ms; lock_waiters > 4x baseline min 16 for 2s"
