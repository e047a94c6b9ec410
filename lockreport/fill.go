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
	// a waiter stack is shown down to the program's frame, at most this deep
	maxSiteStack = 12
	threadsInRep = 256
	entriesInRep = 5
)

// fill turns the analyzer's aggregates into the report. Sites are not
// truncated to Top yet: the profile join and the findings look at all.
// The profiles' stacks teach the wrapper knowledge too.
func (a *analyzer) fill(rep *Report, prof profiles) {
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
	rep.LockdiagWaits, rep.LockdiagWait = a.waits.ownWaits, time.Duration(a.waits.ownTotal)

	a.mergeUnknown()
	wk := &a.stacks.wraps
	learnProfiles(wk, prof)
	wk.finish()
	a.learnWith()
	var waiterStacks []*stackInfo
	for _, s := range a.sites.list {
		if s.waits > 0 {
			waiterStacks = append(waiterStacks, s.stacks...)
			if s.stack != nil && len(s.stacks) == 0 {
				waiterStacks = append(waiterStacks, s.stack)
			}
		}
	}
	a.prog = guessProgram(a.opts, waiterStacks)
	rep.MainModule, rep.MainModuleSource = a.prog.module, a.prog.source

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
			out := a.siteReport(s, a.waits.lockTotal)
			if a.reported == nil {
				a.reported = map[string]*siteAgg{}
			}
			a.reported[out.Kind+"\x00"+siteOf(out)] = s
			rep.Sites = append(rep.Sites, out)
		} else {
			rep.SyncSites = append(rep.SyncSites, a.siteReport(s, syncTotal))
		}
	}
	bySiteTotal := func(x, y Site) int {
		if c := cmp.Compare(y.Total, x.Total); c != 0 {
			return c
		}
		return cmp.Compare(siteOf(x), siteOf(y))
	}
	slices.SortFunc(rep.Sites, bySiteTotal)
	slices.SortFunc(rep.SyncSites, bySiteTotal)
	rep.SitesTotal = len(rep.Sites)

	rep.CgoCalls = a.cgoSites()
	if len(rep.CgoCalls) > a.opts.Top {
		rep.CgoCalls = rep.CgoCalls[:a.opts.Top]
	}

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
			g := tr.g
			ta.State = goStateString(g)
			st = g.lastStack
			if g.waiting || g.pending() {
				st = g.stack
			}
			switch {
			case g.state == trace.GoSyscall && g.sysStart != 0:
				ta.Since, ta.AtLeast = time.Duration(g.sysStart-a.win.start), g.sysAtLeast
				if g.sysStack != nil {
					st = g.sysStack
				}
			case g.waiting:
				ta.Since, ta.AtLeast = time.Duration(g.start-a.win.start), g.atLeast
			}
		}
		if st != nil {
			ta.Stack = st.short(stackDepth)
			if c, ok := a.prog.callerIn(st.frames, max(st.site, 0)); ok && !slices.Contains(ta.Stack, c) {
				ta.Stack = append(ta.Stack, c)
			}
		}
		rep.Threads = append(rep.Threads, ta)
	}
	slices.SortFunc(rep.Threads, func(x, y ThreadActivity) int { return cmp.Compare(x.Thread, y.Thread) })
	if len(rep.Threads) > threadsInRep {
		rep.Threads = rep.Threads[:threadsInRep]
	}
}

// learnWith finds the with-lock helpers: a critical section seen from
// inside (a block, a system call, a preemption) whose owner called a
// closure of an outer frame.
func (a *analyzer) learnWith() {
	wk := &a.stacks.wraps
	for _, s := range a.sites.list {
		if !s.kind.isLock() {
			continue
		}
		for _, h := range s.holders {
			if h.stack == nil {
				continue
			}
			if in := h.inside; in != nil && in.stack != nil {
				if _, j := a.owner(h.stack, in.stack); j >= 0 {
					wk.learnInside(in.stack.frames, j)
				}
			}
			if h.holds != nil {
				for si := range h.holds.samples {
					if _, j := a.owner(h.stack, si); j >= 0 {
						wk.learnInside(si.frames, j)
					}
				}
			}
		}
	}
}

func goStateString(g *gstate) string {
	switch g.state {
	case trace.GoRunning:
		return "running"
	case trace.GoRunnable:
		return "runnable"
	case trace.GoSyscall:
		if g.sysStack != nil && g.sysStack.cgo {
			return "cgo call"
		}
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
		Waits: s.waits, AtLeast: s.atLeast, Waiters: s.waiters.len(),
		Total: time.Duration(s.total), Max: time.Duration(s.max),
		P50: s.hist.quantile(0.50, s.max), P99: s.hist.quantile(0.99, s.max)}
	if grand > 0 {
		out.Share = float64(s.total) / float64(grand)
	}
	a.siteTime(s, &out)
	if s.kind.isLock() {
		out.Named = siteNamed(s)
		a.siteEntries(s, &out)
	} else if s.stack != nil {
		out.Stack = s.stack.short(stackDepth)
	}

	// Holders: the critical sections, each once, past the unlock
	// wrappers.
	groups := map[holderKey]*holderGroup{}
	var order []*holderGroup
	for _, h := range s.holders {
		if h.blame <= 0 && h.wakeups == 0 {
			continue
		}
		hg := a.holderOf(s, h)
		key := holderKey{op: hg.op, fn: hg.frame.Func, file: hg.frame.File, line: hg.frame.Line}
		if g := groups[key]; g != nil {
			g.merge(h)
			continue
		}
		groups[key] = hg
		order = append(order, hg)
	}
	slices.SortFunc(order, func(x, y *holderGroup) int {
		if c := cmp.Compare(y.blame, x.blame); c != 0 {
			return c
		}
		return cmp.Compare(x.id, y.id)
	})
	for _, hg := range order {
		if len(out.Holders) == holdersPerSite {
			break
		}
		out.Holders = append(out.Holders, a.holderReport(s, hg))
	}
	return out
}

// siteTime fills when the site's waits happened.
func (a *analyzer) siteTime(s *siteAgg, out *Site) {
	if s.first >= 0 {
		out.First = time.Duration(s.first - a.win.start)
	}
	out.Last = time.Duration(s.lastEnd - a.win.start)
	if s.lastServed > 0 {
		out.LastServed = time.Duration(s.lastServed - a.win.start)
	}
	out.WaitingAtEnd = s.openAtEnd
	for _, n := range s.perSec {
		out.PerSecond = append(out.PerSecond, int(n))
	}
	if win := a.win.last - a.win.start; win > 0 && s.kind.isLock() {
		out.Contended = min(float64(s.busy)/float64(win), 1)
		out.Held = min(float64(s.held)/float64(win), 1)
	}
}

// siteEntries names a lock site by the first frame past the lock
// wrappers of its waiters' stacks, and lists the other places the same
// wrapper was entered from.
func (a *analyzer) siteEntries(s *siteAgg, out *Site) {
	type entry struct {
		f     Frame
		si    *stackInfo // the stack with the most wait
		at    int
		waits int
		total int64
		best  int64
	}
	wk := &a.stacks.wraps
	var list []*entry
	byFrame := map[Frame]*entry{}
	for _, si := range s.stacks {
		e := wk.lockEntry(si)
		if e < 0 {
			continue
		}
		f := si.frames[e]
		en := byFrame[f]
		if en == nil {
			en = &entry{f: f}
			byFrame[f] = en
			list = append(list, en)
		}
		en.waits += si.lw.waits
		en.total += si.lw.total
		if en.si == nil || si.lw.total > en.best {
			en.si, en.at, en.best = si, e, si.lw.total
		}
	}
	if len(list) == 0 {
		if s.stack != nil {
			out.Stack = s.stack.short(stackDepth)
		}
		return
	}
	slices.SortFunc(list, func(x, y *entry) int {
		if c := cmp.Compare(y.total, x.total); c != 0 {
			return c
		}
		return cmp.Compare(siteLabel(x.f), siteLabel(y.f))
	})
	top := list[0]
	out.Func, out.File, out.Line = top.f.Func, top.f.File, top.f.Line
	si := top.si
	for _, f := range si.frames[si.site:top.at] {
		out.Via = append(out.Via, name(f.Func))
	}
	out.Module = a.prog.moduleOf(top.f.Func)
	end := top.at
	if c, ok := a.prog.callerIn(si.frames, top.at); ok {
		out.Caller = c.Func
		for end < len(si.frames) && si.frames[end] != c {
			end++
		}
	}
	from := max(si.site-1, 0)
	out.Stack = shortStack(si.frames[from:min(len(si.frames), end+2)], maxSiteStack)
	for _, en := range list[1:] {
		if len(out.Entries) == entriesInRep {
			break
		}
		out.Entries = append(out.Entries, SiteEntry{Func: en.f.Func, File: en.f.File, Line: en.f.Line,
			Waits: en.waits, Total: time.Duration(en.total)})
	}
}

// holderGroup is one critical section: the holder aggregates whose
// wake-up stacks lead to the same function past the wrappers.
type holderGroup struct {
	id      int
	op      string
	frame   Frame
	via     []string
	caller  string
	blame   int64
	wakeups int
	gs      goSet
	stack   *stackInfo
	owner   int // index of the owner in stack
	inside  *insideAgg
	ownerIn int // index of the owner in inside.stack
	holds   *holdAgg
}

// holderOf names the critical section of holder aggregate h.
func (a *analyzer) holderOf(s *siteAgg, h *holderAgg) *holderGroup {
	op, f := a.holderFrame(h.id)
	hg := &holderGroup{id: h.id, op: op, frame: f, blame: h.blame, wakeups: h.wakeups,
		stack: h.stack, owner: -1, inside: h.inside, ownerIn: -1, holds: h.holds}
	hg.gs.addAll(&h.goroutines)
	us := h.stack
	if us == nil || us.site < 0 || !s.kind.isLock() {
		return hg
	}
	wk := &a.stacks.wraps
	o := wk.unlockOwner(us)
	hg.owner = o
	for _, fr := range us.frames[us.site:o] {
		hg.via = append(hg.via, name(fr.Func))
	}
	hg.frame = us.frames[o]
	if cb, ok := wk.callback[hg.frame.Func]; ok {
		// A with-lock helper: the critical section is the function it
		// was given.
		hg.via = append(hg.via, name(hg.frame.Func))
		hg.frame = Frame{Func: cb}
		if in := h.inside; in != nil && in.stack != nil {
			for _, fr := range in.stack.frames {
				if fr.Func == cb {
					hg.frame = fr
					break
				}
			}
		}
	}
	if c, ok := a.prog.callerIn(us.frames, o); ok {
		hg.caller = c.Func
	}
	if p, ok := stacks.Closure(hg.frame.Func); ok && hg.frame.Func == wk.callback[us.frames[o].Func] && a.prog.is(p) {
		// The function that passed the closure to the helper.
		hg.caller = p
	}
	if h.inside != nil && h.inside.stack != nil {
		_, hg.ownerIn = a.owner(us, h.inside.stack)
	}
	return hg
}

// merge adds another holder aggregate of the same critical section.
func (hg *holderGroup) merge(h *holderAgg) {
	hg.blame += h.blame
	hg.wakeups += h.wakeups
	hg.gs.addAll(&h.goroutines)
	if in := h.inside; in != nil {
		if hg.inside == nil {
			c := *in
			hg.inside = &c
		} else {
			x := *hg.inside
			x.times += in.times
			x.blocked += in.blocked
			x.wait += in.wait
			x.maxQueued = max(x.maxQueued, in.maxQueued)
			if in.longest > x.longest {
				x.longest, x.stack, x.kind = in.longest, in.stack, in.kind
			}
			hg.inside = &x
		}
	}
	if hd := h.holds; hd != nil {
		if hg.holds == nil {
			hg.holds = &holdAgg{samples: map[*stackInfo]int{}, sections: map[section]int{}}
		}
		x := hg.holds
		x.count += hd.count
		x.total += hd.total
		x.max = max(x.max, hd.max)
		x.hist.merge(&hd.hist)
		x.run += hd.run
		x.runnable += hd.runnable
		x.sys += hd.sys
		x.blocked += hd.blocked
		for si, n := range hd.samples {
			x.samples[si] += n
		}
		for sk, n := range hd.sections {
			x.sections[sk] += n
		}
	}
}

func (a *analyzer) holderReport(s *siteAgg, hg *holderGroup) Holder {
	ho := Holder{Op: hg.op, Func: hg.frame.Func, File: hg.frame.File, Line: hg.frame.Line, Wait: time.Duration(hg.blame),
		Wakeups: hg.wakeups, Goroutines: hg.gs.len(), Via: hg.via, Caller: hg.caller}
	if ho.File != "" {
		ho.Module = a.prog.moduleOf(ho.Func)
	}
	if s.blamed > 0 {
		ho.Share = float64(hg.blame) / float64(s.blamed)
	}
	if hg.stack != nil {
		ho.Stack = a.toProgram(hg.stack)
	}
	if in := hg.inside; in != nil && in.stack != nil {
		bi := &BlockedInside{Reason: in.kind.String(), Via: insideVia(in.stack, hg.frame.Func),
			Times: in.times, Blocked: time.Duration(in.blocked), Wait: time.Duration(in.wait),
			MaxQueued: in.maxQueued, Stack: in.stack.short(stackDepth)}
		o := hg.ownerIn
		if o < 0 {
			o = len(in.stack.frames) - 1
		}
		bi.In, bi.Call = a.blockedAt(in.stack.frames, o)
		ho.BlockedInside = bi
	}
	if hd := hg.holds; hd != nil && hd.count > 0 {
		ho.Holds = a.holdsReport(hg, hd)
		// When the Lock and the Unlock are in different functions, the
		// critical section is the call of the function above both.
		fns := map[string]int{}
		for sk, n := range hd.sections {
			fns[sk.us.frames[sk.k].Func] += n
		}
		if fn := topKey(fns); fn != "" && fn != hg.frame.Func && hg.owner >= 0 && hg.stack != nil &&
			!slices.ContainsFunc(hg.stack.frames[:hg.owner+1], func(f Frame) bool { return f.Func == fn }) {
			ho.Section = fn
		}
	}
	return ho
}

// holdsReport sums the holds of a critical section and names where it
// ran.
func (a *analyzer) holdsReport(hg *holderGroup, hd *holdAgg) *Holds {
	out := &Holds{Count: hd.count, Total: time.Duration(hd.total), Max: time.Duration(hd.max),
		P50: hd.hist.quantile(0.5, hd.max)}
	if all := float64(hd.run + hd.runnable + hd.sys + hd.blocked); all > 0 {
		out.Running = float64(hd.run) / all
		out.Runnable = float64(hd.runnable) / all
		out.Syscall = float64(hd.sys) / all
		out.Blocked = float64(hd.blocked) / all
	}
	in := map[string]int{}
	for si, n := range hd.samples {
		_, j := a.owner(hg.stack, si)
		if j < 0 {
			continue
		}
		if fn := a.ranIn(si.frames, j); fn != "" {
			in[fn] += n
		}
	}
	for fn, n := range in {
		if n > out.Samples || n == out.Samples && fn < out.In {
			out.In, out.Samples = fn, n
		}
	}
	return out
}

// ranIn names the function a critical section was running when it was
// preempted (fs, with its owner at index o): the first of the program's
// functions under the owner (past the closures a library calls back), or
// else the innermost function outside the standard library, or the
// owner.
func (a *analyzer) ranIn(fs []Frame, o int) string {
	for j := o - 1; j >= 0; j-- {
		fn := fs[j].Func
		if !a.prog.is(fn) {
			continue
		}
		if _, ok := stacks.Closure(fn); ok && j > 0 && a.prog.is(fs[j-1].Func) {
			return name(fs[j-1].Func)
		}
		return name(fn)
	}
	for j := 0; j <= o && j < len(fs); j++ {
		fn := fs[j].Func
		if !stacks.Internal(fn) && !stacks.Std(stacks.Package(fn)) {
			return name(fn)
		}
	}
	if o < len(fs) {
		return name(fs[o].Func)
	}
	return ""
}

// blockedAt names where a critical section blocked (fs, with its owner
// at index o): in is the innermost function outside the standard
// library (or the owner), call the outermost standard-library call it
// made toward the leaf, past helpers such as io.ReadFull.
func (a *analyzer) blockedAt(fs []Frame, o int) (in, call string) {
	o = min(o, len(fs)-1)
	inAt := -1
	for j := 0; j <= o; j++ {
		fn := fs[j].Func
		if !stacks.Internal(fn) && !stacks.Std(stacks.Package(fn)) {
			inAt = j
			break
		}
	}
	if inAt < 0 {
		inAt = o
	}
	in = name(fs[inAt].Func)
	for j := inAt - 1; j >= 0; j-- {
		fn := fs[j].Func
		pkg := stacks.Package(fn)
		if stacks.Internal(fn) || pkg == "syscall" || stacks.Helper(pkg) {
			continue
		}
		call = name(fn)
		break
	}
	if call == "" {
		for j := 0; j < inAt; j++ {
			if !stacks.Internal(fs[j].Func) {
				call = name(fs[j].Func)
				break
			}
		}
	}
	return in, call
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
		f := w.site.frame
		if si := w.stack; si != nil && w.kind.isLock() {
			if e := a.stacks.wraps.lockEntry(si); e >= 0 {
				f = si.frames[e]
			}
		}
		out.Site = siteLabel(f)
	}
	if w.stack != nil {
		out.Stack = a.toProgram(w.stack)
	}
	if us := w.ustack; us != nil {
		out.UnblockerStack = a.toProgram(us)
		if w.kind.isLock() && us.site >= 0 {
			f := us.frames[a.stacks.wraps.unlockOwner(us)]
			out.UnblockerAt = &f
		}
	}
	return out
}

// mergeUnknown folds the waits of goroutines that were blocked before
// the window began and that the trace announced without a stack (the
// unknown site "?") into the known site of the same kind whose critical
// sections woke them: they are the same lock's waiters, seen late.
func (a *analyzer) mergeUnknown() {
	for _, u := range a.sites.list {
		if u.frame.Func != "?" || !u.kind.isLock() || u.waits == 0 {
			continue
		}
		var best *siteAgg
		var bestScore int64
		for _, s := range a.sites.list {
			if s == u || s.kind != u.kind || s.frame.Func == "?" || s.waits == 0 {
				continue
			}
			var score int64
			for id, h := range u.holders {
				if sh := s.holders[id]; sh != nil && id >= 0 {
					score += h.blame + 1
				}
			}
			if score > bestScore {
				best, bestScore = s, score
			}
		}
		if best == nil {
			continue
		}
		best.absorb(u)
		a.waits.inferred += u.waits
		u.waits = 0
	}
}

// absorb adds the waits of site u to s.
func (s *siteAgg) absorb(u *siteAgg) {
	s.waits += u.waits
	s.atLeast += u.atLeast
	s.total += u.total
	s.max = max(s.max, u.max)
	s.hist.merge(&u.hist)
	s.waiters.addAll(&u.waiters)
	s.blamed += u.blamed
	s.openAtEnd += u.openAtEnd
	if u.first >= 0 && (s.first < 0 || u.first < s.first) {
		s.first = u.first
	}
	s.lastEnd = max(s.lastEnd, u.lastEnd)
	s.lastServed = max(s.lastServed, u.lastServed)
	for i, n := range u.perSec {
		for len(s.perSec) <= i {
			s.perSec = append(s.perSec, 0)
		}
		s.perSec[i] += n
	}
	for id, h := range u.holders {
		sh := s.holders[id]
		if sh == nil {
			s.holders[id] = h
			continue
		}
		sh.blame += h.blame
		sh.wakeups += h.wakeups
		sh.goroutines.addAll(&h.goroutines)
		if sh.inside == nil {
			sh.inside = h.inside
		}
		if sh.stack == nil {
			sh.stack = h.stack
		}
	}
}

// siteByReport returns the aggregate behind a reported lock site.
func (a *analyzer) siteByReport(s Site) *siteAgg {
	return a.reported[s.Kind+"\x00"+siteOf(s)]
}

// toProgram returns si's frames from the call into the runtime or sync
// down to the program's own frame under it (at least stackDepth frames,
// at most maxSiteStack): a library's frames alone do not say which of the
// program's calls waited.
func (a *analyzer) toProgram(si *stackInfo) []Frame {
	from := max(si.site-1, 0)
	end := min(len(si.frames), from+stackDepth)
	if c, ok := a.prog.callerIn(si.frames, max(si.site, 0)); ok {
		for i := from; i < len(si.frames); i++ {
			if si.frames[i] == c {
				end = max(end, i+1)
				break
			}
		}
	}
	return shortStack(si.frames[from:end], maxSiteStack)
}
