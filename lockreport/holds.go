package lockreport

import (
	"golang.org/x/exp/trace"
)

// The trace has no Lock events, but it shows many holds end to end: a
// goroutine woken at a lock site holds the lock from then on (RWMutex
// waiters are granted the lock when woken; a Mutex waiter that loses the
// race parks again, which cancels the hold), until the wake-up it issues
// with the matching Unlock. Between the two its states say what the
// critical section did: running, waiting for a CPU, in a system call, or
// blocked. Holds that began on the fast path (no wait) or ended without
// waking anyone are not seen; the report says so.

// holdState is the lock a goroutine holds, as far as the trace shows.
type holdState struct {
	site  *siteAgg   // where it waited for the lock
	stack *stackInfo // its stack when it waited: the Lock call
	start int64      // woken: the lock is its from then on
	since int64      // last state change, for the time by state

	// time by state since start
	run, runnable, sys, blocked int64
	// sample is the last stack seen while the goroutine was preempted in
	// the critical section: what it did on the CPU.
	sample *stackInfo
	// inside is the last stack found to run inside the critical section
	// (a memo: a holder is seen at the same stack again and again).
	inside *stackInfo
}

// account adds the time since the last state change to state st.
func (h *holdState) account(st trace.GoState, t int64) {
	d := t - h.since
	h.since = t
	if d <= 0 {
		return
	}
	switch st {
	case trace.GoRunning:
		h.run += d
	case trace.GoRunnable:
		h.runnable += d
	case trace.GoSyscall:
		h.sys += d
	case trace.GoWaiting:
		h.blocked += d
	}
}

// releases reports whether the wake-up op ends a hold taken by waiting as
// kind.
func releases(op string, kind waitKind) bool {
	switch op {
	case "Mutex.Unlock":
		// RWMutex.Lock's writers also take its internal Mutex.
		return kind == kindMutex || kind == kindWLock
	case "RWMutex.Unlock":
		return kind == kindWLock
	case "RWMutex.RUnlock":
		return kind == kindRLock
	}
	return false
}

// holdAgg sums the holds that ended at one critical section.
type holdAgg struct {
	count                       int
	total, max                  int64
	hist                        hist
	run, runnable, sys, blocked int64
	// samples are the stacks seen while preempted inside, by count.
	samples map[*stackInfo]int
	// sections counts the functions whose call spanned the whole hold
	// (Lock and Unlock both under it), by wake-up stack and index in it.
	sections map[section]int
}

type section struct {
	us *stackInfo
	k  int
}

// maxSamples bounds the distinct stacks kept per critical section.
const maxSamples = 16

// endHold records that goroutine hs released the lock it held at t, with
// the wake-up stack us that the critical section h (at the woken
// waiter's site s, who had waited waited) is known by.
func (a *analyzer) endHold(hs *gstate, h *holderAgg, s *siteAgg, us *stackInfo, t, waited int64) {
	hd := &hs.lk.hold
	hd.account(hs.state, t)
	defer func() { hd.site, hd.sample, hd.stack = nil, nil, nil }()
	d := t - hd.start
	if hd.site.kind == kindRLock {
		// Readers take the lock again and again on the fast path,
		// unseen: a read hold is believed only when it is not much
		// longer than the writer it held up waited.
		if d > 10*waited+int64(1e6) {
			return
		}
	} else if hd.site.lastGrantG != hs.id && hd.site.lastGrant > hd.start {
		// Another goroutine got the lock meanwhile: hs released it
		// unseen, and took it again on the fast path.
		return
	}
	// The Lock and the Unlock must be one critical section: the same
	// function (or one that called both through wrappers), called from
	// the same place.
	k, _ := a.owner(us, hd.stack)
	if k < 0 {
		return
	}
	ha := h.holds
	if ha == nil {
		ha = &holdAgg{samples: map[*stackInfo]int{}, sections: map[section]int{}}
		h.holds = ha
	}
	if sk := (section{us, k}); len(ha.sections) < maxSamples || ha.sections[sk] > 0 {
		ha.sections[sk]++
	}
	ha.count++
	ha.total += d
	ha.max = max(ha.max, d)
	ha.hist.add(d)
	ha.run += hd.run
	ha.runnable += hd.runnable
	ha.sys += hd.sys
	ha.blocked += hd.blocked
	if si := hd.sample; si != nil {
		if _, ok := ha.samples[si]; ok || len(ha.samples) < maxSamples {
			ha.samples[si]++
		}
	}
	// The lock was held from start to t: count it once in the union of
	// the holds seen at the site (readers' holds overlap).
	from := max(hd.start, s.heldEnd)
	if t > from {
		s.held += t - from
	}
	s.heldEnd = max(s.heldEnd, t)
}

// owner memoizes ownerIndex for a wake-up stack and another stack of the
// same goroutine.
func (a *analyzer) owner(us, bs *stackInfo) (int, int) {
	if us == nil || bs == nil {
		return -1, -1
	}
	key := [2]*stackInfo{us, bs}
	if key == a.lastOwner {
		return int(a.lastOwnerAt[0]), int(a.lastOwnerAt[1])
	}
	// An integer key: a map hashes it much faster than two pointers.
	ik := uint64(us.id)<<32 | uint64(bs.id)
	r, ok := a.owners[ik]
	if !ok {
		k, j := ownerIndex(us, bs)
		r = [2]int16{int16(k), int16(j)}
		a.owners[ik] = r
	}
	a.lastOwner, a.lastOwnerAt = key, r
	return int(r[0]), int(r[1])
}

// checkHold ends g's hold when stack si, taken while g held the lock,
// runs outside the function that locked it: the goroutine released the
// lock without waking anyone (an Unlock or RUnlock the trace does not
// show) and may have taken it again on the fast path since. It reports
// whether g still holds.
func (a *analyzer) checkHold(g *gstate, si *stackInfo) bool {
	h := g.holding()
	if h == nil {
		return false
	}
	if si == h.inside {
		return true
	}
	if k, _ := a.owner(h.stack, si); k < 0 {
		h.site, h.sample, h.stack = nil, nil, nil
		return false
	}
	h.inside = si
	return true
}
