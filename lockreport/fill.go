package lockreport

import (
	"cmp"
	"slices"
	"time"

	"golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/internal/stacks"
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
	gens := a.win.syncs
	if a.win.eof && gens > 0 {
		gens--
	}
	w := &Window{StartNs: a.win.start, EndNs: a.win.last, Duration: time.Duration(a.win.last - a.win.start),
		Bytes: a.win.bytes, Events: a.win.events, Generations: gens}
	if c := a.win.clock; c != nil {
		w.Start = c.Wall.Add(time.Duration(a.win.start - int64(c.Trace)))
		w.End = c.Wall.Add(time.Duration(a.win.last - int64(c.Trace)))
		// A corrupt snapshot can give any time; JSON takes years 0-9999.
		if w.Start.Year() < 1970 || w.End.Year() > 9999 || w.End.Before(w.Start) {
			w.Start, w.End = time.Time{}, time.Time{}
		}
	}
	rep.Window = w
	rep.Partial, rep.PartialReason = a.partial != "", a.partial
	rep.LockWait, rep.LockWaits = time.Duration(a.waits.lockTotal), a.waits.lockCount

	var syncTotal int64
	for _, s := range a.sites.list {
		if !s.kind.isLock() && s.waits > 0 {
			syncTotal += s.total
		}
	}
	for _, s := range a.sites.list {
		if s.waits == 0 {
			continue
		}
		if s.kind.isLock() {
			rep.Sites = append(rep.Sites, a.siteReport(s, a.waits.lockTotal))
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
		o := a.sites.other[k]
		if o.waits == 0 || k == kindRuntime {
			continue
		}
		rep.OtherWaits = append(rep.OtherWaits, ReasonTotal{Reason: k.String(), Waits: o.waits, AtLeast: o.atLeast,
			Total: time.Duration(o.total), Max: time.Duration(o.max)})
	}
	slices.SortFunc(rep.OtherWaits, func(x, y ReasonTotal) int { return cmp.Compare(y.Total, x.Total) })

	for _, h := range []waitHeap{a.waits.lockWaits, a.waits.syncWaits} {
		ws := slices.Clone(h)
		slices.SortFunc(ws, func(x, y waitRec) int { return cmp.Compare(y.dur, x.dur) })
		for _, wr := range ws {
			rep.Waits = append(rep.Waits, a.waitReport(wr))
		}
	}

	for _, tr := range a.threads.list {
		ta := ThreadActivity{Thread: int64(tr.id), Goroutine: int64(tr.gid), LastRun: time.Duration(tr.lastRun - a.win.start)}
		var st *stackInfo
		switch {
		case tr.exited || tr.g != nil && (tr.g.state == trace.GoNotExist || a.gs.get(tr.gid) != tr.g):
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

// notReleased is the Func of the pseudo-holder that stands for waits still
// going when the window ended.
const notReleased = "(not released in the window)"

func (a *analyzer) holderFrame(id int) (op string, f Frame) {
	switch id {
	case holderNone:
		return "", Frame{Func: "(woken by the runtime or a timer)"}
	case holderNotFreed:
		return "", Frame{Func: notReleased}
	}
	hk := a.stacks.holders[id]
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
			if i > 0 && callSite(si.frames[i-1].Func) {
				callee = stacks.Short(si.frames[i-1].Func)
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
	out := Wait{Kind: w.kind.String(), Goroutine: int64(w.g), Start: time.Duration(w.start - a.win.start),
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
