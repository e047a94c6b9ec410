package lockreport

import (
	"fmt"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// blockingFinding: the critical section h blocked (network, system call,
// sleep, channel, another lock) while it held the lock, and the waiters
// waited for that.
func blockingFinding(s Site, h Holder) Finding {
	bi := h.BlockedInside
	f := Finding{Kind: "held-across-blocking", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("Lock held across %s: %s held the lock while it blocked; %s of the waiting on %s%s "+
		"(%s of the wait at that site) is behind it.",
		blockedPhrase(bi), holderPhrase(s, h), textfmt.Dur(h.Wait), lockPhrase(s), callerPhrase(s.Caller, s.Func),
		textfmt.Pct(h.Share))
	f.Evidence = append(f.Evidence, fmt.Sprintf("trace: it blocked inside %s, %s in all; up to %s waiting at once when it unlocked",
		textfmt.Plural(bi.Times, "critical section", "critical sections"), textfmt.Dur(bi.Blocked),
		textfmt.Plural(bi.MaxQueued, "goroutine was", "goroutines were")))
	if ho := h.Holds; ho != nil && ho.Count > 0 {
		f.Evidence = append(f.Evidence, holdsLine(ho))
	}
	f.Evidence = append(f.Evidence,
		fmt.Sprintf("holder's stack when it blocked (%s): %s", bi.Reason, stackLine(bi.Stack)),
		siteLine(s),
		"fix: do the blocking call before taking the lock or after releasing it, or hold a copy instead of the lock")
	return f
}

// holdsLine describes the holds the trace saw end to end.
func holdsLine(ho *Holds) string {
	return fmt.Sprintf("trace: %s seen from acquisition to release: median %s, max %s; the holder was running %s of that time, "+
		"waiting for a CPU %s, in system or cgo calls %s, blocked %s",
		textfmt.Plural(ho.Count, "hold", "holds"), textfmt.Dur(ho.P50), textfmt.Dur(ho.Max), textfmt.Pct(ho.Running),
		textfmt.Pct(ho.Runnable), textfmt.Pct(ho.Syscall), textfmt.Pct(ho.Blocked))
}

// siteLine sums a site's waits, from the trace.
func siteLine(s Site) string {
	return fmt.Sprintf("trace: %s by %s at %s, %s in total, median %s, max %s",
		textfmt.Plural(s.Waits, "wait", "waits"), textfmt.Plural(s.Waiters, "goroutine", "goroutines"), siteOf(s),
		textfmt.Dur(s.Total), textfmt.Dur(s.P50), textfmt.Dur(s.Max))
}
