package lockreport

import (
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// saturatedFinding: the lock is held nearly all the time by short holds
// on the CPU, so that goroutines queue for it whatever each hold does.
func saturatedFinding(s Site, h Holder, win time.Duration) Finding {
	ho := h.Holds
	f := Finding{Kind: "saturated-lock", Site: siteOf(s)}
	held := heldShare(s, win)
	f.Summary = fmt.Sprintf("Saturated lock: %s%s was held %s of the time (at least; from the first wait to the last), "+
		"~%s per hold by %s%s; %s waited %s in all (%s of it behind that section).",
		lockPhrase(s), callerPhrase(s.Caller, s.Func), textfmt.Pct(held), textfmt.Dur(ho.P50), holderPhrase(s, h), cpuPhrase(h),
		textfmt.Plural(s.Waiters, "goroutine", "goroutines"), textfmt.Dur(s.Total), textfmt.Pct(h.Share))
	f.Evidence = append(f.Evidence, holdsLine(ho),
		fmt.Sprintf("trace: goroutines waited for it during %s of that time", textfmt.Pct(activeContended(s, win))),
		siteLine(s),
		"each hold is short, but the lock is never free: shorten the critical section (move the work out of it), "+
			"or split the lock (shard by key, per-CPU counters)")
	return f
}

// starvedFinding: the holders of a lock spent most of their holds waiting
// for a CPU (runnable, not running), so the lock stayed taken while nobody
// ran its critical section: the waits grow with the process's want of CPU,
// not with the section's code (a CPU limit, throttling, more runnable
// goroutines than GOMAXPROCS).
func starvedFinding(s Site, h Holder) Finding {
	ho := h.Holds
	f := Finding{Kind: "cpu-starved", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("Holders starved of CPU: %s held %s%s ~%s per hold (up to %s), and spent %s of that time waiting for a CPU, "+
		"not running; %s waited %s in all at that site (%s of it behind that section).",
		holderPhrase(s, h), lockPhrase(s), callerPhrase(s.Caller, s.Func), textfmt.Dur(ho.P50), textfmt.Dur(ho.Max), textfmt.Pct(ho.Runnable),
		textfmt.Plural(s.Waiters, "goroutine", "goroutines"), textfmt.Dur(s.Total), textfmt.Pct(h.Share))
	f.Evidence = append(f.Evidence, holdsLine(ho), siteLine(s),
		"the lock wait follows from a shortage of CPU more than from the critical section's code: look at what else uses the CPU "+
			"(a CPU profile), at the container's CPU limit and its throttling (cpu.stat), and at GOMAXPROCS against the CPUs the "+
			"process may use; a shorter critical section is less likely to lose its CPU while it holds the lock")
	return f
}

// longSectionFinding: one critical section holds the lock for long on
// the CPU (an O(n) walk, a callback), and the lock's other users wait.
func longSectionFinding(s Site, h Holder) Finding {
	ho := h.Holds
	f := Finding{Kind: "long-critical-section", Site: siteOf(s)}
	others := ""
	if o := otherHoldsP50(s, &h); o > 0 {
		others = fmt.Sprintf(" (the lock's other critical sections: ~%s)", textfmt.Dur(o))
	}
	f.Summary = fmt.Sprintf("Long critical section: %s holds the lock ~%s per hold, up to %s%s%s; "+
		"%s of the waiting on %s%s (%s of the wait at that site) is behind it.",
		holderPhrase(s, h), textfmt.Dur(ho.P50), textfmt.Dur(ho.Max), others, cpuPhrase(h),
		textfmt.Dur(h.Wait), lockPhrase(s), callerPhrase(s.Caller, s.Func), textfmt.Pct(h.Share))
	f.Evidence = append(f.Evidence, holdsLine(ho))
	if ho.In != "" {
		f.Evidence = append(f.Evidence, fmt.Sprintf("trace: preempted inside it %s, most in %s",
			textfmt.Plural(ho.Samples, "time", "times"), ho.In))
	}
	f.Evidence = append(f.Evidence, siteLine(s))
	if h.Op == "RWMutex.RUnlock" {
		f.Evidence = append(f.Evidence, "a read section: while it runs, a writer waits, and new readers queue behind the writer")
	}
	f.Evidence = append(f.Evidence, "shorten it: do the long work on a copy taken under the lock, in batches that release the lock "+
		"between them, or outside the lock (callbacks after Unlock)")
	return f
}
