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
	f.Summary = fmt.Sprintf("Long lock wait: %s waited longer than %s; the longest, goroutine %d, %s%s on the %s at %s, %s%s.",
		textfmt.Plural(len(long), "lock wait", "lock waits"), textfmt.Dur(longWait), w.Goroutine, atLeastWord(w.AtLeast), textfmt.Dur(w.Duration),
		kindNoun(w.Kind), w.Site, wokenBy(w), queueCause(rep, w))
	for i, x := range long {
		if i == 3 {
			break
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("goroutine %d: %s%s at %s from +%s, %s", x.Goroutine, atLeastWord(x.AtLeast),
			textfmt.Dur(x.Duration), x.Site, textfmt.Dur(x.Start), wokenBy(x)))
	}
	return []Finding{f}
}

// queueCause names the critical section that most of the waiting at w's
// site is blamed on, when it is not the one that released w: in a queue,
// the goroutine that hands the lock on is often a waiter that took it just
// before, not what kept the queue waiting (the spike demo's longest wait
// was released by a reader, (*Cache).Get, behind a refresher that held the
// lock across a backend call). "" when the releaser is that section, or
// no section has most of the site's waiting.
func queueCause(rep *Report, w Wait) string {
	for _, s := range rep.Sites {
		if s.Kind != w.Kind || siteOf(s) != w.Site || len(s.Holders) == 0 {
			continue
		}
		h := s.Holders[0]
		if h.Op == "" || h.Share < 0.5 || w.UnblockerAt != nil && h.Func == w.UnblockerAt.Func {
			return ""
		}
		return fmt.Sprintf("; %s of the waiting at that site is behind %s", textfmt.Pct(h.Share), holderAt(h))
	}
	return ""
}

// hotAloneShare is the least wait at a lock, as a share of the window (in
// goroutines waiting on average), for it to be reported as hot with no
// other contended lock beside it.
const hotAloneShare = 0.1

// hotAlone reports whether site s, with no other contended lock of note,
// is worth a hot-lock finding: several goroutines wait there for at least
// hotAloneShare of the window, and no other finding is about it.
func hotAlone(rep *Report, s Site) bool {
	if rep.Window == nil || s.Waiters < 2 || float64(s.Total) < hotAloneShare*float64(rep.Window.Duration) {
		return false
	}
	for _, f := range rep.Findings {
		if f.Site == siteOf(s) {
			return false
		}
	}
	return true
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
	if w.UnblockerAt != nil {
		return fmt.Sprintf("released by goroutine %d in %s", w.Unblocker, funcAt(*w.UnblockerAt))
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

// hotLockFindings reports the lock that has most of the window's lock
// wait. Among several contended locks that is news in itself. Alone, or
// beside others that barely wait, it is reported when nothing else is said
// about it and its waiters wait for a real part of the window
// (hotAloneShare): a counter behind one Mutex that 32 request handlers
// bump is the plain hot lock, and its report had no finding (its holds
// are short, so it is not a saturated or long-held lock).
func hotLockFindings(rep *Report) []Finding {
	if len(rep.Sites) == 0 || rep.LockWait < minHotTotal {
		return nil
	}
	group, totals := lockGroups(rep.Sites)
	top := totals[group[0]]
	var second time.Duration
	for g, t := range totals {
		if g != group[0] && t > second {
			second = t
		}
	}
	if float64(top) < hotShare*float64(rep.LockWait) {
		return nil
	}
	s := rep.Sites[0]
	if float64(second) < 0.01*float64(rep.LockWait) && !hotAlone(rep, s) {
		return nil
	}
	f := Finding{Kind: "hot-lock", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("One lock dominates: the %s at %s has %s of all lock wait (%s of %s, across %s).",
		kindNoun(s.Kind), siteOf(s), textfmt.Pct(float64(top)/float64(rep.LockWait)), textfmt.Dur(top), textfmt.Dur(rep.LockWait),
		textfmt.Plural(rep.SitesTotal, "contended site", "contended sites"))

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
