package lockreport

import (
	"fmt"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// stuckWeight makes a lock that makes no progress lead over the waiting
// the trace saw: it is still going on, and every second adds its waiters'
// time.
const stuckWeight = 10

// stuckCandidates proposes the lock sites a monitor saw make no progress
// (ParkedSite.NoProgress): goroutines parked there at every scan, with no
// lock wait ending that could have been theirs.
func stuckCandidates(rep *Report) []candidate {
	var cs []candidate
	for _, p := range rep.Parked {
		if p.NoProgress <= 0 {
			continue
		}
		h := fmt.Sprintf("stuck lock: %s parked on the %s in %s with no progress for %s",
			textfmt.Plural(p.Waiters, "goroutine", "goroutines"), kindNoun(p.Kind), p.Where(), textfmt.Dur(p.NoProgress))
		f := Finding{Kind: "stuck-lock", Site: p.Where(), Summary: "Stuck lock: " + h[len("stuck lock: "):] + "."}
		f.Evidence = append(f.Evidence,
			"the goroutines were parked at this site at every goroutine scan for that long, and the runtime's lock wait counter "+
				"did not grow as it would have had they been served: nobody released the lock to them",
			"the holder is not waiting here: look for the goroutine inside a function that takes this lock (goroutines-full.txt has every goroutine's stack)")
		cs = append(cs, candidate{headline: h, finding: f, weight: stuckWeight * float64(p.Waiters) * p.NoProgress.Seconds(), current: true})
	}
	return cs
}
