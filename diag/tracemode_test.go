package diag

import (
	"context"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
)

// TestTraceControlDecides drives the controller with made-up cost
// estimates: auto arms after armAfter over budget, records again after
// onAfter under half of it; armed records from a warning until disarmAfter
// after the last one.
func TestTraceControlDecides(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	rec := flightrec.New(flightrec.Config{})
	defer rec.Stop()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tc := newTraceControl(TraceAuto, 0.01, rec, t0)
	tc.cost.ready, tc.cost.fixed = true, true // the process's own scheduling must not blend in
	tc.cost.cpuRate = 1
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := func(d time.Duration, sched float64, warning string) {
		t.Helper()
		tc.cost.schedRate = sched
		tc.nextCost = at(d) // decide now, whatever the clock says
		if _, _, err := tc.tick(at(d), warning, false); err != nil {
			t.Fatal(err)
		}
	}
	// Cheap from the start: recording.
	step(time.Second, 100, "")
	if tc.armed || !rec.Enabled() {
		t.Fatalf("cheap: armed %v, recording %v; want recording", tc.armed, rec.Enabled())
	}
	// 100k schedulings a second cost about 10% of a CPU: armed after 10s
	// (and, while armed, a duty of a tenth of dutyHorizon).
	for d := 2 * time.Second; d <= 11*time.Second; d += time.Second {
		step(d, 1e5, "")
	}
	if tc.armed || !rec.Enabled() {
		t.Errorf("armed %v after 9s over budget, want not yet", tc.armed)
	}
	step(12*time.Second, 1e5, "")
	if !tc.armed || rec.Enabled() {
		t.Fatalf("after 10s over budget: armed %v, recording %v; want armed and off", tc.armed, rec.Enabled())
	}
	if d := tc.describe(at(12 * time.Second)); !strings.Contains(d, "armed: the recorder is off") || !strings.Contains(d, "budget 1%") {
		t.Errorf("describe = %q", d)
	}
	// A warning starts it; it stays on disarmAfter after the last one.
	step(20*time.Second, 1e5, "rule x pending")
	if !rec.Enabled() {
		t.Fatal("a warning did not start the recorder")
	}
	step(49*time.Second, 1e5, "")
	if !rec.Enabled() {
		t.Error("stopped before disarmAfter")
	}
	step(51*time.Second, 1e5, "")
	if rec.Enabled() {
		t.Error("still recording disarmAfter after the last warning")
	}
	// Load drops: recording again after a minute under half the budget.
	step(60*time.Second, 100, "")
	step(119*time.Second, 100, "")
	if !tc.armed {
		t.Error("back to recording before onAfter")
	}
	step(121*time.Second, 100, "")
	if tc.armed || !rec.Enabled() {
		t.Errorf("after a minute under budget: armed %v, recording %v", tc.armed, rec.Enabled())
	}
}

// TestAutoArmsUnderLoadAndCatchesAnIncident: under auto on an event-dense
// workload the recorder goes armed; a stuck lock then gets a snapshot
// whose trace covers the incident, and the report names the lock.
func TestAutoArmsUnderLoadAndCatchesAnIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an event-dense workload for about 15s")
	}
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	cfg := testConfig(t)
	cfg.Trace = TraceAuto
	// Under the race detector every scheduling costs far more CPU than
	// the tracer's share of it: a budget of 0.2% keeps "event-dense" true
	// there too.
	cfg.TraceBudget = 0.002
	cfg.Interval = 100 * time.Millisecond
	cfg.Rules = "stuck_waiters > 0"
	cfg.WallProfile = -1
	m := startMonitor(t, cfg)

	// Every waiter of this lock parks and every holder yields: hundreds of
	// thousands of schedulings a second, far over 1% of the CPU in trace.
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Yielding(ctx, 16)
	testkit.WaitFor(t, 30*time.Second, "auto to arm the recorder", func() bool {
		st := m.Status()
		// Armed: recording only on warnings, which this workload (a hot
		// lock) gives too.
		return strings.Contains(st.Trace, "auto, armed") && strings.Contains(st.Trace, "would cost")
	})
	cancel()
	wait()

	sub := m.Subscribe(64)
	defer sub.Close()
	_, release := contention.Stuck(12)
	defer release()
	ev := nextEvent(t, sub, 20*time.Second, EventSnapshot, EventSnapshotFailed)
	if ev.Type != EventSnapshot {
		t.Fatalf("snapshot failed: %s", ev.Reason)
	}
	b, err := m.Bundle(ev.Snapshot.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Has("trace.out") || !strings.Contains(b.Meta().Trace, "mode auto, armed") {
		t.Errorf("trace: has trace.out %v; meta says %q", b.Has("trace.out"), b.Meta().Trace)
	}
	t.Logf("trace: %s\nheadline: %s", b.Meta().Trace, ev.Snapshot.Headline)
	if h := ev.Snapshot.Headline; !strings.Contains(h, "StuckWaiter") {
		t.Errorf("headline = %q, want the stuck lock's site", h)
	}
}

// TestTraceControlDuty: an armed recorder whose warnings never end (a
// process whose normal state is contention) records about budget/cost of
// the time, not all of it; a snapshot still gets it.
func TestTraceControlDuty(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	rec := flightrec.New(flightrec.Config{})
	defer rec.Stop()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tc := newTraceControl(TraceArmed, 0.01, rec, t0)
	// The recorder would cost 20% of the process's CPU: it may record 5%
	// of the time.
	tc.cost.ready, tc.cost.cpuRate, tc.cost.schedRate = true, 1, 0.2/costPerSchedule.Seconds()
	tc.nextCost = t0.Add(24 * time.Hour) // keep the made-up estimate
	var on, first time.Duration
	const step = time.Second
	for d := step; d <= time.Hour; d += step {
		if _, _, err := tc.tick(t0.Add(d), "rule x pending", false); err != nil {
			t.Fatal(err)
		}
		if rec.Enabled() {
			on += step
		} else if first == 0 && on > 0 {
			first = on
		}
	}
	if first < 25*time.Second || first > 35*time.Second {
		t.Errorf("first stretch of recording %v, want about 5%% of %v (30s)", first, dutyHorizon)
	}
	if share := on.Seconds() / time.Hour.Seconds(); share > 0.06 || share < 0.02 {
		t.Errorf("recorded %v of an hour of warnings (%.1f%%), want at most about 5%%", on, 100*share)
	}
	if d := tc.describe(t0.Add(time.Hour)); !rec.Enabled() && !strings.Contains(d, "its share of the budget") {
		t.Errorf("describe while paused = %q", d)
	}
	// A snapshot starts it whatever the duty.
	for d := time.Hour; d < time.Hour+40*time.Second; d += step {
		if _, _, err := tc.tick(t0.Add(d), "rule x breached", true); err != nil {
			t.Fatal(err)
		}
	}
	if !rec.Enabled() {
		t.Error("a snapshot in flight did not keep the recorder on")
	}
}

// TestTraceCoverageText: before the analysis a snapshot's trace line
// gives the recorder's window as "up to"; with the first and last events'
// times it gives them, and says when the byte limit cut the window short.
func TestTraceCoverageText(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	span := traceSpan{size: 10 << 20, since: t0, from: t0.Add(50 * time.Second), to: t0.Add(60 * time.Second),
		trigger: t0.Add(59 * time.Second), window: 10 * time.Second, maxBytes: 10 << 20, mode: "on: recording always"}
	for _, tt := range []struct {
		name      string
		span      traceSpan
		want, not []string
	}{
		{"the recorder's window", span, []string{"covering up to 9s before the trigger and 1s after", "; mode on: recording always"}, []string{"size limit"}},
		{"cut short by the byte limit", exactSpan(span, lockreport.Window{Start: t0.Add(57*time.Second + 720*time.Millisecond), End: t0.Add(60 * time.Second)}),
			[]string{"covering 1.28s before the trigger and 1s after", "older events were dropped for the window's size limit, 10 MB"}, []string{"up to"}},
		{"all since the recorder started", exactSpan(traceSpan{size: 1 << 20, since: t0, from: t0, to: t0.Add(3 * time.Second), trigger: t0.Add(2 * time.Second), window: 10 * time.Second, maxBytes: 10 << 20, mode: "on"},
			lockreport.Window{Start: t0.Add(250 * time.Millisecond), End: t0.Add(3 * time.Second)}),
			[]string{"covering 1.75s before the trigger and 1s after"}, []string{"up to", "size limit"}},
		{"no clock in the trace", exactSpan(span, lockreport.Window{Events: 10}), []string{"covering up to 9s"}, nil},
		{"the age limit, not the size limit", exactSpan(span, lockreport.Window{Start: t0.Add(50*time.Second + 100*time.Millisecond), End: t0.Add(60 * time.Second)}),
			[]string{"covering 8.9s before the trigger and 1s after"}, []string{"up to", "size limit"}},
		{"armed after the trigger", traceSpan{size: 1 << 20, since: t0.Add(2 * time.Second), from: t0.Add(2 * time.Second), to: t0.Add(3 * time.Second), trigger: t0, mode: "auto, armed"},
			[]string{"covering only the 1s after the trigger (the recorder was armed, and started 2s after it)"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.span.coverage()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("coverage = %q, want %q in it", got, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("coverage = %q, want no %q in it", got, n)
				}
			}
		})
	}
}

// TestSnapshotTraceCoverageIsTheTrace: on a busy process whose events fill
// the recorder's byte limit in well under its age limit, a snapshot's trace
// line gives the span of the events it holds (the report's window), not
// the age limit.
func TestSnapshotTraceCoverageIsTheTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an event-dense workload for a few seconds")
	}
	cfg := testConfig(t)
	cfg.TraceWindow = 10 * time.Second
	cfg.TraceMaxBytes = 1 << 20
	cfg.WallProfile = -1
	m := startMonitor(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Yielding(ctx, 4)
	defer wait()
	defer cancel()
	// Let the recorder run for 3s, well over what 1 MiB of these events
	// spans (well under a second): a fixed time, not a result.
	timer := time.NewTimer(3 * time.Second)
	<-timer.C
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bundle(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.Report()
	if err != nil {
		t.Fatal(err)
	}
	line := b.Meta().Trace
	t.Logf("trace: %s; report window %v", line, rep.Window.Duration)
	if rep.Window.Start.IsZero() {
		t.Skip("the trace has no clock snapshot (Go before 1.25)")
	}
	if rep.Partial {
		// The analysis stopped early (a loaded machine): the events'
		// span is not known, and the line must say "up to".
		if !strings.Contains(line, "covering up to ") {
			t.Errorf("trace line = %q for a partial analysis, want the recorder's window as \"up to\"", line)
		}
		return
	}
	if rep.Window.Duration >= 3*time.Second {
		t.Skipf("the window held %v of events: not cut short by 1 MiB on this machine", rep.Window.Duration)
	}
	if strings.Contains(line, "up to") || !strings.Contains(line, "size limit") {
		t.Errorf("trace line = %q, want the events' span and the size limit named", line)
	}
	before := rep.Window.Start.Sub(info.Trigger.Time)
	if want := textfmt.Dur(-before.Round(time.Millisecond)); !strings.Contains(line, "covering "+want+" before") {
		t.Errorf("trace line = %q, want %q before the trigger (the report's first event)", line, want)
	}
}
