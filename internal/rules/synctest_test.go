package rules

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A script gives a signal's value elapsed after the start of a scenario;
// false means that the signal has no value then.
type script func(signal string, elapsed time.Duration) (float64, bool)

// timed is an event and when it happened, relative to the start.
type timed struct {
	at time.Duration
	ev Event
}

// short describes an event for comparisons: "1.3s #0 breach snapshot",
// "31s #0 breach skip: cooldown: 30s left", "16s #1 recovered".
func (te timed) short() string {
	s := fmt.Sprintf("%v #%d %s", te.at, te.ev.Rule, te.ev.Kind)
	switch {
	case te.ev.Kind == Recovered:
	case te.ev.Snapshot:
		s += " snapshot"
	default:
		s += " skip: " + te.ev.SkipReason
	}
	return s
}

// feed runs a goroutine that, like the sampling loop, calls Observe with
// time.Now() at every tick of a time.Ticker with the given interval, for
// the given duration, and returns the events. Call it inside a synctest
// bubble: the clock is fake, so the times are exact.
func feed(e *Engine, interval, dur time.Duration, sc script) []timed {
	start := time.Now()
	events := make(chan timed)
	go func() {
		defer close(events)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for time.Since(start) < dur {
			<-tk.C
			now := time.Now()
			el := now.Sub(start)
			get := func(signal string) (float64, bool) { return sc(signal, el) }
			for _, ev := range e.Observe(now, get) {
				events <- timed{el, ev}
			}
		}
	}()
	var got []timed
	for te := range events {
		got = append(got, te)
	}
	return got
}

func shorts(tes []timed) []string {
	var s []string
	for _, te := range tes {
		s = append(s, te.short())
	}
	return s
}

// between returns a script with value in in [from, to) and out elsewhere.
func between(from, to time.Duration, in, out float64) script {
	return func(_ string, el time.Duration) (float64, bool) {
		if from <= el && el < to {
			return in, true
		}
		return out, true
	}
}

// steps returns a script that is a step function: level i holds from
// at[i] until at[i+1]; a NaN level means no value.
func steps(at []time.Duration, levels []float64) script {
	return func(_ string, el time.Duration) (float64, bool) {
		v := math.NaN()
		for i := range at {
			if el >= at[i] {
				v = levels[i]
			}
		}
		return v, !math.IsNaN(v)
	}
}

const (
	ms = time.Millisecond
	s  = time.Second
)

func mustParse(t *testing.T, text string) []Rule {
	t.Helper()
	rs, err := Parse(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestScenarios runs scripted signals through an engine with a ticker
// under a fake clock and checks the events.
func TestScenarios(t *testing.T) {
	noWarmup := Config{Warmup: -1}
	tests := []struct {
		name     string
		rules    string
		cfg      Config
		interval time.Duration
		dur      time.Duration
		sc       script
		want     []string
	}{{
		name:  "for: breach after the for duration, not before",
		rules: "x > 1 for 300ms",
		cfg:   noWarmup,
		dur:   6 * s,
		sc:    between(1*s, 3*s, 5, 0),
		want:  []string{"1.3s #0 breach snapshot", "5s #0 recovered"},
	}, {
		name:  "for: a blip shorter than for does not fire",
		rules: "x > 1 for 300ms",
		cfg:   noWarmup,
		dur:   6 * s,
		sc:    between(1*s, 1250*ms, 5, 0), // samples at 1.0, 1.1, 1.2s
		want:  nil,
	}, {
		name:  "no for: the first value above fires",
		rules: "x > 1",
		cfg:   noWarmup,
		dur:   6 * s,
		sc:    between(1*s, 1100*ms, 5, 0),
		want:  []string{"1s #0 breach snapshot", "3.1s #0 recovered"},
	}, {
		name:  ">= fires at the threshold, > does not",
		rules: "x >= 5; x > 5",
		cfg:   noWarmup,
		dur:   4 * s,
		sc:    between(1*s, 1100*ms, 5, 0),
		want:  []string{"1s #0 breach snapshot", "3.1s #0 recovered"},
	}, {
		name:  "warm-up suppresses breaches until it has passed",
		rules: "x > 2x baseline min 1",
		dur:   15 * s,
		// The first value comes at 0.1s, so the default warm-up of 10s
		// ends at 10.1s; the value is high from 5s to 11s.
		sc:   between(5*s, 11*s, 5, 0),
		want: []string{"10.1s #0 breach snapshot", "13s #0 recovered"},
	}, {
		name:  "warm-up counts from the signal's first value",
		rules: "x > 2x baseline min 1",
		cfg:   Config{Warmup: 2 * s, BaselineWindow: 6 * s},
		dur:   10 * s,
		sc:    steps([]time.Duration{3 * s, 4 * s}, []float64{0, 5}),
		want:  []string{"5s #0 breach snapshot"},
	}, {
		name:  "hysteresis: no recovery between 0.8x and 1x, recovery after Clear below",
		rules: "x > 10",
		cfg:   noWarmup,
		dur:   20 * s,
		sc: steps(
			[]time.Duration{0, 1 * s, 2 * s, 12 * s, 13500 * ms, 14 * s},
			[]float64{0, 12, 9, 7, 9, 7}),
		want: []string{"1s #0 breach snapshot", "16s #0 recovered"},
	}, {
		name:  "hysteresis: custom ClearRatio and Clear",
		rules: "x > 10",
		cfg:   Config{Warmup: -1, ClearRatio: 0.5, Clear: 500 * ms},
		dur:   6 * s,
		sc: steps(
			[]time.Duration{0, 1 * s, 2 * s, 3 * s},
			[]float64{0, 12, 6, 4}),
		want: []string{"1s #0 breach snapshot", "3.5s #0 recovered"},
	}, {
		name:  "cooldown: a second episode inside the cooldown takes no snapshot",
		rules: "x > 1",
		cfg:   noWarmup,
		dur:   70 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			for _, at := range []time.Duration{1 * s, 31 * s, 61 * s} {
				if at <= el && el < at+s {
					return 5, true
				}
			}
			return 0, true
		},
		want: []string{
			"1s #0 breach snapshot", "4s #0 recovered",
			"31s #0 breach skip: cooldown: 30s left", "34s #0 recovered",
			"1m1s #0 breach snapshot", "1m4s #0 recovered",
		},
	}, {
		name:  "cooldown: a breach that lasts takes one snapshot",
		rules: "x > 1",
		cfg:   Config{Warmup: -1, Cooldown: -1},
		dur:   300 * s,
		sc:    between(1*s, 250*s, 5, 0),
		want:  []string{"1s #0 breach snapshot", "4m12s #0 recovered"},
	}, {
		name:  "budget: shared by all rules, sliding window",
		rules: "a > 1; b > 1",
		cfg:   Config{Warmup: -1, Cooldown: -1, Budget: 2, BudgetWindow: time.Minute},
		dur:   65 * s,
		sc: func(signal string, el time.Duration) (float64, bool) {
			starts := map[string][]time.Duration{"a": {1 * s, 10 * s}, "b": {5 * s, 61 * s}}[signal]
			for _, at := range starts {
				if at <= el && el < at+s {
					return 5, true
				}
			}
			return 0, true
		},
		want: []string{
			"1s #0 breach snapshot", "4s #0 recovered",
			"5s #1 breach snapshot", "8s #1 recovered",
			"10s #0 breach skip: budget: 2 snapshots per 1m0s used, next in 51s", "13s #0 recovered",
			"1m1s #1 breach snapshot", "1m4s #1 recovered",
		},
	}, {
		name:  "missing values are skipped, not taken as 0",
		rules: "x > 1 for 300ms",
		cfg:   noWarmup,
		dur:   15 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			switch {
			case el < 1*s:
				return 0, true
			case el >= 1100*ms && el < 1300*ms:
				return 0, false // gap inside the for duration
			case el < 3*s:
				return 5, true
			case el < 6*s:
				return 0, false // breached, no values: must not recover
			case el < 8*s:
				return math.NaN(), true
			case el < 10*s:
				return math.Inf(1), true
			}
			return 0, true
		},
		want: []string{"1.3s #0 breach snapshot", "12s #0 recovered"},
	}, {
		name:  "baseline rule needs its baseline, the threshold rule does not",
		rules: "x > 4x baseline min 1; x > 2",
		cfg:   noWarmup, // baseline ready after 60s/6 = 10s of values
		dur:   40 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			switch {
			case el >= 3*s && el < 3500*ms, el >= 30*s && el < 31*s:
				return 10, true
			}
			return 0.5, true
		},
		want: []string{
			"3s #1 breach snapshot", "5.5s #1 recovered",
			"30s #0 breach snapshot", "30s #1 breach skip: cooldown: 33s left",
			"33s #0 recovered", "33s #1 recovered",
		},
	}, {
		name:  "threshold rules do not warm up",
		rules: "x > 1",
		dur:   5 * s,
		sc:    between(2*s, 3*s, 5, 0),
		want:  []string{"2s #0 breach snapshot", "5s #0 recovered"},
	}, {
		// A lock stuck 6s after start, with its waiters piling up during
		// the warm-up (12, then 22, then 32, ... 50): only 12 is below
		// the threshold (the floor, 16), so the rule breaches once the
		// warm-up ends.
		name:     "an incident during the warm-up is not learned",
		rules:    "lock_waiters > 4x baseline min 16 for 2s",
		interval: time.Second,
		dur:      30 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			if el < 6*s {
				return 1, true
			}
			return min(12+float64(el-6*s)/float64(s)*10, 50), true
		},
		want: []string{"13s #0 breach snapshot"},
	}, {
		// Restarted into an incident: contention from the first value.
		name:  "a process that starts inside an incident breaches after its warm-up",
		rules: "mutex_wait > 4x baseline min 1 for 100ms",
		dur:   20 * s,
		sc:    func(string, time.Duration) (float64, bool) { return 16, true },
		want:  []string{"10.2s #0 breach snapshot"},
	}, {
		// A slow climb, 0 to 10 over ten minutes: the baseline follows it
		// (each value is below four times the lagging baseline), but the
		// ceiling stops it from becoming normal.
		name:     "a slow climb breaches at the ceiling",
		rules:    "mutex_wait > 4x baseline min 1 max 4",
		interval: time.Second,
		dur:      600 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			return el.Seconds() / 60, true
		},
		want: []string{"4m1s #0 breach snapshot"},
	}, {
		name:     "baseline follows a slow change and fires on a jump",
		rules:    "x > 2x baseline min 2 max 100",
		interval: time.Second,
		dur:      1300 * s,
		sc: func(_ string, el time.Duration) (float64, bool) {
			// Twentyfold in 20 minutes: the baseline lags by about
			// 60s/400s = 15 %, while the mean of everything seen would
			// lag threefold.
			level := math.Exp(min(el, 1200*s).Seconds() / 400)
			if el >= 1250*s && el < 1260*s {
				level *= 3
			}
			return level, true
		},
		want: []string{"20m50s #0 breach snapshot", "21m2s #0 recovered"},
	}, {
		name:     "lock_waiters default rule: a stuck lock seen by a 1s signal",
		rules:    DefaultRules,
		interval: 100 * ms,
		dur:      30 * s,
		sc: func(signal string, el time.Duration) (float64, bool) {
			if signal != "lock_waiters" {
				return 0.05, true
			}
			if el%s != 0 {
				return 0, false // sampled every second only
			}
			if el >= 20*s && el < 25*s {
				return 40, true
			}
			return 2, true
		},
		want: []string{"22s #1 breach snapshot", "27s #1 recovered"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				interval := tt.interval
				if interval == 0 {
					interval = 100 * ms
				}
				e := NewEngine(mustParse(t, tt.rules), tt.cfg)
				got := shorts(feed(e, interval, tt.dur, tt.sc))
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events:\n got %q\nwant %q", got, tt.want)
				}
			})
		})
	}
}

// TestEpisodeDetails checks the fields of a breach and its recovery.
func TestEpisodeDetails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		e := NewEngine(mustParse(t, "x > 10"), Config{Warmup: -1})
		sc := steps(
			[]time.Duration{0, 1 * s, 1500 * ms, 2 * s, 12 * s, 13500 * ms, 14 * s},
			[]float64{0, 12, 30, 9, 7, 9, 7})
		got := feed(e, 100*ms, 20*s, sc)
		if len(got) != 2 {
			t.Fatalf("events = %q, want a breach and a recovery", shorts(got))
		}
		b, r := got[0].ev, got[1].ev
		if !b.Time.Equal(start.Add(1*s)) || !r.Time.Equal(start.Add(16*s)) {
			t.Errorf("times = %v, %v; want start+1s, start+16s", b.Time.Sub(start), r.Time.Sub(start))
		}
		b.Time, r.Time = time.Time{}, time.Time{}
		want := Event{Kind: Breach, Text: "x > 10", Value: 12, Threshold: 10, Snapshot: true}
		if b != want {
			t.Errorf("breach = %+v\nwant %+v", b, want)
		}
		want = Event{Kind: Recovered, Text: "x > 10", Value: 7, Threshold: 10, Duration: 15 * s, Peak: 30}
		if r != want {
			t.Errorf("recovered = %+v\nwant %+v", r, want)
		}
	})
}

// TestBaselineFrozenDuringEpisode checks that an incident does not raise
// the baseline it is compared with, and that the baseline is the mean of
// what was learned.
func TestBaselineFrozenDuringEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := NewEngine(mustParse(t, "x > 4x baseline min 1 max 20"), Config{Warmup: -1, Clear: -1})
		sc := func(_ string, el time.Duration) (float64, bool) {
			switch {
			case el >= 30*s && el < 150*s:
				return 50, true // two minutes of incident
			case el%(200*ms) == 0:
				return 3, true
			}
			return 1, true
		}
		got := shorts(feed(e, 100*ms, 151*s, sc))
		want := []string{"30s #0 breach snapshot", "2m30s #0 recovered"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events = %q, want %q", got, want)
		}
		st := e.States()[0]
		if math.Abs(st.Baseline-2) > 0.1 {
			t.Errorf("baseline after the incident = %v, want about 2 (the mean of 1 and 3)", st.Baseline)
		}
		if math.Abs(st.Threshold-8) > 0.4 {
			t.Errorf("threshold after the incident = %v, want about 8", st.Threshold)
		}
	})
}

// TestDefaultMutexWaitLatency checks the goal of DefaultRules: a healthy
// service that sits between 0 and 0.1 with single-sample lumps never
// triggers, and a spike of tens triggers within 250ms of its onset,
// wherever the onset falls between two samples.
func TestDefaultMutexWaitLatency(t *testing.T) {
	// noise is a deterministic healthy mutex_wait: 0 to 0.1, and every
	// 7.3s a single 100ms sample of 1.5 (one recorded wait of about 19ms),
	// the lumps that the runtime's 1-in-8 sampling produces.
	noise := func(el time.Duration) float64 {
		k := int64(el / (100 * ms))
		if k%73 == 0 {
			return 1.5
		}
		return float64(k*7919%11) / 100
	}
	t.Run("healthy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := NewEngine(mustParse(t, DefaultRules), Config{})
			sc := func(signal string, el time.Duration) (float64, bool) {
				if signal == "lock_waiters" {
					return float64(int64(el/s) % 5), true // 0 to 4 waiters
				}
				return noise(el), true
			}
			if got := shorts(feed(e, 100*ms, 20*time.Minute, sc)); got != nil {
				t.Errorf("events = %q, want none", got)
			}
		})
	})
	for _, onset := range []time.Duration{60*s + 1*ms, 60*s + 50*ms, 60*s + 99*ms} {
		t.Run(fmt.Sprintf("onset %v", onset), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := NewEngine(mustParse(t, DefaultRules), Config{})
				// The sample at el is the mean rate over (el-100ms, el]:
				// the part of the window after the onset waits at 20.
				sc := func(signal string, el time.Duration) (float64, bool) {
					if signal == "lock_waiters" {
						return 1, true
					}
					after := min(max(el-onset, 0), 100*ms)
					return noise(el) + 20*float64(after)/float64(100*ms), true
				}
				got := feed(e, 100*ms, 62*s, sc)
				if len(got) == 0 || got[0].ev.Kind != Breach {
					t.Fatalf("events = %q, want a breach", shorts(got))
				}
				if lat := got[0].at - onset; lat > 250*ms {
					t.Errorf("breach %v after the onset, want at most 250ms", lat)
				}
			})
		})
	}
}
