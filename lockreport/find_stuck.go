package lockreport

import (
	"fmt"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// stuckWeight makes a lock that makes no progress lead over the waiting
// the trace saw: it is still going on, and every second adds its waiters'
// time.
const stuckWeight = 10

// checkStuck holds the monitor's verdict that a site made no progress
// against the trace: a wait at that site that was served (its goroutine
// woken with the lock) within the time the verdict covers refutes it. The
// scans and the lock-wait counter can be fooled, by a busy lock beside
// this one that accounts for the counter's growth, or by scans that run
// when the process, short of CPU, has its goroutines parked; the trace
// cannot. A refuted site keeps its waiters and loses its NoProgress, and
// the report says why.
func checkStuck(rep *Report) {
	if rep.Window == nil {
		return
	}
	for i := range rep.Parked {
		p := &rep.Parked[i]
		if p.NoProgress <= 0 || p.Named {
			continue
		}
		for _, s := range rep.Sites {
			if s.Func != p.Func || s.Line != p.Line || s.LastServed <= 0 {
				continue
			}
			ago := rep.Window.Duration - s.LastServed
			if ago >= p.NoProgress {
				continue
			}
			rep.Caveats = append(rep.Caveats, fmt.Sprintf(
				"the monitor took %s (%s parked at every scan for %s) for a stuck lock, but the trace shows a waiter there served "+
					"%s before the window ended, and %s in the window: a busy lock, not a stuck one. (Goroutine scans in a process "+
					"short of CPU, or beside a busier lock, can look like no progress.)",
				p.Where(), textfmt.Plural(p.Waiters, "goroutine", "goroutines"), textfmt.Dur(p.NoProgress), textfmt.Dur(max(ago, 0)),
				textfmt.Plural(s.Waits-s.WaitingAtEnd, "wait served", "waits served")))
			p.NoProgress = 0
			break
		}
	}
}

// stuckCandidates proposes the lock sites a monitor saw make no progress
// (ParkedSite.NoProgress): goroutines parked there at every scan, with no
// lock wait ending that could have been theirs.
func stuckCandidates(rep *Report) []candidate {
	var cs []candidate
	for _, p := range rep.Parked {
		if p.NoProgress <= 0 {
			continue
		}
		lock := rep.Locks.lockAt(p.Func, p.Line)
		h := fmt.Sprintf("stuck lock: %s parked on the %s in %s with no progress for %s%s",
			textfmt.Plural(p.Waiters, "goroutine", "goroutines"), kindNoun(p.Kind), p.Where(), textfmt.Dur(p.NoProgress), rep.Locks.holderPhrase(lock))
		f := Finding{Kind: "stuck-lock", Site: p.Where(), Summary: "Stuck lock: " + h[len("stuck lock: "):] + "."}
		f.Evidence = append(f.Evidence,
			"the goroutines were parked at this site at every goroutine scan for that long, and the runtime's lock wait counter "+
				"did not grow as it would have had they been served: nobody released the lock to them")
		if lock != nil && len(lock.Holders) > 0 {
			f.Evidence = append(f.Evidence, "the holder's stack: "+stackLine(lock.Holders[0].Stack))
			for _, c := range rep.Locks.Chains {
				if len(c.Goroutines) > 0 && c.Goroutines[0] == lock.Holders[0].Goroutine {
					f.Evidence = append(f.Evidence, "the holder waits in turn: "+c.Summary)
				}
			}
		} else {
			f.Evidence = append(f.Evidence, "the holder is not waiting here: look for the goroutine inside a function that takes this lock "+
				"(the bundle's goroutine dumps have every goroutine's stack)")
		}
		cs = append(cs, candidate{headline: h, finding: f, weight: stuckWeight * float64(p.Waiters) * p.NoProgress.Seconds(), current: true})
	}
	return cs
}
