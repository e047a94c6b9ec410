package lockreport

import (
	"fmt"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// kindNoun is how the headline names a lock: "the Mutex locked in".
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

// lockPhrase names a lock site for a sentence: "the Mutex locked in
// logrus.(*Logger).hooksForLevel (logger.go:423) through
// logrus.(*mutexWrap).Lock (and in 3 other places) (module
// github.com/sirupsen/logrus)".
func lockPhrase(s Site) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the %s in %s", kindNoun(s.Kind), siteOf(s))
	if n := len(s.Via); n > 0 {
		fmt.Fprintf(&b, " through %s", s.Via[n-1])
	}
	if n := len(s.Entries); n > 0 {
		fmt.Fprintf(&b, " (and in %s)", textfmt.Plural(n, "other place", "other places"))
	}
	if s.Module != "" {
		fmt.Fprintf(&b, " (module %s)", s.Module)
	}
	return b.String()
}

// callerPhrase is ", called from main.handleRequest" when the program's
// own code is not the site itself.
func callerPhrase(caller, fn string) string {
	if caller == "" || caller == fn {
		return ""
	}
	return ", called from " + name(caller)
}

// holderPhrase names a critical section: "logrus.(*Entry).write
// (entry.go:394)", "the read section lru.(*Cache[...]).Keys
// (lru.go:232), called from main.exportKeys".
func holderPhrase(s Site, h Holder) string {
	what := holderAt(h)
	switch h.Op {
	case "RWMutex.RUnlock":
		what = "the read section " + what
	case "RWMutex.Unlock":
		what = "the write section " + what
	}
	if n := len(h.Via); n > 0 {
		if _, ok := stacks.Closure(h.Func); ok && h.File != "" && !strings.HasPrefix(h.Via[n-1], name(h.Func)) {
			what += " (run under the lock by " + h.Via[n-1] + ")"
		}
	}
	if h.Section != "" {
		what = "the critical section of " + name(h.Section) + ", released in " + holderAt(h)
	}
	if h.Module != "" && h.Module != s.Module {
		what += " (module " + h.Module + ")"
	}
	if h.Caller != s.Caller {
		what += callerPhrase(h.Caller, h.Func)
	}
	return what
}

// siteHeadline is the headline sentence of a lock site explained by kind
// (see classifySite) about its critical section h.
func siteHeadline(s Site, h *Holder, kind string, win time.Duration) string {
	var b strings.Builder
	atLeast := ""
	if s.AtLeast > 0 {
		atLeast = "at least "
	}
	fmt.Fprintf(&b, "%s waited %s%s on %s%s", textfmt.Plural(s.Waiters, "goroutine", "goroutines"), atLeast,
		textfmt.Dur(s.Total), lockPhrase(s), callerPhrase(s.Caller, s.Func))
	if h == nil {
		if len(s.Holders) > 0 && s.Holders[0].Func == notReleased {
			fmt.Fprintf(&b, "; %s of it behind a holder that had not released the lock when the window ended", textfmt.Pct(s.Holders[0].Share))
		} else if len(s.Holders) > 0 {
			fmt.Fprintf(&b, "; %s of it %s", textfmt.Pct(s.Holders[0].Share), s.Holders[0].Func)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "; %s of it behind %s", textfmt.Pct(h.Share), holderPhrase(s, *h))
	switch kind {
	case "held-across-blocking":
		fmt.Fprintf(&b, ", which held it across %s", blockedPhrase(h.BlockedInside))
	case "cpu-starved":
		fmt.Fprintf(&b, ", whose holders waited for a CPU %s of the time they held it: the process was short of CPU", textfmt.Pct(h.Holds.Runnable))
	case "saturated-lock":
		ho := h.Holds
		fmt.Fprintf(&b, ", which holds it ~%s at a time%s: the lock is saturated (held %s of the time)",
			textfmt.Dur(ho.P50), cpuPhrase(*h), textfmt.Pct(heldShare(s, win)))
	case "long-critical-section":
		ho := h.Holds
		rel := ""
		if o := otherCPUPerHold(s, h); o > 0 && ho.P50 < longHold {
			rel = fmt.Sprintf(", %.0f× the CPU per hold of the lock's other critical sections", float64(cpuPerHold(*h))/float64(o))
		}
		fmt.Fprintf(&b, ", a long critical section: ~%s per hold (up to %s)%s%s", textfmt.Dur(ho.P50), textfmt.Dur(ho.Max), cpuPhrase(*h), rel)
	case "writer-starvation":
		b.WriteString(": writers wait for the readers (writer starvation)")
	case "reader-convoy":
		b.WriteString(": each write wakes a crowd of readers (reader convoy)")
	default:
		if bi := h.BlockedInside; bi != nil && bi.Wait*5 >= h.Wait {
			fmt.Fprintf(&b, ", which held it across %s", blockedPhrase(bi))
		}
	}
	return b.String()
}

// cpuPhrase is " on the CPU in main.burnSHA" for holds that ran.
func cpuPhrase(h Holder) string {
	ho := h.Holds
	if ho == nil || ho.Running+ho.Runnable < cpuShare {
		return ""
	}
	s := " on the CPU"
	if ho.In != "" && ho.In != name(h.Func) {
		s += " in " + ho.In
	}
	return s
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
	return fmt.Sprintf("%s parked right now on locks; %d of them on the %s in %s",
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

// blockedPhrase says what a holder blocked in: "a network wait
// (net.(*conn).Read in main.(*ackSink).Write)", "a net/http call
// (http.(*Client).Get in main.fetchRates)", "a sleep (time.Sleep in
// main.handlePrice)".
func blockedPhrase(bi *BlockedInside) string {
	what := map[string]string{
		"network": "a network wait", "syscall": "a system call", "sleep": "a sleep",
		"chan receive": "a channel receive", "chan send": "a channel send", "select": "a select",
		"Cond.Wait": "a Cond.Wait", "WaitGroup.Wait": "a WaitGroup.Wait",
		"Mutex.Lock": "a wait for another Mutex", "RWMutex.RLock": "a wait for another RWMutex",
		"RWMutex.Lock": "a wait for another RWMutex",
	}[bi.Reason]
	if what == "" {
		what = "a blocking call (" + bi.Reason + ")"
	}
	if strings.HasPrefix(bi.Call, "http.") || bi.Call == "" && (strings.HasSuffix(bi.Via, "(net/http)") || bi.Via == "net/http") {
		what = "a net/http call"
	}
	switch {
	case bi.Call != "" && bi.In != "":
		return what + " (" + bi.Call + " in " + bi.In + ")"
	case bi.In != "":
		return what + " in " + bi.In
	case bi.Via != "":
		return what + " in " + bi.Via
	}
	return what
}

// caveats says what the data at hand cannot show.
func caveats(rep *Report, a *analyzer, opts Options) []string {
	var cs []string
	if a != nil {
		if c := siteCaveat(rep); c != "" {
			cs = append(cs, c)
		}
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
		if a.waits.inferred > 0 {
			cs = append(cs, fmt.Sprintf("%s of goroutines blocked before the window began, announced without a stack, "+
				"are counted at the site whose critical sections woke them.", textfmt.Plural(a.waits.inferred, "wait", "waits")))
		}
		if a.waits.ownWaits > 0 {
			cs = append(cs, fmt.Sprintf("lockdiag's own goroutines (its monitor, recorder and snapshot collection) are left out: "+
				"%s, %s in all.", textfmt.Plural(a.waits.ownWaits, "wait", "waits"), textfmt.Dur(time.Duration(a.waits.ownTotal))))
		}
		if rep.MainModule != "" {
			cs = append(cs, fmt.Sprintf("The program's own code is taken to be %s (from %s); \"called from\" names its first function "+
				"on a stack.", mainModuleName(rep.MainModule), rep.MainModuleSource))
		}
		if hasHolds(rep) {
			cs = append(cs, "Holds are seen end to end only when the holder had waited for the lock (so its acquisition shows) "+
				"and its Unlock woke another goroutine; holds taken on the fast path or ended without a waiter are not in them.")
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
						"inside its critical section when it blocked within the call of the function that unlocked (called from the same "+
						"place), after it acquired the lock (when the trace showed that) and while others waited.")
					goto doneInside
				}
			}
		}
	doneInside:
	}
	if p := rep.Profiles; p != nil {
		if opts.MutexProfile != nil {
			frac := "at an unknown fraction"
			if ms := p.mutexScale(); ms.mixed() || opts.MutexFraction > 0 {
				frac = ms.String()
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
	if c := namedCaveat(rep); c != "" {
		cs = append(cs, c)
	}
	if rep.Partial {
		cs = append(cs, "The report is partial: its numbers cover only the part of the window that was read.")
	}
	return cs
}

func mainModuleName(m string) string {
	if m == "main" {
		return "package main"
	}
	return "module " + m + " and package main"
}

func hasHolds(rep *Report) bool {
	for _, s := range rep.Sites {
		for _, h := range s.Holders {
			if h.Holds != nil {
				return true
			}
		}
	}
	return false
}
