package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// value returns a get function that gives v for every signal.
func value(v float64) func(string) (float64, bool) {
	return func(string) (float64, bool) { return v, true }
}

// sample is an observation at an offset from t0.
type sample struct {
	at time.Duration
	v  float64
}

// observeAll feeds samples to e and returns the events as short strings
// with times relative to t0.
func observeAll(e *Engine, samples []sample) []string {
	var got []string
	for _, s := range samples {
		for _, ev := range e.Observe(t0.Add(s.at), value(s.v)) {
			got = append(got, timed{ev.Time.Sub(t0), ev}.short())
		}
	}
	return got
}

// TestObserveTimestamps checks timing at explicit, irregular timestamps.
func TestObserveTimestamps(t *testing.T) {
	noWarmup := Config{Warmup: -1}
	tests := []struct {
		name    string
		rules   string
		samples []sample
		want    []string
	}{{
		name:    "a tick that comes early still counts: 199.99ms of 200ms",
		rules:   "x > 1 for 200ms",
		samples: []sample{{0, 5}, {99990 * time.Microsecond, 5}, {199990 * time.Microsecond, 5}},
		want:    []string{"199.99ms #0 breach snapshot"},
	}, {
		name:    "the tolerance is a quarter of the gap: 150ms+37.5ms < 200ms",
		rules:   "x > 1 for 200ms",
		samples: []sample{{0, 5}, {150 * ms, 5}, {200 * ms, 5}},
		want:    []string{"200ms #0 breach snapshot"},
	}, {
		name:    "the tolerance is at most a quarter of the for duration",
		rules:   "x > 1 for 20ms",
		samples: []sample{{0, 0}, {100 * ms, 5}, {200 * ms, 5}},
		want:    []string{"200ms #0 breach snapshot"},
	}, {
		name:    "for 0 fires at once",
		rules:   "x > 1 for 0s",
		samples: []sample{{0, 0}, {100 * ms, 5}},
		want:    []string{"100ms #0 breach snapshot"},
	}, {
		name:    "a value below restarts the for duration",
		rules:   "x > 1 for 300ms",
		samples: []sample{{0, 5}, {100 * ms, 5}, {200 * ms, 5}, {250 * ms, 1}, {300 * ms, 5}, {500 * ms, 5}, {600 * ms, 5}},
		want:    []string{"600ms #0 breach snapshot"},
	}, {
		name:    "> clears at the clear level, >= only below it",
		rules:   "x > 10; x >= 10",
		samples: []sample{{0, 11}, {1 * s, 8}, {3 * s, 8}, {4 * s, 7.9}, {6 * s, 7.9}},
		want: []string{
			"0s #0 breach snapshot", "0s #1 breach snapshot",
			"3s #0 recovered", "6s #1 recovered",
		},
	}, {
		name:    "a threshold of 0 clears at 0",
		rules:   "x > 0",
		samples: []sample{{0, 0}, {1 * s, 1}, {2 * s, 0}, {4 * s, 0}},
		want:    []string{"1s #0 breach snapshot", "4s #0 recovered"},
	}, {
		name:  "cooldown left is rounded up",
		rules: "x > 1",
		samples: []sample{
			{0, 5}, {100 * ms, 0}, {2100 * ms, 0}, // episode 1
			{2600 * ms, 5}, {2700 * ms, 0}, {4700 * ms, 0}, // 57.4s left
			{59800 * ms, 5}, {59900 * ms, 0}, {61900 * ms, 0}, // 200ms left
		},
		want: []string{
			"0s #0 breach snapshot", "2.1s #0 recovered",
			"2.6s #0 breach skip: cooldown: 58s left", "4.7s #0 recovered",
			"59.8s #0 breach skip: cooldown: 200ms left", "1m1.9s #0 recovered",
		},
	}, {
		name:  "a time before the previous one is ignored",
		rules: "x > 1 for 3s",
		samples: []sample{
			{10 * s, 0}, {5 * s, 5}, {11 * s, 5},
		},
		want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(mustParse(t, tt.rules), noWarmup)
			got := observeAll(e, tt.samples)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestBaselineNotLearnedWhilePending checks that values above the
// threshold do not raise the baseline even when they never breach.
func TestBaselineNotLearnedWhilePending(t *testing.T) {
	e := NewEngine(mustParse(t, "x > 2x baseline min 1 for 10s"), Config{Warmup: -1})
	var samples []sample
	for at := time.Duration(0); at < 20*s; at += 100 * ms {
		samples = append(samples, sample{at, 1})
	}
	for i := 0; i < 5; i++ { // 9s above, 1s below, five times
		base := 20*s + time.Duration(i)*10*s
		for at := time.Duration(0); at < 10*s; at += 100 * ms {
			v := 3.0
			if at >= 9*s {
				v = 1
			}
			samples = append(samples, sample{base + at, v})
		}
	}
	if got := observeAll(e, samples); got != nil {
		t.Fatalf("events = %q, want none", got)
	}
	if b := e.States()[0].Baseline; math.Abs(b-1) > 1e-9 {
		t.Errorf("baseline = %v, want 1: values above the threshold were learned", b)
	}
}

func TestStates(t *testing.T) {
	rs := mustParse(t, "a > 10 for 1s; b > 4x baseline min 2")
	e := NewEngine(rs, Config{})
	st := e.States()
	want := []State{
		{Rule: 0, Text: "a > 10 for 1s", Phase: WarmingUp, Threshold: 10},
		{Rule: 1, Text: "b > 4x baseline min 2", Phase: WarmingUp, Threshold: 2},
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("initial States = %+v\nwant %+v", st, want)
	}

	get := func(signal string) (float64, bool) {
		if signal == "a" {
			return 1, true
		}
		return 0.25, true
	}
	for at := time.Duration(0); at <= 20*s; at += 100 * ms {
		if evs := e.Observe(t0.Add(at), get); evs != nil {
			t.Fatalf("events at %v: %+v", at, evs)
		}
	}
	e.Observe(t0.Add(20100*ms), value(11)) // a pending, b breached
	evs := e.Observe(t0.Add(21100*ms), value(11))
	if len(evs) != 1 || evs[0].Rule != 0 {
		t.Fatalf("events = %+v, want a's breach", evs)
	}
	st = e.States()
	if st[0].Phase != Breached || st[1].Phase != Breached {
		t.Errorf("phases = %s, %s; want breached, breached", st[0].Phase, st[1].Phase)
	}
	if !st[0].Since.Equal(t0.Add(21100*ms)) || !st[0].LastBreach.Equal(t0.Add(21100*ms)) {
		t.Errorf("a: since %v, last breach %v; want both at 21.1s", st[0].Since.Sub(t0), st[0].LastBreach.Sub(t0))
	}
	if !st[0].CooldownUntil.Equal(t0.Add(81100 * ms)) {
		t.Errorf("a: cooldown until %v, want 81.1s", st[0].CooldownUntil.Sub(t0))
	}
	if st[0].Value != 11 || st[0].Peak != 11 || st[0].Episodes != 1 || st[0].Baseline != 0 {
		t.Errorf("a: %+v", st[0])
	}
	if math.Abs(st[1].Baseline-0.25) > 1e-9 || st[1].Threshold != 2 {
		t.Errorf("b: baseline %v threshold %v, want 0.25 and the floor 2", st[1].Baseline, st[1].Threshold)
	}

	data, err := json.Marshal(st[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"state":"breached"`, `"threshold":10`, `"episodes":1`, `"cooldown_until":`, `"last_snapshot":`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
	data, err = json.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"kind":"breach"`, `"rule":0`, `"text":"a \u003e 10 for 1s"`, `"snapshot":true`, `"value":11`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
	if strings.Contains(string(data), "skip_reason") || strings.Contains(string(data), "duration_ns") {
		t.Errorf("JSON %s has empty optional fields", data)
	}
}

// TestHugeValues checks that values near the float64 limit and rules
// made by hand with NaN keep States encodable as JSON.
func TestHugeValues(t *testing.T) {
	rs := append(mustParse(t, "x > 4x baseline"), Rule{Signal: "x", Threshold: math.NaN()})
	e := NewEngine(rs, Config{Warmup: -1})
	for at := time.Duration(0); at < 20*s; at += 100 * ms {
		e.Observe(t0.Add(at), value(math.MaxFloat64))
	}
	if _, err := json.Marshal(e.States()); err != nil {
		t.Fatal(err)
	}
}

func TestObserveNothing(t *testing.T) {
	if evs := NewEngine(nil, Config{}).Observe(t0, value(1)); evs != nil {
		t.Errorf("Observe without rules = %v, want nil", evs)
	}
	e := NewEngine(mustParse(t, "x > 0"), Config{Warmup: -1})
	if evs := e.Observe(t0, nil); evs != nil {
		t.Errorf("Observe with a nil get = %v, want nil", evs)
	}
	if evs := e.Observe(t0, value(1)); len(evs) != 1 {
		t.Errorf("Observe = %v, want one breach", evs)
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{
		Warmup: DefaultWarmup, BaselineWindow: DefaultBaselineWindow, ClearRatio: DefaultClearRatio,
		Clear: DefaultClear, Cooldown: DefaultCooldown, Budget: DefaultBudget, BudgetWindow: DefaultBudgetWindow,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	got = Config{Warmup: -1, BaselineWindow: -1, ClearRatio: 1.5, Clear: -1, Cooldown: -1, Budget: -1, BudgetWindow: -1}.withDefaults()
	want = Config{BaselineWindow: DefaultBaselineWindow, ClearRatio: DefaultClearRatio, BudgetWindow: DefaultBudgetWindow}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("negative = %+v, want %+v", got, want)
	}
	if got := (Config{ClearRatio: math.NaN()}).withDefaults().ClearRatio; got != DefaultClearRatio {
		t.Errorf("ClearRatio NaN became %v", got)
	}
}

// TestObserveAllocs checks that Observe does not allocate when nothing
// happens.
func TestObserveAllocs(t *testing.T) {
	e := NewEngine(mustParse(t, DefaultRules+"; sched_latency_p99 > 5ms for 1s"), Config{})
	at := t0
	get := func(signal string) (float64, bool) {
		if signal == "sched_latency_p99" {
			return 0.0002, true
		}
		return 0.05, true
	}
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(100 * ms)
		if evs := e.Observe(at, get); evs != nil {
			t.Fatalf("events: %v", evs)
		}
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %v times per call, want 0", allocs)
	}
}

// BenchmarkObserve measures one sample of the default rules plus a
// threshold rule in steady state.
func BenchmarkObserve(b *testing.B) {
	rs, err := Parse(DefaultRules+"; sched_latency_p99 > 5ms for 1s", nil)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(rs, Config{})
	vals := map[string]float64{"mutex_wait": 0.05, "lock_waiters": 2, "sched_latency_p99": 0.0002}
	get := func(signal string) (float64, bool) {
		v, ok := vals[signal]
		return v, ok
	}
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(100 * ms)
		if evs := e.Observe(at, get); evs != nil {
			b.Fatalf("events: %v", evs)
		}
	}
}

// TestVeto checks that a vetoed breach takes no snapshot, says why, and
// leaves the cooldown and the budget to the next breach; the veto is
// asked only when they allow a snapshot.
func TestVeto(t *testing.T) {
	var asked []string
	veto := true
	cfg := Config{Warmup: -1}
	cfg.Budget = 1
	cfg.Veto = func(r Rule, at time.Time) string {
		asked = append(asked, fmt.Sprintf("%s@%v", r.Signal, at.Sub(t0)))
		if veto {
			return "runtime_locks: not the program's"
		}
		return ""
	}
	e := NewEngine(mustParse(t, "x > 1; y > 1"), cfg)
	got := observeAll(e, []sample{
		{0, 5}, {100 * ms, 0}, {2100 * ms, 0}, // vetoed
	})
	veto = false
	got = append(got, observeAll(e, []sample{
		{3 * s, 5}, {3100 * ms, 0}, {5100 * ms, 0}, // takes the budget's one snapshot
		{6 * s, 5}, // the cooldown: not asked
	})...)
	want := []string{
		"0s #0 breach skip: runtime_locks: not the program's", "0s #1 breach skip: runtime_locks: not the program's",
		"2.1s #0 recovered", "2.1s #1 recovered",
		"3s #0 breach snapshot", "3s #1 breach skip: budget: 1 snapshots per 1h0m0s used, next in 1h0m0s",
		"5.1s #0 recovered", "5.1s #1 recovered",
		"6s #0 breach skip: cooldown: 57s left", "6s #1 breach skip: budget: 1 snapshots per 1h0m0s used, next in 59m57s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	if want := []string{"x@0s", "y@0s", "x@3s"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("veto asked %q, want %q", asked, want)
	}
}
