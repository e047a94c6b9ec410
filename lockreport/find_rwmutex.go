package lockreport

import (
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// starvationFinding: writers at an RWMutex.Lock site waited for readers
// to leave; "" Kind when the site does not show it.
func starvationFinding(s Site) Finding {
	if s.Kind != "RWMutex.Lock" || s.Waits < 3 || (s.P50 < starvationP50 && s.Max < starvationMax) {
		return Finding{}
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
		return Finding{}
	}
	f := Finding{Kind: "writer-starvation", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("RWMutex writer starvation: writers at %s%s waited for readers to leave: %s, median %s, max %s, "+
		"%s in total; %s of it while readers held the lock, mostly %s.",
		siteOf(s), callerPhrase(s.Caller, s.Func), textfmt.Plural(s.Waits, "wait", "waits"), textfmt.Dur(s.P50), textfmt.Dur(s.Max), textfmt.Dur(s.Total),
		textfmt.Pct(float64(readers)/float64(all)), holderPhrase(s, *top))
	for _, h := range s.Holders {
		if h.Op == "RWMutex.RUnlock" {
			f.Evidence = append(f.Evidence, fmt.Sprintf("read section %s: %s of the writers' wait, %s by %s",
				holderAt(h), textfmt.Pct(h.Share), textfmt.Plural(h.Wakeups, "last RUnlock", "last RUnlocks"), textfmt.Plural(h.Goroutines, "goroutine", "goroutines")))
		}
	}
	f.Evidence = append(f.Evidence, "while a writer waits, new readers queue behind it: long read sections stall readers and writers alike; "+
		"shorten the read sections or move slow work out of them")
	return f
}

// convoyFinding: one writer's Unlock wakes many readers at once, again
// and again; "" Kind when the site does not show it. A burst counts the
// distinct readers one Unlock call woke.
func convoyFinding(s Site, a *analyzer) Finding {
	if s.Kind != "RWMutex.RLock" || a == nil {
		return Finding{}
	}
	agg := a.siteByReport(s)
	if agg == nil || agg.bursts < convoyBursts {
		return Finding{}
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
	f.Summary = fmt.Sprintf("Reader convoy at %s%s: %d times, %s woke %.1f readers at once on average (up to %d, of %s); "+
		"readers waited %s in total, max %s.", siteOf(s), callerPhrase(s.Caller, s.Func), agg.bursts, who,
		float64(agg.burstReaders)/float64(agg.bursts), agg.burstMax, textfmt.Plural(s.Waiters, "reader", "readers"), textfmt.Dur(s.Total), textfmt.Dur(s.Max))
	if writer != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the writer's critical section %s has %s of the readers' wait (%s)",
			holderAt(*writer), textfmt.Pct(writer.Share), textfmt.Dur(writer.Wait)))
	}
	f.Evidence = append(f.Evidence, "trace: a burst is the distinct readers one Unlock call woke (the same goroutine and stack, nothing else done in between)",
		"each write stops every reader, then wakes them together; they contend for the CPU and the next writer waits for all of them: "+
			"write less often (batch updates) or publish immutable snapshots (atomic.Pointer) instead")
	return f
}
