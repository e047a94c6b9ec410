package lockreport

import (
	"fmt"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// kindNoun is how the headline names a lock: "the Mutex locked at".
func kindNoun(kind string) string {
	switch kind {
	case "Mutex.Lock":
		return "Mutex locked"
	case "RWMutex.RLock":
		return "RWMutex read-locked"
	case "RWMutex.Lock":
		return "RWMutex write-locked"
	}
	return kind
}

func headline(rep *Report) string {
	if h, ok := stuckHeadline(rep); ok {
		return h
	}
	if len(rep.Sites) > 0 {
		return traceHeadline(rep)
	}
	if h, ok := parkedHeadline(rep); ok {
		return h
	}
	if rep.Window != nil {
		s := fmt.Sprintf("no lock contention in the %s window", textfmt.Dur(rep.Window.Duration))
		if rep.Partial {
			s += " (partial: only part of the window was read)"
		}
		return s
	}
	return profileHeadline(rep)
}

// traceHeadline names the lock site with the most wait and its main
// holder.
func traceHeadline(rep *Report) string {
	s := rep.Sites[0]
	atLeast := ""
	if s.AtLeast > 0 {
		atLeast = "at least "
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s waited %s%s on the %s at %s", textfmt.Plural(s.Waiters, "goroutine", "goroutines"), atLeast,
		textfmt.Dur(s.Total), kindNoun(s.Kind), siteLabel(Frame{Func: s.Func, File: s.File, Line: s.Line}))
	if len(s.Holders) > 0 {
		h := s.Holders[0]
		switch {
		case h.Func == notReleased:
			fmt.Fprintf(&b, "; %s of it behind a holder that had not released the lock when the window ended", textfmt.Pct(h.Share))
		case h.File == "":
			fmt.Fprintf(&b, "; %s of it %s", textfmt.Pct(h.Share), h.Func)
		default:
			fmt.Fprintf(&b, "; %s of it behind %s", textfmt.Pct(h.Share), funcAt(Frame{Func: h.Func, File: h.File, Line: h.Line}))
			if bi := h.BlockedInside; bi != nil && bi.Wait*5 >= h.Wait {
				fmt.Fprintf(&b, ", which held it across %s", blockedPhrase(bi))
			}
		}
	}
	if rep.Partial {
		b.WriteString(" (partial window)")
	}
	return b.String()
}

// stuckHeadline speaks of a lock that makes no progress: it comes first,
// whatever the trace saw before, because it is still going on.
func stuckHeadline(rep *Report) (string, bool) {
	for _, p := range rep.Parked {
		if p.NoProgress > 0 {
			return fmt.Sprintf("stuck lock: %s parked on the %s at %s with no progress for %s",
				textfmt.Plural(p.Waiters, "goroutine", "goroutines"), kindNoun(p.Kind), p.Where(), textfmt.Dur(p.NoProgress)), true
		}
	}
	return "", false
}

// parkedHeadline speaks of the goroutines parked on locks when the window
// ended, when the trace has no lock wait to show: a lock held for longer
// than the window, or no trace at all.
func parkedHeadline(rep *Report) (string, bool) {
	stuck := 0
	for _, w := range rep.Parked {
		stuck += w.Waiters
	}
	if stuck == 0 {
		return "", false
	}
	w := rep.Parked[0]
	return fmt.Sprintf("%s parked right now on locks; %d of them on the %s at %s",
		textfmt.Plural(stuck, "goroutine is", "goroutines are"), w.Waiters, strings.TrimSuffix(w.Kind, ".Lock"), w.Where()), true
}

// profileHeadline speaks of the profiles when there is no trace.
func profileHeadline(rep *Report) string {
	why := "no trace"
	switch {
	case rep.TraceError != "":
		why = "trace unreadable"
	case rep.TraceUnavailable != "":
		why = "trace unavailable: " + rep.TraceUnavailable
	}
	p := rep.Profiles
	if p != nil && len(p.Holders) > 0 {
		h := p.Holders[0]
		s := fmt.Sprintf("mutex profile: %s of lock wait, %s of it charged to the %s in %s", textfmt.Dur(p.MutexTotal), textfmt.Pct(h.Share),
			h.Op, funcAt(Frame{Func: h.Func, File: h.File, Line: h.Line}))
		if len(p.Waiters) > 0 {
			w := p.Waiters[0]
			s += fmt.Sprintf("; most waiting in %s at %s", w.Op, funcAt(Frame{Func: w.Func, File: w.File, Line: w.Line}))
		}
		return s + " (" + why + ")"
	}
	if p != nil && len(p.Waiters) > 0 {
		w := p.Waiters[0]
		return fmt.Sprintf("block profile: %s of waiting, %s of it in %s at %s (%s)", textfmt.Dur(p.BlockTotal), textfmt.Pct(w.Share), w.Op,
			funcAt(Frame{Func: w.Func, File: w.File, Line: w.Line}), why)
	}
	if p != nil && (p.MutexTotal == 0 && len(p.Missing) < 2) {
		return "no lock contention in the profiles (" + why + ")"
	}
	return "nothing to analyze: " + why + " and no profiles"
}

// blockedPhrase is "http.(*Client).Get (net/http)" or "a network wait".
func blockedPhrase(bi *BlockedInside) string {
	via := bi.Via
	if strings.HasSuffix(via, "(net/http)") {
		return "a net/http call, " + strings.TrimSuffix(via, " (net/http)")
	}
	what := map[string]string{
		"network": "a network wait", "syscall": "a system call", "sleep": "a sleep",
		"chan receive": "a channel receive", "chan send": "a channel send", "select": "a select",
		"Cond.Wait": "a Cond.Wait", "WaitGroup.Wait": "a WaitGroup.Wait",
	}[bi.Reason]
	if what == "" {
		what = "a blocking call (" + bi.Reason + ")"
	}
	if via != "" {
		return what + " in " + via
	}
	return what
}

// caveats says what the data at hand cannot show.
func caveats(rep *Report, a *analyzer, opts Options) []string {
	var cs []string
	if a != nil {
		cs = append(cs, "The trace has no lock addresses: different locks taken at the same call site count as one site, "+
			"and one lock taken at two call sites shows as two.")
		if rep.LockWaits > 0 {
			cs = append(cs, "Only waits that parked a goroutine are in the trace: a Lock that succeeded on the fast path or by spinning "+
				"is invisible, and so is how long an uncontended critical section ran.")
			cs = append(cs, "Wait is blamed on critical sections by time: each waiter's time between two wake-ups at its site goes to "+
				"the critical section whose Unlock made the second wake-up. A holder that released the lock without waking "+
				"anyone at this site is not seen; its share goes to the next holder that did.")
		}
		if a.waits.merged > 0 {
			cs = append(cs, fmt.Sprintf("%s: a woken waiter that lost the lock to a running goroutine and parked again "+
				"at the same stack within %s counts as one wait (its Parks field says how many parks).",
				textfmt.Plural(a.waits.merged, "park was merged into the wait before it", "parks were merged into the wait before them"), textfmt.Dur(mergeWindow)))
		}
		if a.waits.atLeast > 0 {
			cs = append(cs, fmt.Sprintf("%s began before the window or went on past its end: "+
				"such durations are lower bounds (\"at least\"). A goroutine blocked before the window without a stack in the trace "+
				"has an unknown site (\"?\"); its kind is inferred from the call that woke it.", textfmt.Plural(a.waits.atLeast, "wait", "waits")))
		}
		for _, s := range rep.Sites {
			for _, h := range s.Holders {
				if h.BlockedInside != nil {
					cs = append(cs, "\"Held across\" is inferred, not seen: the trace has no Lock events, so a holder counts as blocking "+
						"inside its critical section when it blocked in a stack containing the function that later unlocked, "+
						"after it last acquired a contended lock and while others waited.")
					goto doneInside
				}
			}
		}
	doneInside:
	}
	if p := rep.Profiles; p != nil {
		if opts.MutexProfile != nil {
			frac := "at an unknown fraction"
			if opts.MutexFraction > 0 {
				frac = fmt.Sprintf("1 in %d", opts.MutexFraction)
			}
			cs = append(cs, fmt.Sprintf("The mutex profile is sampled (%s contention events, scaled up) and charges the waiters' delay "+
				"to the Unlock call site, not to the Lock; for an RWMutex, readers' wait is charged to the writer's Unlock and "+
				"the writer's to the last RUnlock.", frac))
		}
		if opts.BlockProfile != nil {
			rate := "at an unknown rate"
			if opts.BlockRate > 0 {
				rate = "sampled at a rate of " + textfmt.Dur(time.Duration(opts.BlockRate))
			}
			cs = append(cs, fmt.Sprintf("The block profile (%s) records waits at the Lock or wait call, including channel and "+
				"select waits; time.Sleep never appears in it.", rate))
		}
		if len(p.RuntimeLocks) > 0 {
			cs = append(cs, "Runtime-internal locks are only in the mutex profile: the trace does not show them.")
		}
	}
	if rep.Partial {
		cs = append(cs, "The report is partial: its numbers cover only the part of the window that was read.")
	}
	return cs
}
