package flightrec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// Sizes of the lists in the report.
const (
	holdersPerSite = 5
	stackDepth     = 5
	threadsInRep   = 256
)

// fill turns the analyzer's aggregates into the report. Sites are not
// truncated to Top yet: the profile join and the findings look at all.
func (a *analyzer) fill(rep *Report) {
	gens := a.syncs
	if a.eof && gens > 0 {
		gens--
	}
	w := &Window{StartNs: a.start, EndNs: a.last, Duration: time.Duration(a.last - a.start),
		Bytes: a.bytes, Events: a.events, Generations: gens}
	if a.clock != nil {
		w.Start = a.clock.Wall.Add(time.Duration(a.start - int64(a.clock.Trace)))
		w.End = a.clock.Wall.Add(time.Duration(a.last - int64(a.clock.Trace)))
		// A corrupt snapshot can give any time; JSON takes years 0-9999.
		if w.Start.Year() < 1970 || w.End.Year() > 9999 || w.End.Before(w.Start) {
			w.Start, w.End = time.Time{}, time.Time{}
		}
	}
	rep.Window = w
	rep.Partial, rep.PartialReason = a.partial, a.partialReason
	rep.LockWait, rep.LockWaits = time.Duration(a.lockTotal), a.lockCount

	var syncTotal int64
	for _, s := range a.siteList {
		if !s.kind.isLock() && s.waits > 0 {
			syncTotal += s.total
		}
	}
	for _, s := range a.siteList {
		if s.waits == 0 {
			continue
		}
		if s.kind.isLock() {
			rep.Sites = append(rep.Sites, a.siteReport(s, a.lockTotal))
		} else {
			rep.SyncSites = append(rep.SyncSites, a.siteReport(s, syncTotal))
		}
	}
	bySiteTotal := func(x, y Site) int {
		if c := cmp.Compare(y.Total, x.Total); c != 0 {
			return c
		}
		return cmp.Compare(siteLabel(Frame{Func: x.Func, File: x.File, Line: x.Line}), siteLabel(Frame{Func: y.Func, File: y.File, Line: y.Line}))
	}
	slices.SortFunc(rep.Sites, bySiteTotal)
	slices.SortFunc(rep.SyncSites, bySiteTotal)
	rep.SitesTotal = len(rep.Sites)

	for k := waitKind(0); k < numKinds; k++ {
		o := a.other[k]
		if o.waits == 0 || k == kindRuntime {
			continue
		}
		rep.OtherWaits = append(rep.OtherWaits, ReasonTotal{Reason: k.String(), Waits: o.waits, AtLeast: o.atLeast,
			Total: time.Duration(o.total), Max: time.Duration(o.max)})
	}
	slices.SortFunc(rep.OtherWaits, func(x, y ReasonTotal) int { return cmp.Compare(y.Total, x.Total) })

	for _, h := range []waitHeap{a.lockWaits, a.syncWaits} {
		ws := slices.Clone(h)
		slices.SortFunc(ws, func(x, y waitRec) int { return cmp.Compare(y.dur, x.dur) })
		for _, wr := range ws {
			rep.Waits = append(rep.Waits, a.waitReport(wr))
		}
	}

	for _, tr := range a.threadList {
		ta := ThreadActivity{Thread: int64(tr.id), Goroutine: int64(tr.gid), LastRun: time.Duration(tr.lastRun - a.start)}
		var st *stackInfo
		switch {
		case tr.exited || tr.g != nil && (tr.g.state == trace.GoNotExist || a.goroutine(tr.gid) != tr.g):
			ta.State = "exited"
			st = tr.exitStack
			if !tr.exited {
				st = tr.g.lastStack
			}
		case tr.g != nil:
			ta.State = goStateString(tr.g)
			st = tr.g.lastStack
			if tr.g.waiting || tr.g.pend.valid {
				st = tr.g.stack
			}
		}
		if st != nil {
			ta.Stack = st.short(stackDepth)
		}
		rep.Threads = append(rep.Threads, ta)
	}
	slices.SortFunc(rep.Threads, func(x, y ThreadActivity) int { return cmp.Compare(x.Thread, y.Thread) })
	if len(rep.Threads) > threadsInRep {
		rep.Threads = rep.Threads[:threadsInRep]
	}
}

func goStateString(g *gstate) string {
	switch g.state {
	case trace.GoRunning:
		return "running"
	case trace.GoRunnable:
		return "runnable"
	case trace.GoSyscall:
		return "syscall"
	case trace.GoWaiting:
		if g.kind != kindUnknown {
			return "waiting: " + g.kind.String()
		}
		return "waiting"
	}
	return g.state.String()
}

func (a *analyzer) holderFrame(id int) (op string, f Frame) {
	switch id {
	case holderNone:
		return "", Frame{Func: "(woken by the runtime or a timer)"}
	case holderNotFreed:
		return "", Frame{Func: "(not released in the window)"}
	}
	hk := a.holders[id]
	return hk.op, Frame{Func: hk.fn, File: hk.file, Line: hk.line}
}

func (a *analyzer) siteReport(s *siteAgg, grand int64) Site {
	out := Site{Kind: s.kind.String(), Func: s.frame.Func, File: s.frame.File, Line: s.frame.Line,
		Waits: s.waits, AtLeast: s.atLeast, Waiters: len(s.waiters),
		Total: time.Duration(s.total), Max: time.Duration(s.max),
		P50: s.hist.quantile(0.50, s.max), P99: s.hist.quantile(0.99, s.max)}
	if grand > 0 {
		out.Share = float64(s.total) / float64(grand)
	}
	if s.stack != nil {
		out.Stack = s.stack.short(stackDepth)
	}
	hs := make([]*holderAgg, 0, len(s.holders))
	for _, h := range s.holders {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(x, y *holderAgg) int {
		if c := cmp.Compare(y.blame, x.blame); c != 0 {
			return c
		}
		return cmp.Compare(x.id, y.id)
	})
	for _, h := range hs {
		if len(out.Holders) == holdersPerSite {
			break
		}
		if h.blame <= 0 && h.wakeups == 0 {
			continue
		}
		op, f := a.holderFrame(h.id)
		ho := Holder{Op: op, Func: f.Func, File: f.File, Line: f.Line, Wait: time.Duration(h.blame),
			Wakeups: h.wakeups, Goroutines: len(h.goroutines)}
		if s.blamed > 0 {
			ho.Share = float64(h.blame) / float64(s.blamed)
		}
		if h.stack != nil {
			ho.Stack = h.stack.short(stackDepth)
		}
		if in := h.inside; in != nil && in.stack != nil {
			ho.BlockedInside = &BlockedInside{Reason: in.kind.String(), Via: insideVia(in.stack, f.Func),
				Times: in.times, Blocked: time.Duration(in.blocked), Wait: time.Duration(in.wait),
				MaxQueued: in.maxQueued, Stack: in.stack.short(stackDepth)}
		}
		out.Holders = append(out.Holders, ho)
	}
	return out
}

// insideVia names the call the critical section made when it blocked:
// the frame it called, e.g. "http.(*Client).Get (net/http)".
func insideVia(si *stackInfo, holderFn string) string {
	var callee string
	for i, f := range si.frames {
		if f.Func == holderFn {
			if i > 0 && !internalFunc(si.frames[i-1].Func) && si.frames[i-1].Func != "time.Sleep" {
				callee = shortFunc(si.frames[i-1].Func)
			}
			break
		}
	}
	switch {
	case si.http && callee != "":
		return callee + " (net/http)"
	case si.http:
		return "net/http"
	}
	return callee
}

func (a *analyzer) waitReport(w waitRec) Wait {
	out := Wait{Kind: w.kind.String(), Goroutine: int64(w.g), Start: time.Duration(w.start - a.start),
		Duration: time.Duration(w.dur), AtLeast: w.atLeast, Unblocker: int64(w.unblocker)}
	if w.parks > 1 {
		out.Parks = w.parks
	}
	if w.site != nil {
		out.Site = siteLabel(w.site.frame)
	}
	if w.stack != nil {
		out.Stack = w.stack.short(stackDepth)
	}
	if w.ustack != nil {
		out.UnblockerStack = w.ustack.short(stackDepth)
	}
	return out
}

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

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func pct(f float64) string {
	p := f * 100
	if p > 99 && p < 100 {
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.0f%%", p)
}

func headline(rep *Report) string {
	if len(rep.Sites) > 0 {
		s := rep.Sites[0]
		atLeast := ""
		if s.AtLeast > 0 {
			atLeast = "at least "
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s waited %s%s on the %s at %s", plural(s.Waiters, "goroutine", "goroutines"), atLeast,
			fmtDur(s.Total), kindNoun(s.Kind), siteLabel(Frame{Func: s.Func, File: s.File, Line: s.Line}))
		if len(s.Holders) > 0 {
			h := s.Holders[0]
			switch {
			case h.Func == "(not released in the window)":
				fmt.Fprintf(&b, "; %s of it behind a holder that had not released the lock when the window ended", pct(h.Share))
			case h.File == "":
				fmt.Fprintf(&b, "; %s of it %s", pct(h.Share), h.Func)
			default:
				fmt.Fprintf(&b, "; %s of it behind %s", pct(h.Share), funcAt(Frame{Func: h.Func, File: h.File, Line: h.Line}))
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
	if rep.Window != nil {
		s := fmt.Sprintf("no lock contention in the %s window", fmtDur(rep.Window.Duration))
		if rep.Partial {
			s += " (partial: only part of the window was read)"
		}
		return s
	}
	// No trace: the profiles are the report.
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
		s := fmt.Sprintf("mutex profile: %s of lock wait, %s of it charged to the %s in %s", fmtDur(p.MutexTotal), pct(h.Share),
			h.Op, funcAt(Frame{Func: h.Func, File: h.File, Line: h.Line}))
		if len(p.Waiters) > 0 {
			w := p.Waiters[0]
			s += fmt.Sprintf("; most waiting in %s at %s", w.Op, funcAt(Frame{Func: w.Func, File: w.File, Line: w.Line}))
		}
		return s + " (" + why + ")"
	}
	if p != nil && len(p.Waiters) > 0 {
		w := p.Waiters[0]
		return fmt.Sprintf("block profile: %s of waiting, %s of it in %s at %s (%s)", fmtDur(p.BlockTotal), pct(w.Share), w.Op,
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
func caveats(rep *Report, a *analyzer, opts AnalyzeOptions) []string {
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
		if a.merged > 0 {
			cs = append(cs, fmt.Sprintf("%s: a woken waiter that lost the lock to a running goroutine and parked again "+
				"at the same stack within %s counts as one wait (its Parks field says how many parks).",
				plural(a.merged, "park was merged into the wait before it", "parks were merged into the wait before them"), fmtDur(mergeWindow)))
		}
		if a.atLeast > 0 {
			cs = append(cs, fmt.Sprintf("%s began before the window or went on past its end: "+
				"such durations are lower bounds (\"at least\"). A goroutine blocked before the window without a stack in the trace "+
				"has an unknown site (\"?\"); its kind is inferred from the call that woke it.", plural(a.atLeast, "wait", "waits")))
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
		if opts.Mutex != nil {
			frac := "at an unknown fraction"
			if opts.MutexFraction > 0 {
				frac = fmt.Sprintf("1 in %d", opts.MutexFraction)
			}
			cs = append(cs, fmt.Sprintf("The mutex profile is sampled (%s contention events, scaled up) and charges the waiters' delay "+
				"to the Unlock call site, not to the Lock; for an RWMutex, readers' wait is charged to the writer's Unlock and "+
				"the writer's to the last RUnlock.", frac))
		}
		if opts.Block != nil {
			rate := "at an unknown rate"
			if opts.BlockRate > 0 {
				rate = "sampled at a rate of " + fmtDur(time.Duration(opts.BlockRate))
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
