package lockreport

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// A candidate is one explanation the report could lead with: a headline
// sentence and the finding that holds its evidence. Every source of
// evidence proposes candidates in a function of its own (lock sites of
// the trace, locks outside Go from the thread scan, runtime locks,
// goroutines parked when the window ended, the profiles); rank orders
// them in one place. A new kind of finding adds a producer and, if it
// needs one, a weight rule here.
type candidate struct {
	headline string
	finding  Finding // Kind "" for a headline without a finding of its own
	// site is the lock site the candidate is about (siteOf), for a lock
	// site's candidate; "" otherwise.
	site string
	// weight is the waiting the candidate explains, in goroutine-seconds
	// (or an equivalent: threads blocked times the time they were seen
	// blocked).
	weight float64
	// current says it was still going on when the window ended; what had
	// ended weighs endedWeight as much.
	current bool
}

// endedWeight discounts contention that had ended before the window's
// end: a snapshot is taken for what goes on now.
const endedWeight = 0.1

// endedShare is the share of all lock wait that a site whose contention
// ended needs for a finding, when nothing else was found about it.
const endedShare = 0.1

// minFindingShare is the share of all lock wait that a lock site needs for
// a finding of its own.
const minFindingShare = 0.01

func (c candidate) score() float64 {
	if c.current {
		return c.weight
	}
	return c.weight * endedWeight
}

// rank orders candidates, the one to lead with first.
func rank(cs []candidate) {
	slices.SortStableFunc(cs, func(x, y candidate) int {
		return cmp.Compare(y.score(), x.score())
	})
}

// explain builds the candidates from everything the report holds,
// ranks them, and sets the headline and the findings: the candidates'
// findings in rank order, then the findings that lead no headline
// (long waits, one lock dominating, read/write patterns of lesser sites).
func explain(rep *Report, a *analyzer, prof profiles, opts Options) {
	var cs []candidate
	var extra []Finding
	checkStuck(rep)
	if a != nil {
		lc, more := lockSiteCandidates(rep, a)
		cs = append(cs, lc...)
		extra = append(extra, more...)
	}
	cs = append(cs, cgoLockCandidates(rep)...)
	cs = append(cs, cgoWaitCandidates(rep)...)
	cs = append(cs, runtimeLockCandidates(rep, profileWindow(rep, prof))...)
	cs = append(cs, deadlockCandidates(rep)...)
	cs = append(cs, namedCandidates(rep)...)
	cs = append(cs, inversionCandidates(rep)...)
	cs = append(cs, stuckCandidates(rep)...)
	cs = append(cs, parkedCandidates(rep)...)
	cs = append(cs, profileCandidates(rep)...)
	rank(cs)

	seen := map[string]bool{}
	for _, c := range cs {
		f := c.finding
		if f.Kind == "" {
			continue
		}
		key := f.Kind + "\x00" + f.Summary
		if seen[key] {
			continue
		}
		seen[key] = true
		rep.Findings = append(rep.Findings, f)
	}
	if a != nil {
		extra = append(extra, longWaitFindings(rep)...)
		if hot := hotLockFindings(rep); len(hot) == 1 && len(cs) > 0 && cs[0].finding.Kind == "" && cs[0].site == hot[0].Site {
			// The headline's lock, with no finding of its own: its
			// finding comes first, before smaller matters.
			rep.Findings = append(hot, rep.Findings...)
		} else {
			extra = append(extra, hot...)
		}
	}
	rep.Findings = append(rep.Findings, extra...)

	switch {
	case len(cs) > 0:
		rep.Headline = cs[0].headline
		if rep.Partial {
			rep.Headline += " (partial window)"
		}
	case rep.Window != nil:
		rep.Headline = fmt.Sprintf("no lock contention in the %s window", textfmt.Dur(rep.Window.Duration))
		if rep.Partial {
			rep.Headline += " (partial: only part of the window was read)"
		}
	default:
		rep.Headline = profileHeadline(rep)
	}
	if len(rep.Sites) > opts.Top {
		rep.Sites = rep.Sites[:opts.Top]
	}
	if len(rep.SyncSites) > opts.Top {
		rep.SyncSites = rep.SyncSites[:opts.Top]
	}
}

// lockSiteCandidates proposes each contended lock site of the trace,
// explained by what its main critical section did, and returns the
// secondary read/write findings (starvation, convoys) too.
func lockSiteCandidates(rep *Report, a *analyzer) ([]candidate, []Finding) {
	var cs []candidate
	var more []Finding
	win := time.Duration(0)
	if rep.Window != nil {
		win = rep.Window.Duration
	}
	for i := range rep.Sites {
		s := &rep.Sites[i]
		if s.Total <= 0 {
			continue
		}
		c := candidate{weight: s.Total.Seconds(), current: !siteEnded(*s, win), site: siteOf(*s)}
		kind, h := classifySite(*s, win)
		var f Finding
		switch kind {
		case "held-across-blocking":
			f = blockingFinding(*s, *h)
		case "saturated-lock":
			f = saturatedFinding(*s, *h, win)
		case "cpu-starved":
			f = starvedFinding(*s, *h)
		case "long-critical-section":
			f = longSectionFinding(*s, *h)
		case "writer-starvation":
			f = starvationFinding(*s)
		case "reader-convoy":
			f = convoyFinding(*s, a)
		}
		if f.Kind != "" && s.Share < minFindingShare {
			// A sliver of the window's lock wait: the site stays in
			// the table, without a finding to read before the lock
			// that matters (the counter example led with 4.66ms of
			// net/http beside 18.8s at its counter).
			f = Finding{}
		}
		c.headline = siteHeadline(*s, h, kind, win)
		if h == nil && len(s.Holders) > 0 && s.Holders[0].Func == notReleased && !s.Named {
			// Still held when the window ended: the dump may say by whom
			// (a named lock's holder is not guessed: it is known).
			c.headline += rep.Locks.holderPhrase(rep.Locks.lockAt(s.Func, s.Line))
		}
		c.headline += namedSitePhrase(rep, *s)
		if !c.current {
			// Contention that ended is worth a finding of its own when
			// it was more than a trace of the window's lock wait.
			if f.Kind != "" || s.Share >= endedShare && s.Total >= minInsideWait {
				f = endedFinding(*s, win, f)
			}
			c.headline = endedHeadline(*s, win) + c.headline
		}
		f.Source = "trace"
		c.finding = f
		cs = append(cs, c)
		// The read/write patterns of the site, when they are not its
		// lead finding and its waits add up to something.
		if s.Total < minInsideWait {
			continue
		}
		if kind != "writer-starvation" {
			if sf := starvationFinding(*s); sf.Kind != "" {
				sf.Source = "trace"
				more = append(more, sf)
			}
		}
		if kind != "reader-convoy" {
			if cf := convoyFinding(*s, a); cf.Kind != "" {
				cf.Source = "trace"
				more = append(more, cf)
			}
		}
	}
	return cs, more
}

// Thresholds of the classification of a lock site.
const (
	// A critical section runs on the CPU when at least this share of its
	// holds is running or runnable.
	cpuShare = 0.6
	// It is long when its median hold reaches longHold, or when it is
	// outlierFactor times the median of the site's other sections.
	longHold       = 2 * time.Millisecond
	outlierFactor  = 10
	minOutlierHold = 50 * time.Microsecond
	// ...and held, by the holds seen, at least this share of that time.
	saturatedHeld = 0.5
	// A lock is saturated when goroutines waited for it during this share
	// of the time it was contended at all (first to last wait).
	saturatedShare = 0.8
	// Holds that the trace saw end to end, needed to say how long they are.
	minHolds = 3
	// The holders were starved of CPU when they spent at least this share
	// of their hold time runnable, waiting for a CPU.
	starvedShare = 0.5
	// A saturated lock needs more: holds, and a span of contention.
	minSaturatedHolds = 10
	minSaturatedSpan  = 50 * time.Millisecond
)

func sameHolder(x, y Holder) bool {
	return x.Op == y.Op && x.Func == y.Func && x.File == y.File && x.Line == y.Line
}

// heldShare is the share of the site's active span (first wait to last)
// covered by the holds the trace saw; Held is relative to the whole
// window, of length win.
func heldShare(s Site, win time.Duration) float64 {
	span := s.Last - s.First
	if span <= 0 || win <= 0 {
		return s.Held
	}
	return min(s.Held*float64(win)/float64(span), 1)
}

// classifySite says what explains most of a lock site's wait, and which
// critical section (holder) it is about: "held-across-blocking",
// "cpu-starved", "long-critical-section", "saturated-lock", "writer-starvation",
// "reader-convoy", or "" (contention, no more said).
func classifySite(s Site, win time.Duration) (string, *Holder) {
	var blamed time.Duration
	for i := range s.Holders {
		blamed += s.Holders[i].Wait
	}
	if len(s.Holders) == 0 || s.Holders[0].File == "" {
		// Not released in the window, or woken by the runtime.
		return "", nil
	}
	h := &s.Holders[0]
	if bi := h.BlockedInside; bi != nil && bi.Wait >= minInsideWait && float64(bi.Wait) >= minInsideShare*float64(blamed) {
		if ho := h.Holds; ho == nil || ho.Count < minHolds || ho.Blocked+ho.Syscall >= 0.25 || bi.Blocked > ho.Total/4 {
			return "held-across-blocking", h
		}
	}
	if ho := h.Holds; ho != nil && ho.Count >= minHolds && ho.Runnable >= starvedShare {
		// The holders could not run for most of their holds: the wait
		// is the process's want of CPU more than the section's code.
		return "cpu-starved", h
	}
	if ho := h.Holds; ho != nil && ho.Count >= minHolds && ho.Running+ho.Runnable >= cpuShare {
		// Outliers are told by the CPU each hold used: a hold's wall
		// time includes waiting for a CPU, which all holders share.
		cpu, others := cpuPerHold(*h), otherCPUPerHold(s, h)
		if ho.P50 >= longHold || others > 0 && cpu >= minOutlierHold && cpu >= outlierFactor*others {
			return "long-critical-section", h
		}
		if ho.Count >= minSaturatedHolds && s.Last-s.First >= minSaturatedSpan && activeContended(s, win) >= saturatedShare &&
			heldShare(s, win) >= saturatedHeld {
			return "saturated-lock", h
		}
	}
	if starvationFinding(s).Kind != "" {
		return "writer-starvation", h
	}
	return "", h
}

// cpuPerHold is the CPU time a critical section used per hold seen.
func cpuPerHold(h Holder) time.Duration {
	ho := h.Holds
	if ho == nil || ho.Count == 0 {
		return 0
	}
	return time.Duration(float64(ho.Total) * ho.Running / float64(ho.Count))
}

// otherCPUPerHold is the CPU time per hold of the site's other critical
// sections, over all their holds seen; 0 if none was seen.
func otherCPUPerHold(s Site, h *Holder) time.Duration {
	var cpu float64
	n := 0
	for i := range s.Holders {
		x := &s.Holders[i]
		if sameHolder(*x, *h) || x.Holds == nil || x.Holds.Count == 0 {
			continue
		}
		cpu += float64(x.Holds.Total) * x.Holds.Running
		n += x.Holds.Count
	}
	if n == 0 {
		return 0
	}
	return max(time.Duration(cpu/float64(n)), time.Nanosecond)
}

// otherHoldsP50 is the median hold of the site's other critical
// sections, weighted by their holds; 0 if none was seen.
func otherHoldsP50(s Site, h *Holder) time.Duration {
	type hp struct {
		p50 time.Duration
		n   int
	}
	var list []hp
	total := 0
	for i := range s.Holders {
		x := &s.Holders[i]
		if sameHolder(*x, *h) || x.Holds == nil || x.Holds.Count == 0 {
			continue
		}
		list = append(list, hp{x.Holds.P50, x.Holds.Count})
		total += x.Holds.Count
	}
	if total == 0 {
		return 0
	}
	slices.SortFunc(list, func(a, b hp) int { return cmp.Compare(a.p50, b.p50) })
	seen := 0
	for _, x := range list {
		seen += x.n
		if 2*seen >= total {
			return max(x.p50, time.Nanosecond)
		}
	}
	return list[len(list)-1].p50
}

// activeContended is the share of the site's active span (first wait to
// last) during which goroutines waited; Contended is relative to the
// whole window, of length win.
func activeContended(s Site, win time.Duration) float64 {
	span := s.Last - s.First
	if span <= 0 || win <= 0 {
		return 0
	}
	return min(s.Contended*float64(win)/float64(span), 1)
}
