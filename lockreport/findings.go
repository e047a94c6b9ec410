package lockreport

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// Thresholds of the findings.
const (
	// A holder's blocking inside its critical section is a finding when
	// the waiting blamed on those critical sections is at least this
	// share of the site's wait, and at least minInsideWait.
	minInsideShare = 0.10
	minInsideWait  = time.Millisecond
	// Writers waiting for readers: the median writer wait, or the
	// longest, reaches these, and most of the wait is blamed on RUnlock.
	starvationP50 = time.Millisecond
	starvationMax = 10 * time.Millisecond
	// A reader convoy: at least convoyBursts wake-ups of 3 or more
	// readers by one writer Unlock.
	convoyBursts = 3
	// A lock wait this long is a finding of its own.
	longWait = 10 * time.Millisecond
	// One site has at least this share of all lock wait, among several.
	hotShare    = 0.80
	minHotTotal = time.Millisecond
	// Runtime-internal lock delay worth a finding: at least this much,
	// and at least runtimeLockShare of the window (1%: a goroutine
	// blocked on runtime locks for 1% of the time). Below that it is the
	// runtime's normal background.
	minRuntimeLock   = time.Millisecond
	runtimeLockShare = 0.01
)

func siteOf(s Site) string { return siteLabel(Frame{Func: s.Func, File: s.File, Line: s.Line}) }

func holderAt(h Holder) string { return funcAt(Frame{Func: h.Func, File: h.File, Line: h.Line}) }

func stackLine(fs []Frame) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s (%s:%d)", stacks.Short(f.Func), path.Base(f.File), f.Line)
	}
	return strings.Join(parts, " < ")
}

// addFindings appends the findings, most important first.
func addFindings(rep *Report, a *analyzer, prof profiles, opts Options) {
	var fs []Finding
	if a != nil {
		fs = append(fs, insideFindings(rep)...)
		fs = append(fs, starvationFindings(rep)...)
		fs = append(fs, convoyFindings(rep, a)...)
		fs = append(fs, longWaitFindings(rep)...)
		fs = append(fs, hotLockFindings(rep)...)
	}
	fs = append(fs, runtimeLockFindings(rep, profileWindow(rep, prof))...)
	rep.Findings = append(rep.Findings, fs...)
	if len(rep.Sites) > opts.Top {
		rep.Sites = rep.Sites[:opts.Top]
	}
	if len(rep.SyncSites) > opts.Top {
		rep.SyncSites = rep.SyncSites[:opts.Top]
	}
}

func insideFindings(rep *Report) []Finding {
	var fs []Finding
	for _, s := range rep.Sites {
		for _, h := range s.Holders {
			bi := h.BlockedInside
			if bi == nil || bi.Wait < minInsideWait || s.Total == 0 {
				continue
			}
			var siteBlamed time.Duration
			for _, x := range s.Holders {
				siteBlamed += x.Wait
			}
			if float64(bi.Wait) < minInsideShare*float64(siteBlamed) {
				continue
			}
			f := Finding{Kind: "held-across-blocking", Site: siteOf(s)}
			f.Summary = fmt.Sprintf("Lock held across %s: %s kept the %s at %s while it blocked there, "+
				"%s for %s in all; %s of the waiters' time (%s of the wait at that site) is blamed on it.",
				blockedPhrase(bi), holderAt(h), kindNoun(s.Kind), siteOf(s), textfmt.Plural(bi.Times, "time", "times"),
				textfmt.Dur(bi.Blocked), textfmt.Dur(bi.Wait), textfmt.Pct(float64(bi.Wait)/float64(max(siteBlamed, 1))))
			f.Evidence = append(f.Evidence,
				fmt.Sprintf("holder's stack when it blocked (%s): %s", bi.Reason, stackLine(bi.Stack)),
				fmt.Sprintf("up to %s waiting at once when it unlocked; %s by %s at the site, %s in total, max %s",
					textfmt.Plural(bi.MaxQueued, "goroutine was", "goroutines were"), textfmt.Plural(s.Waits, "wait", "waits"), textfmt.Plural(s.Waiters, "goroutine", "goroutines"), textfmt.Dur(s.Total), textfmt.Dur(s.Max)),
				"fix: do the blocking call before taking the lock or after releasing it, or hold a copy instead of the lock")
			fs = append(fs, f)
		}
	}
	return fs
}

func starvationFindings(rep *Report) []Finding {
	var fs []Finding
	for _, s := range rep.Sites {
		if s.Kind != "RWMutex.Lock" || s.Waits < 3 || (s.P50 < starvationP50 && s.Max < starvationMax) {
			continue
		}
		var readers, all time.Duration
		var top *Holder
		for i, h := range s.Holders {
			all += h.Wait
			if h.Op == "RWMutex.RUnlock" {
				readers += h.Wait
				if top == nil {
					top = &s.Holders[i]
				}
			}
		}
		if top == nil || all == 0 || float64(readers) < 0.5*float64(all) {
			continue
		}
		f := Finding{Kind: "writer-starvation", Site: siteOf(s)}
		f.Summary = fmt.Sprintf("RWMutex writer starvation: writers at %s waited for readers to leave: %s, median %s, max %s, "+
			"%s in total; %s of it while readers held the lock, mostly %s (RUnlock).",
			siteOf(s), textfmt.Plural(s.Waits, "wait", "waits"), textfmt.Dur(s.P50), textfmt.Dur(s.Max), textfmt.Dur(s.Total),
			textfmt.Pct(float64(readers)/float64(all)), holderAt(*top))
		for _, h := range s.Holders {
			if h.Op == "RWMutex.RUnlock" {
				f.Evidence = append(f.Evidence, fmt.Sprintf("read section %s: %s of the writers' wait, %s by %s",
					holderAt(h), textfmt.Pct(h.Share), textfmt.Plural(h.Wakeups, "last RUnlock", "last RUnlocks"), textfmt.Plural(h.Goroutines, "goroutine", "goroutines")))
			}
		}
		f.Evidence = append(f.Evidence, "while a writer waits, new readers queue behind it: long read sections stall readers and writers alike; "+
			"shorten the read sections or move slow work out of them")
		fs = append(fs, f)
	}
	return fs
}

func convoyFindings(rep *Report, a *analyzer) []Finding {
	var fs []Finding
	for _, s := range rep.Sites {
		if s.Kind != "RWMutex.RLock" {
			continue
		}
		agg := a.sites.byKey[siteKey{kind: kindRLock, fn: s.Func, file: s.File, line: s.Line}]
		if agg == nil || agg.bursts < convoyBursts {
			continue
		}
		var writer *Holder
		for i, h := range s.Holders {
			if h.Op == "RWMutex.Unlock" {
				writer = &s.Holders[i]
				break
			}
		}
		who := "a writer's Unlock"
		if writer != nil {
			who = "the Unlock in " + holderAt(*writer)
		}
		f := Finding{Kind: "reader-convoy", Site: siteOf(s)}
		f.Summary = fmt.Sprintf("Reader convoy at %s: %d times, %s woke %.1f readers at once on average (up to %d); "+
			"readers waited %s in total, max %s.", siteOf(s), agg.bursts, who,
			float64(agg.burstReaders)/float64(agg.bursts), agg.burstMax, textfmt.Dur(s.Total), textfmt.Dur(s.Max))
		if writer != nil {
			f.Evidence = append(f.Evidence, fmt.Sprintf("the writer's critical section %s has %s of the readers' wait (%s)",
				holderAt(*writer), textfmt.Pct(writer.Share), textfmt.Dur(writer.Wait)))
		}
		f.Evidence = append(f.Evidence, "each write stops every reader, then wakes them together; they contend for the CPU and the next writer waits for all of them: "+
			"write less often (batch updates) or publish immutable snapshots (atomic.Pointer) instead")
		fs = append(fs, f)
	}
	return fs
}

func longWaitFindings(rep *Report) []Finding {
	var long []Wait
	for _, w := range rep.Waits {
		if w.Duration >= longWait && (w.Kind == "Mutex.Lock" || w.Kind == "RWMutex.RLock" || w.Kind == "RWMutex.Lock") {
			long = append(long, w)
		}
	}
	if len(long) == 0 {
		return nil
	}
	w := long[0]
	f := Finding{Kind: "long-wait", Site: w.Site}
	f.Summary = fmt.Sprintf("Long lock wait: %s waited longer than %s; the longest, goroutine %d, %s%s on the %s at %s, %s.",
		textfmt.Plural(len(long), "lock wait", "lock waits"), textfmt.Dur(longWait), w.Goroutine, atLeastWord(w.AtLeast), textfmt.Dur(w.Duration),
		kindNoun(w.Kind), w.Site, wokenBy(w))
	for i, x := range long {
		if i == 3 {
			break
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("goroutine %d: %s%s at %s from +%s, %s", x.Goroutine, atLeastWord(x.AtLeast),
			textfmt.Dur(x.Duration), x.Site, textfmt.Dur(x.Start), wokenBy(x)))
	}
	return []Finding{f}
}

func atLeastWord(b bool) string {
	if b {
		return "at least "
	}
	return ""
}

func wokenBy(w Wait) string {
	if w.Unblocker < 0 || len(w.UnblockerStack) == 0 {
		return "not released before the window ended"
	}
	// The first frame outside the runtime and sync is the critical section.
	for _, f := range w.UnblockerStack {
		if !stacks.Internal(f.Func) {
			return fmt.Sprintf("released by goroutine %d in %s", w.Unblocker, funcAt(f))
		}
	}
	return fmt.Sprintf("released by goroutine %d", w.Unblocker)
}

// lockGroups guesses which sites are one lock: two sites are joined when
// the function holding the lock at one waits for it at the other (for
// example an RWMutex's readers and its writer). It returns each site's
// group and the groups' totals.
func lockGroups(sites []Site) (group []int, totals map[int]time.Duration) {
	parent := make([]int, len(sites))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	byFunc := map[string][]int{}
	for i, s := range sites {
		byFunc[s.Func] = append(byFunc[s.Func], i)
	}
	for i, s := range sites {
		for _, h := range s.Holders {
			for _, j := range byFunc[h.Func] {
				parent[find(i)] = find(j)
			}
		}
	}
	group = make([]int, len(sites))
	totals = map[int]time.Duration{}
	for i, s := range sites {
		group[i] = find(i)
		totals[group[i]] += s.Total
	}
	return group, totals
}

func hotLockFindings(rep *Report) []Finding {
	if len(rep.Sites) < 2 || rep.LockWait < minHotTotal {
		return nil
	}
	group, totals := lockGroups(rep.Sites)
	if len(totals) < 2 {
		return nil
	}
	top := totals[group[0]]
	var second time.Duration
	for g, t := range totals {
		if g != group[0] && t > second {
			second = t
		}
	}
	if float64(top) < hotShare*float64(rep.LockWait) || float64(second) < 0.01*float64(rep.LockWait) {
		return nil
	}
	s := rep.Sites[0]
	f := Finding{Kind: "hot-lock", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("One lock dominates: the %s at %s has %s of all lock wait (%s of %s, across %d contended sites).",
		kindNoun(s.Kind), siteOf(s), textfmt.Pct(float64(top)/float64(rep.LockWait)), textfmt.Dur(top), textfmt.Dur(rep.LockWait), rep.SitesTotal)

	if len(s.Holders) > 0 {
		h := s.Holders[0]
		f.Evidence = append(f.Evidence, fmt.Sprintf("its main holder is %s (%s of its wait)", holderAt(h), textfmt.Pct(h.Share)))
	}
	for i, x := range rep.Sites {
		if i > 0 && group[i] == group[0] {
			f.Evidence = append(f.Evidence, fmt.Sprintf("counted with it, as it looks like the same lock: the %s at %s (%s)",
				kindNoun(x.Kind), siteOf(x), textfmt.Dur(x.Total)))
		}
	}
	f.Evidence = append(f.Evidence, "shorten the critical sections there, or split the lock (shard by key)")
	return []Finding{f}
}

// profileWindow is the span the mutex profile delta covers, or the trace
// window; 0 if neither is known.
func profileWindow(rep *Report, prof profiles) time.Duration {
	if prof.mutex != nil && prof.mutex.DurationNanos > 0 {
		return time.Duration(prof.mutex.DurationNanos)
	}
	if rep.Window != nil {
		return rep.Window.Duration
	}
	return 0
}

func runtimeLockFindings(rep *Report, window time.Duration) []Finding {
	p := rep.Profiles
	if p == nil || len(p.RuntimeLocks) == 0 {
		return nil
	}
	var total time.Duration
	for _, r := range p.RuntimeLocks {
		total += r.Delay
	}
	if total < max(minRuntimeLock, time.Duration(float64(window)*runtimeLockShare)) {
		return nil
	}
	top := p.RuntimeLocks[0]
	f := Finding{Kind: "runtime-lock"}
	f.Summary = fmt.Sprintf("Runtime-internal lock contention: the mutex profile has %s of delay on runtime locks, most under %s.",
		textfmt.Dur(total), funcAt(Frame{Func: top.Func, File: top.File, Line: top.Line}))
	for i, r := range p.RuntimeLocks {
		if i == 3 {
			break
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%d contentions): %s", textfmt.Dur(r.Delay), r.Count, stackLine(r.Stack)))
	}
	f.Evidence = append(f.Evidence, "runtime locks guard channels, timers, the scheduler and the heap: look for one channel shared by many goroutines, "+
		"or GOMAXPROCS above the CPUs available")
	return []Finding{f}
}
