package diag

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockdiag/lockdiag/internal/profdelta"
	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
)

// Status is what /debug/locks shows: the signals now and over the last
// minute, the rules, where goroutines wait now, and recent snapshots.
type Status struct {
	Time    time.Time     `json:"time"`
	Running bool          `json:"running"`
	Uptime  time.Duration `json:"uptime"`
	// Now is the newest sample.
	Now Sample `json:"now"`
	// Minute summarizes each signal over the last minute.
	Minute []SignalSummary `json:"last_minute"`
	// Rules are the rules and their state.
	Rules []RuleStatus `json:"rules"`
	// WaitSites are where goroutines were parked on locks at the last
	// lock_waiters scan.
	WaitSites     []lockreport.ParkedSite `json:"wait_sites"`
	WaitSitesTime time.Time               `json:"wait_sites_time"`
	// WaitSitesNote says why there is no scan, if there is none.
	WaitSitesNote string `json:"wait_sites_note,omitempty"`
	// ScanCost is what the last goroutine scan took; Scans and ScanTotal
	// count the scans since Start and what they took in all (the
	// detector's CPU: the scan runs on one goroutine, on the CPU).
	ScanCost  time.Duration `json:"scan_cost,omitempty"`
	Scans     int           `json:"scans"`
	ScanTotal time.Duration `json:"scan_total"`
	// Holders are the critical sections that made others wait recently:
	// the top Unlock sites of the mutex profile over HoldersWindow (the
	// span between its two reads furthest apart in the last 10s or so).
	Holders       []lockreport.ProfileSite `json:"holders,omitempty"`
	HoldersWindow time.Duration            `json:"holders_window,omitempty"`
	// HoldersSamples is how many contention events the mutex profile
	// recorded over HoldersWindow (its contentions divided by the
	// fraction): with a few dozen, the shares are rough and can swing
	// from one read to the next.
	HoldersSamples int `json:"holders_samples,omitempty"`
	// NamedLocks are the named locks of package locks at the last read
	// (NamedLocksTime), the busiest first: stuck ones, then by waiters,
	// then by wait; at most 100 of NamedLocksTotal. Their names,
	// holders, hold times and waiters are exact; their counts and wait
	// and hold summaries run from when each lock was named. The JSON
	// uses the schema's names (lock.id, lock.type, lock.wait.duration,
	// lock.held.duration) with durations in nanoseconds.
	NamedLocks      []lockreport.NamedLock `json:"named_locks,omitempty"`
	NamedLocksTotal int                    `json:"named_locks_total,omitempty"`
	NamedLocksTime  time.Time              `json:"named_locks_time,omitzero"`
	// Inversions are the lock-order inversions between named locks found
	// so far (package locks' lock-order check, LOCKDIAG_LOCK_ORDER=on):
	// potential deadlocks. InversionsLost counts those the check found but
	// did not keep.
	Inversions     []lockreport.LockInversion `json:"lock_order_inversions,omitempty"`
	InversionsLost int                        `json:"lock_order_inversions_lost,omitempty"`
	// Trace says what the flight recorder does: its mode, whether it
	// records and why, or why there is no trace.
	Trace string `json:"trace"`
	// TraceMode is the trace mode (auto, on, armed, off), or
	// "unavailable" when the program owns the flight recorder;
	// TraceRecording says whether the recorder is recording now.
	TraceMode            string         `json:"trace_mode"`
	TraceRecording       bool           `json:"trace_recording"`
	MutexProfileFraction int            `json:"mutex_profile_fraction"`
	BlockProfileRate     int            `json:"block_profile_rate"`
	Disk                 string         `json:"disk"`
	SnapshotInFlight     bool           `json:"snapshot_in_flight"`
	Snapshots            []SnapshotInfo `json:"snapshots"`
	// Errors are the last failure of each collector, if any.
	Errors map[string]string `json:"errors,omitempty"`
}

// SignalSummary is a signal's recent range.
type SignalSummary struct {
	Signal string  `json:"signal"`
	Unit   string  `json:"unit,omitempty"`
	Now    float64 `json:"now"`
	Mean   float64 `json:"mean"`
	Max    float64 `json:"max"`
	// Samples is how many samples had a value.
	Samples int `json:"samples"`
}

// RuleState is where a rule is in its life cycle.
type RuleState string

// The rule states.
const (
	// RuleWarmingUp: the monitor started less than Config.Warmup ago; a
	// baseline rule learns but does not fire.
	RuleWarmingUp RuleState = "warming_up"
	// RuleOK: below the threshold.
	RuleOK RuleState = "ok"
	// RulePending: above the threshold for less than the rule's "for".
	RulePending RuleState = "pending"
	// RuleBreached: above the threshold for the rule's "for".
	RuleBreached RuleState = "breached"
	// RuleClearing: back below the threshold, not yet for long enough.
	RuleClearing RuleState = "clearing"
)

// RuleStatus is a rule's state for display.
type RuleStatus struct {
	Rule       string    `json:"rule"`
	State      RuleState `json:"state"`
	Value      float64   `json:"value"`
	Threshold  float64   `json:"threshold"`
	Baseline   float64   `json:"baseline,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	LastBreach time.Time `json:"last_breach,omitzero"`
	Note       string    `json:"note,omitempty"`
}

// Status returns the monitor's state.
func (m *Monitor) Status() Status {
	now := time.Now()
	m.mu.Lock()
	st := Status{
		Time:                 now,
		Running:              m.running,
		MutexProfileFraction: m.mutexRate,
		BlockProfileRate:     m.blockRate,
		SnapshotInFlight:     m.snaps.InFlight(),
	}
	if m.running {
		st.Uptime = now.Sub(m.started).Round(time.Second)
	}
	st.TraceMode = m.cfg.Trace
	switch {
	case !m.running:
		st.Trace = "not running"
	case m.traceErr != nil:
		st.TraceMode = "unavailable"
		if m.rec == nil {
			st.TraceMode = TraceOff
		}
		st.Trace = "unavailable: " + m.traceErr.Error()
	default:
		st.Trace = fmt.Sprintf("%s (window %v, about %s)", m.traceMode, m.cfg.TraceWindow, textfmt.Bytes(m.cfg.TraceMaxBytes))
		st.TraceRecording = m.rec.Enabled()
	}
	m.mu.Unlock()

	st.Now, _ = m.tl.latest()
	recent := m.tl.since(now.Add(-time.Minute), 0)
	for _, sig := range Signals() {
		sum := SignalSummary{Signal: sig.String(), Unit: sig.Unit(), Now: st.Now.Values[sig], Max: math.NaN(), Mean: math.NaN()}
		total := 0.0
		for i := range recent {
			v, ok := recent[i].Get(sig)
			if !ok {
				continue
			}
			if sum.Samples == 0 || v > sum.Max {
				sum.Max = v
			}
			total += v
			sum.Samples++
		}
		if sum.Samples > 0 {
			sum.Mean = total / float64(sum.Samples)
		}
		st.Minute = append(st.Minute, sum)
	}
	st.Rules = m.rules.status()

	st.Holders, st.HoldersWindow, st.HoldersSamples = m.recentHolders(st.MutexProfileFraction)

	m.stateMu.Lock()
	st.WaitSites = m.waitSites
	st.WaitSitesTime = m.lastWaiters
	st.ScanCost, st.Scans, st.ScanTotal = m.scanCost, m.scans, m.scanTotal
	if n := len(m.named.locks); n > 0 {
		st.NamedLocks, st.NamedLocksTotal, st.NamedLocksTime = topNamed(m.named.locks, maxNamedInStatus, true), n, m.named.time
	}
	st.Inversions, st.InversionsLost = slices.Clone(m.named.inversions), m.named.lost
	if len(m.collectErrs) > 0 {
		st.Errors = make(map[string]string, len(m.collectErrs))
		for k, v := range m.collectErrs {
			st.Errors[k] = v
		}
	}
	m.stateMu.Unlock()
	if m.cfg.LockWaitersInterval < 0 {
		st.WaitSitesNote = "lock_waiters scan is off"
	}

	st.Disk = m.store.diskStatus()
	st.Snapshots = m.store.list()
	if len(st.Snapshots) > 10 {
		st.Snapshots = st.Snapshots[:10]
	}
	return st
}

// MarshalJSON keeps NaN (not measured) out of the JSON.
func (s SignalSummary) MarshalJSON() ([]byte, error) {
	b := fmt.Appendf(nil, `{"signal":%q`, s.Signal)
	if s.Unit != "" {
		b = fmt.Appendf(b, `,"unit":%q`, s.Unit)
	}
	for _, f := range []struct {
		k string
		v float64
	}{{"now", s.Now}, {"mean", s.Mean}, {"max", s.Max}} {
		if !math.IsNaN(f.v) && !math.IsInf(f.v, 0) {
			b = fmt.Appendf(b, `,%q:`, f.k)
			b = appendFloat(b, f.v)
		}
	}
	b = fmt.Appendf(b, `,"samples":%d}`, s.Samples)
	return b, nil
}

// WriteText writes the status for a terminal.
func (s *Status) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	state := "running"
	if !s.Running {
		state = "stopped"
	}
	p("lockdiag: %s for %v, %s, GOMAXPROCS=%d\n", state, textfmt.Dur(s.Uptime), runtime.Version(), runtime.GOMAXPROCS(0))
	p("trace:    %s\n", s.Trace)
	mp := "off"
	if s.MutexProfileFraction > 0 {
		mp = fmt.Sprintf("1/%d", s.MutexProfileFraction)
	}
	bp := "off"
	if s.BlockProfileRate > 0 {
		bp = fmt.Sprintf("%v", time.Duration(s.BlockProfileRate))
	}
	p("profiles: mutex %s, block %s\n", mp, bp)
	p("disk:     %s\n\n", s.Disk)

	p("%-20s %10s %10s %10s  %s\n", "SIGNAL", "NOW", "MEAN 1m", "MAX 1m", "")
	for _, m := range s.Minute {
		sig, _ := ParseSignal(m.Signal)
		p("%-20s %10s %10s %10s  %s\n", m.Signal, withUnit(m.Now, m.Unit), withUnit(m.Mean, m.Unit), withUnit(m.Max, m.Unit), sig.Help())
	}

	p("\nRULES\n")
	if len(s.Rules) == 0 {
		p("  none (LOCKDIAG_SLO=off)\n")
	}
	for _, r := range s.Rules {
		p("  %-10s %s", r.State, r.Rule)
		if !math.IsNaN(r.Threshold) && r.Threshold != 0 {
			p("   (now %s, threshold %s", textfmt.Value(r.Value), textfmt.Value(r.Threshold))
			if r.Baseline != 0 {
				p(", baseline %s", textfmt.Value(r.Baseline))
			}
			p(")")
		}
		if r.Note != "" {
			p("   %s", r.Note)
		}
		p("\n")
	}

	p("\nGOROUTINES PARKED ON LOCKS NOW")
	if !s.WaitSitesTime.IsZero() {
		p(" (scanned %s ago", textfmt.Dur(s.Time.Sub(s.WaitSitesTime).Round(time.Millisecond)))
		if s.ScanCost > 0 {
			p(", %s per scan", textfmt.Dur(s.ScanCost))
		}
		p(")")
	}
	p("\n")
	switch {
	case s.WaitSitesNote != "":
		p("  %s\n", s.WaitSitesNote)
	case len(s.WaitSites) == 0:
		p("  none\n")
	}
	for i, ws := range s.WaitSites {
		if i == 10 {
			p("  ... %d more sites\n", len(s.WaitSites)-i)
			break
		}
		stuck := ""
		if ws.NoProgress > 0 {
			stuck = "  STUCK: no progress for " + textfmt.Dur(ws.NoProgress)
		}
		if ws.Named {
			stuck = "  (named locks: see NAMED LOCKS)"
		}
		p("  %5d  %-14s %s%s\n", ws.Waiters, ws.Kind, ws.Where(), stuck)
	}
	writeNamedLocks(bw, s)

	if len(s.Holders) > 0 {
		rough := ""
		if s.HoldersSamples < fewHolderSamples {
			rough = "; few samples, the shares are rough"
		}
		p("\nWHERE LOCKS WERE RELEASED, last %v (mutex profile, %s%s: the critical sections others waited for)\n",
			s.HoldersWindow.Round(time.Second), textfmt.Plural(s.HoldersSamples, "sample", "samples"), rough)
		for _, h := range s.Holders {
			p("  %10s %5.1f%%  %-16s %s:%d (%s)\n", textfmt.Dur(h.Delay), h.Share*100, h.Op, filepath.Base(h.File), h.Line, stacks.Short(h.Func))
		}
	}

	p("\nSNAPSHOTS")
	if s.SnapshotInFlight {
		p(" (one being taken)")
	}
	p("\n")
	if len(s.Snapshots) == 0 {
		p("  none yet: curl -X POST <this URL>/snapshots takes one\n")
	}
	for _, sn := range s.Snapshots {
		p("  %s  %-8s %s\n", sn.ID, sn.Trigger.Kind, sn.Headline)
	}
	if len(s.Errors) > 0 {
		p("\nERRORS\n")
		for k, v := range s.Errors {
			p("  %s: %s\n", k, v)
		}
	}
	return bw.Flush()
}

// withUnit prints a signal's value for the status table: at most 10
// columns for any value (thousands and millions as k and M, days of
// seconds as hours), no exponent.
func withUnit(v float64, unit string) string {
	if unit == "s" {
		if s := textfmt.Seconds(v); len(s) <= 10 {
			return s
		}
		return compact(v/3600, "h")
	}
	if unit != "" {
		unit = " " + unit
	}
	return compact(v, unit)
}

// compactWidth is the width of a value and its unit in the status table.
const compactWidth = 10

// siPrefixes are the prefixes compact uses for values of a thousand and up.
var siPrefixes = []struct {
	div    float64
	prefix string
}{{1e3, "k"}, {1e6, "M"}, {1e9, "G"}, {1e12, "T"}, {1e15, "P"}, {1e18, "E"}}

// compact prints v and its unit in at most compactWidth columns for a
// unit of up to 4 columns (wider units get 6 columns for the number),
// without an exponent: three significant digits where they fit, fewer
// decimals where they do not (0.0046 s/s); a value of a thousand and up
// with the first SI prefix that fits (1235k), a magnitude of 999.5E and
// more as the bound ">999E". Only magnitudes of a thousand and up get a
// prefix. A value that rounds to zero in the room there is prints as a
// bound ("<0.001", ">-0.01"); NaN (not measured) is "-"; infinities are
// "+Inf" and "-Inf".
func compact(v float64, unit string) string {
	w := max(compactWidth-utf8.RuneCountInString(unit), 6)
	s := textfmt.Value(v)
	switch {
	case s == "-":
		return s
	case len(s) <= w || math.IsInf(v, 0):
		return s + unit
	case math.Abs(v) < 999.5:
		// Fewer decimals; a value that rounds to zero prints as a bound.
		for dec := w - 2; dec >= 0; dec-- {
			s = strconv.FormatFloat(v, 'f', dec, 64)
			if strings.Contains(s, ".") {
				s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
			}
			if len(s) <= w && strings.Trim(s, "-0.") != "" {
				return s + unit
			}
		}
		for _, b := range []string{"0.001", "0.01", "0.1", "1"} {
			if v > 0 {
				s = "<" + b
			} else {
				s = ">-" + b
			}
			if len(s) <= w {
				break
			}
		}
		return s + unit
	}
	for _, si := range siPrefixes {
		if s = textfmt.Value(v/si.div) + si.prefix; len(s) <= w {
			return s + unit
		}
	}
	if v > 0 {
		return ">999E" + unit
	}
	return "<-999E" + unit
}

// fewHolderSamples is the number of mutex profile samples below which
// the status calls the holders' shares rough.
const fewHolderSamples = 20

// recentHolders returns the top Unlock sites between the newest mutex
// profile read and the oldest one kept, and the number of samples they
// stand on, computed once per new read.
func (m *Monitor) recentHolders(fraction int) ([]lockreport.ProfileSite, time.Duration, int) {
	m.stateMu.Lock()
	n := len(m.baselines)
	if n < 2 || m.baselines[n-1].mutex.Data == nil {
		m.stateMu.Unlock()
		return nil, 0, 0
	}
	oldest, newest := m.baselines[0], m.baselines[n-1]
	if m.holdersAt.Equal(newest.time) {
		h, w, ns := m.holders, m.holdersWindow, m.holdersSamples
		m.stateMu.Unlock()
		return h, w, ns
	}
	m.stateMu.Unlock()

	var sites []lockreport.ProfileSite
	samples := 0
	window := newest.time.Sub(oldest.time)
	if d, err := profdelta.Delta(oldest.mutex, newest.mutex); err == nil {
		samples = int(profdelta.Total(d, "contentions") / int64(max(fraction, 1)))
		var enc bytes.Buffer
		d.Write(&enc)
		opts := lockreport.Options{MutexProfile: enc.Bytes(), MutexFraction: fraction, Top: 5}
		if rep, _ := lockreport.Analyze(context.Background(), nil, opts); rep != nil && rep.Profiles != nil {
			sites = rep.Profiles.Holders
			for i := range sites {
				sites[i].Stack = nil
			}
		}
	}
	m.stateMu.Lock()
	m.holders, m.holdersWindow, m.holdersAt, m.holdersSamples = sites, window, newest.time, samples
	m.stateMu.Unlock()
	return sites, window, samples
}

// writeNamedLocks prints the named locks and the lock-order inversions.
func writeNamedLocks(w io.Writer, s *Status) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if len(s.NamedLocks) > 0 {
		p("\nNAMED LOCKS (package locks, read %s ago: exact holders and hold times; counts since each was named)\n",
			textfmt.Dur(s.Time.Sub(s.NamedLocksTime).Round(time.Millisecond)))
		p("  %-24s %-7s %9s  %-18s %17s %17s %9s %6s\n", "LOCK", "TYPE", "WAITING", "HELD", "WAIT p50/p99", "HOLD p50/p99", "ACQUIRED", "WAITED")
		for i := range s.NamedLocks {
			if i == 20 {
				p("  ... %d more named locks (?format=json lists %d)\n", s.NamedLocksTotal-i, len(s.NamedLocks))
				break
			}
			nl := &s.NamedLocks[i]
			waiting := strconv.Itoa(nl.Waiters)
			if nl.Stuck {
				waiting += " STUCK"
			}
			p("  %-24s %-7s %9s  %-18s %17s %17s %9s %6s\n", textfmt.Clip(nl.Name, 24), nl.Type, waiting, textfmt.Clip(nl.HeldText(), 18),
				textfmt.Dur(nl.Wait.P50)+" / "+textfmt.Dur(nl.Wait.P99), textfmt.Dur(nl.Hold.P50)+" / "+textfmt.Dur(nl.Hold.P99),
				compact(float64(nl.Acquisitions), ""), nl.ContendedText())
		}
		for _, nl := range s.NamedLocks {
			if !nl.Stuck || len(nl.AcquiredAt) == 0 {
				continue
			}
			f := nl.AcquiredAt[0]
			p("  %s: goroutine %d locked it at %s\n", nl.Name, nl.Holder, lockreport.ParkedSite{Func: f.Func, File: f.File, Line: f.Line}.Where())
		}
	}
	if len(s.Inversions) > 0 {
		p("\nLOCK ORDER INVERSIONS (potential deadlocks, found by the lock-order check before they happen)\n")
		for _, inv := range s.Inversions {
			p("  %q then %q by goroutine %d at %s; %q then %q by goroutine %d at %s (%s)\n", inv.A, inv.B, inv.GoroutineAB, frameAt(inv.StackAB),
				inv.B, inv.A, inv.GoroutineBA, frameAt(inv.StackBA), inv.Time.Format("15:04:05"))
		}
		if s.InversionsLost > 0 {
			p("  ... and %d more the check found but did not keep\n", s.InversionsLost)
		}
	}
}
