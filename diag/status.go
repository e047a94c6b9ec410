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

	"github.com/google/pprof/profile"
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
	// the top Unlock sites of the mutex profile over HoldersWindow, the
	// span from the latest read at least a minute before the newest one
	// (or the first read, in the first minute) to the newest: reads come
	// every 5s, so the span is a minute to a minute and 5s, and the shares
	// change as the span slides, not with each read. Share is of
	// HoldersTotal; the delay of the sites not listed is HoldersOther.
	// Holders is empty when the span has fewer than 20 samples
	// (HoldersNote says so): their ranking would be noise.
	Holders       []lockreport.ProfileSite `json:"holders,omitempty"`
	HoldersWindow time.Duration            `json:"holders_window,omitempty"`
	// HoldersSamples is how many contention events the mutex profile
	// recorded over HoldersWindow, and each Holders row's Samples its
	// part. The profile records 1 event in the fraction, whatever its
	// delay, and scales it by the fraction: a site that rests on a sample
	// or two can have a large share one minute and none the next. Where
	// the fraction adapted within the span (HoldersFractions lists the
	// fractions, oldest first), the samples are counted in each part of
	// the span at its own fraction.
	HoldersSamples   int   `json:"holders_samples,omitempty"`
	HoldersFractions []int `json:"holders_fractions,omitempty"`
	// HoldersTotal is the delay the mutex profile charged to all Unlock
	// sites over HoldersWindow, the runtime's own locks included (not
	// lockdiag's own); HoldersOther is the part of it not in Holders:
	// further sites and the runtime's own locks. The Holders' delays and
	// HoldersOther add up to HoldersTotal, their shares and
	// HoldersOther/HoldersTotal to 1.
	HoldersTotal time.Duration `json:"holders_total,omitempty"`
	HoldersOther time.Duration `json:"holders_other,omitempty"`
	// HoldersNote says why Holders is empty when the profile was read:
	// too few samples over the span.
	HoldersNote string `json:"holders_note,omitempty"`
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

	hv := m.recentHolders(st.MutexProfileFraction)
	st.Holders, st.HoldersWindow, st.HoldersSamples, st.HoldersFractions = hv.sites, hv.window, hv.samples, hv.fractions
	st.HoldersTotal, st.HoldersOther, st.HoldersNote = hv.total, hv.other, hv.note

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

	writeHolders(bw, s)

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

// The holders panel of the status.
const (
	// holdersSpan is the span of mutex profile reads the holders rest on
	// (at least; reads come every profileEvery): the signal table's
	// minute. A span of a few reads swung with each read: a lock held
	// long but released rarely is sampled rarely, and its share came and
	// went as its one sample entered and left the span.
	holdersSpan = time.Minute
	// fewHolderSamples is the number of samples over the span below which
	// the status lists no holders: their ranking would be noise.
	fewHolderSamples = 20
	// fewSiteSamples is the number of samples below which a site's row is
	// marked rough.
	fewSiteSamples = 5
	// holdersShown is how many sites the status lists.
	holdersShown = 5
)

// holderView is the status's holders: the Unlock sites of a mutex
// profile delta, with what they rest on.
type holderView struct {
	sites        []lockreport.ProfileSite // at most holdersShown, stacks dropped
	window       time.Duration
	samples      int           // sampled contention events in the delta
	fractions    []int         // the fractions in force, oldest first, if it changed within the window
	total, other time.Duration // all the delay, and what sites does not list
	note         string        // why sites is empty
}

// keepReads appends the mutex profile read c to reads and drops the reads
// that holdersBase no longer needs: all but the latest one at least
// holdersSpan before c.
func keepReads(reads []profdelta.Capture, c profdelta.Capture) []profdelta.Capture {
	reads = append(reads, c)
	i := 0
	for i < len(reads)-1 && !reads[i+1].Time.After(c.Time.Add(-holdersSpan)) {
		i++
	}
	return reads[i:]
}

// holdersBase returns the two reads the holders' delta spans: the latest
// read at least holdersSpan before the newest one (the oldest read if
// none is), and the newest.
func holdersBase(reads []profdelta.Capture) (oldest, newest profdelta.Capture, ok bool) {
	if len(reads) < 2 {
		return oldest, newest, false
	}
	newest = reads[len(reads)-1]
	oldest = reads[0]
	for _, r := range reads[1 : len(reads)-1] {
		if !r.Time.After(newest.Time.Add(-holdersSpan)) {
			oldest = r
		}
	}
	return oldest, newest, true
}

// recentHolders returns the holders over the span of the recent mutex
// profile reads (holdersBase), computed once per new read. fraction is the
// fraction in force now, for reads that did not record theirs.
func (m *Monitor) recentHolders(fraction int) holderView {
	m.stateMu.Lock()
	oldest, newest, ok := holdersBase(m.mutexReads)
	if !ok {
		m.stateMu.Unlock()
		return holderView{}
	}
	if m.holdersAt.Equal(newest.Time) {
		hv := m.holders
		m.stateMu.Unlock()
		return hv
	}
	var span []profdelta.Capture
	for _, r := range m.mutexReads {
		if !r.Time.Before(oldest.Time) {
			span = append(span, r)
		}
	}
	m.stateMu.Unlock()

	hv := holderView{window: newest.Time.Sub(oldest.Time)}
	if d, err := profdelta.Delta(oldest, newest); err == nil {
		hv = holdersFromSegments(d, hv.window, holderSegments(span, fraction))
	}
	m.stateMu.Lock()
	m.holders, m.holdersAt = hv, newest.Time
	m.stateMu.Unlock()
	return hv
}

// A holderSegment is a part of the holders' span over which the mutex
// profile's fraction held: the runtime scales each sample by the fraction
// in force when it records it, so samples are counted segment by segment.
type holderSegment struct {
	from, to profdelta.Capture
	fraction int
}

// holderSegments splits the span of reads (oldest first) where the
// fraction in force changed; a read that did not record its fraction
// counts as fraction.
func holderSegments(reads []profdelta.Capture, fraction int) []holderSegment {
	var segs []holderSegment
	for k := 1; k < len(reads); k++ {
		f := reads[k].Rate
		if f <= 0 {
			f = fraction
		}
		if n := len(segs); n > 0 && segs[n-1].fraction == f {
			segs[n-1].to = reads[k]
			continue
		}
		segs = append(segs, holderSegment{from: reads[k-1], to: reads[k], fraction: f})
	}
	return segs
}

// holdersFromSegments ranks the Unlock sites of d, the mutex profile delta
// over window, unless it has too few samples. segs are the parts of the
// window with one fraction each: with one, d's counts are samples times
// its fraction; with more, each site's samples are counted in each part's
// own delta, at that part's fraction.
func holdersFromSegments(d *profile.Profile, window time.Duration, segs []holderSegment) holderView {
	hv := holderView{window: window}
	if len(segs) == 0 {
		segs = []holderSegment{{fraction: 1}}
	}
	latest := max(segs[len(segs)-1].fraction, 1)
	ps := mutexSites(d, latest)
	if ps == nil {
		return hv
	}
	// Samples per site (by its Unlock's place), and in all.
	type key struct {
		op, fn, file string
		line         int
	}
	keyOf := func(s lockreport.ProfileSite) key { return key{s.Op, s.Func, s.File, s.Line} }
	samples := map[key]int64{}
	var all int64
	count := func(ps *lockreport.ProfileSection, fraction int) {
		for _, list := range [][]lockreport.ProfileSite{ps.Holders, ps.RuntimeLocks} {
			for _, s := range list {
				n := s.Count / int64(max(fraction, 1))
				samples[keyOf(s)] += n
				all += n
			}
		}
	}
	if len(segs) == 1 {
		count(ps, latest)
	} else {
		for _, sg := range segs {
			hv.fractions = append(hv.fractions, sg.fraction)
			sd, err := profdelta.Delta(sg.from, sg.to)
			if err != nil {
				continue
			}
			if sp := mutexSites(sd, sg.fraction); sp != nil {
				count(sp, sg.fraction)
			}
		}
		hv.fractions = fractionChanges(hv.fractions)
	}
	hv.samples = int(all)
	hv.total = ps.MutexTotal
	if hv.samples < fewHolderSamples {
		hv.note = fmt.Sprintf("too few samples in the last %s to rank the critical sections: %s (the mutex profile records 1 contention in %s)",
			textfmt.Dur(window.Round(time.Second)), textfmt.Plural(hv.samples, "sample", "samples"), fractionsText(hv.fractions, latest))
		return hv
	}
	hv.sites = ps.Holders[:min(len(ps.Holders), holdersShown)]
	hv.other = hv.total
	for i := range hv.sites {
		hv.sites[i].Stack = nil
		hv.sites[i].Samples = samples[keyOf(hv.sites[i])]
		hv.other -= hv.sites[i].Delay
	}
	return hv
}

// mutexSites returns the profile section of a mutex profile delta recorded
// at 1 in fraction, nil if it cannot be read.
func mutexSites(d *profile.Profile, fraction int) *lockreport.ProfileSection {
	var enc bytes.Buffer
	if err := d.Write(&enc); err != nil {
		return nil
	}
	opts := lockreport.Options{MutexProfile: enc.Bytes(), MutexFraction: fraction, Top: math.MaxInt32}
	rep, _ := lockreport.Analyze(context.Background(), nil, opts)
	if rep == nil {
		return nil
	}
	return rep.Profiles
}

// fractionsText is "100", or "100, then 1 in 300" when the fraction
// changed (fractions, oldest first).
func fractionsText(fractions []int, fraction int) string {
	if len(fractions) < 2 {
		return strconv.Itoa(fraction)
	}
	parts := make([]string, len(fractions))
	for i, f := range fractions {
		parts[i] = strconv.Itoa(f)
	}
	return strings.Join(parts, ", then 1 in ")
}

// writeHolders prints where locks were released: the holders, what is
// not listed, and what the figures rest on.
func writeHolders(w io.Writer, s *Status) {
	if len(s.Holders) == 0 && s.HoldersNote == "" {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	of := ""
	if s.MutexProfileFraction > 1 || len(s.HoldersFractions) > 1 {
		of = " of 1 contention in " + fractionsText(s.HoldersFractions, s.MutexProfileFraction)
	}
	p("\nWHERE LOCKS WERE RELEASED, last %s (mutex profile, %s%s: the critical sections others waited for)\n",
		textfmt.Dur(s.HoldersWindow.Round(time.Second)), textfmt.Plural(s.HoldersSamples, "sample", "samples"), of)
	if s.HoldersNote != "" {
		p("  %s\n", s.HoldersNote)
		return
	}
	rough := false
	for _, h := range s.Holders {
		n := int(h.Samples)
		note := textfmt.Plural(n, "sample", "samples")
		if n < fewSiteSamples {
			note, rough = "rough: "+note, true
		}
		p("  %10s %5.1f%%  %-16s %s:%d (%s)  %s\n", textfmt.Dur(h.Delay), h.Share*100, h.Op, filepath.Base(h.File), h.Line, stacks.Short(h.Func), note)
	}
	if s.HoldersOther > 0 && s.HoldersTotal > 0 {
		p("  %10s %5.1f%%  other sites and the runtime's own locks\n", textfmt.Dur(s.HoldersOther), 100*float64(s.HoldersOther)/float64(s.HoldersTotal))
	}
	if rough {
		scaled := fmt.Sprintf("each scaled by %d", max(s.MutexProfileFraction, 1))
		if len(s.HoldersFractions) > 1 {
			scaled = "each scaled by the fraction in force when it was recorded"
		}
		p("  (a rough row rests on fewer than %d samples, %s: one sample more or less moves its share a lot)\n", fewSiteSamples, scaled)
	}
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
