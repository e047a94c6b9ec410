package lockreport

import "time"

// parkedCandidates proposes the goroutines parked on locks when the
// window ended, when the trace shows no lock wait (no trace, or a lock
// held since before the window with nobody woken).
func parkedCandidates(rep *Report) []candidate {
	if len(rep.Sites) > 0 {
		return nil
	}
	h, ok := parkedHeadline(rep)
	if !ok {
		return nil
	}
	n := 0
	for _, p := range rep.Parked {
		n += p.Waiters
	}
	return []candidate{{headline: h, weight: float64(n), current: true}}
}

// profileCandidates proposes what the profiles say when there is no
// trace to say more.
func profileCandidates(rep *Report) []candidate {
	p := rep.Profiles
	if rep.Window != nil || p == nil || len(p.Holders) == 0 && len(p.Waiters) == 0 {
		return nil
	}
	var w time.Duration
	for _, h := range p.Holders {
		w += h.Delay
	}
	if len(p.Holders) == 0 {
		w = p.BlockTotal
	}
	return []candidate{{headline: profileHeadline(rep), weight: w.Seconds(), current: true}}
}
