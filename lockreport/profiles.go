package lockreport

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"

	"github.com/google/pprof/profile"
)

// profileSites groups a contention profile (mutex or block: sample types
// contentions/count and delay/nanoseconds) by leaf call and call site.
// runtime collects the samples on runtime-internal locks separately.
//
// With wrapper knowledge wk (nil without a trace), lock sites are named as
// the trace names them: past the lock and unlock wrappers.
//
// total is the delay of all the program's samples, runtime-internal locks
// included, and rtTotal the part of it on runtime-internal locks. The
// shares of sites are of total, those of runtime of rtTotal.
func profileSites(p *profile.Profile, waiters bool, wk *wrapKnowledge) (sites, runtime []ProfileSite, total, rtTotal int64) {
	if p == nil {
		return nil, nil, 0, 0
	}
	ci, di := -1, -1
	for i, st := range p.SampleType {
		switch st.Type {
		case "contentions":
			ci = i
		case "delay":
			di = i
		}
	}
	if di < 0 {
		return nil, nil, 0, 0
	}
	type key struct {
		op, fn, file string
		line         int
	}
	idx := map[key]int{}
	add := func(list *[]ProfileSite, k key, count, delay int64, stk *stackInfo) {
		m := idx
		if list == &runtime {
			k.op = "runtime:" + k.op
		}
		i, ok := m[k]
		if !ok {
			i = len(*list)
			m[k] = i
			op := k.op
			if list == &runtime {
				op = op[len("runtime:"):]
			}
			*list = append(*list, ProfileSite{Op: op, Func: k.fn, File: k.file, Line: k.line, Stack: stk.short(stackDepth)})
		}
		(*list)[i].Count += count
		(*list)[i].Delay += time.Duration(delay)
	}
	for _, s := range p.Sample {
		if di >= len(s.Value) {
			continue
		}
		delay := s.Value[di]
		var count int64
		if ci >= 0 && ci < len(s.Value) {
			count = s.Value[ci]
		}
		if delay <= 0 && count <= 0 {
			continue
		}
		frames := sampleFrames(s)
		if len(frames) == 0 {
			continue
		}
		si := &stackInfo{frames: frames}
		classifyFrames(si)
		if si.own || waiters && si.site < 0 {
			// lockdiag's own goroutines, and the runtime's (the
			// tracer's readers wait in chanrecv for ever): not the
			// program's waits.
			continue
		}
		total += delay
		f := si.siteFrame()
		if wk != nil && si.site >= 0 {
			if waiters && si.waitKind.isLock() {
				f = frames[wk.lockEntry(si)]
			} else if !waiters {
				f = frames[wk.unlockOwner(si)]
				if cb, ok := wk.callback[f.Func]; ok {
					f = Frame{Func: cb}
				}
			}
		}
		if leaf := frames[0].Func; stacks.RuntimeLock(leaf) {
			if f.Func == "" && len(frames) > 1 {
				// All the runtime's own (the scheduler, the netpoller,
				// timers): name the function that released the lock.
				f = frames[1]
			}
			op := "runtime.unlock"
			if leaf == "runtime._LostContendedRuntimeLock" {
				op = "runtime lock (record lost)"
			}
			add(&runtime, key{op: op, fn: f.Func, file: f.File, line: f.Line}, count, delay, si)
			rtTotal += delay
			continue
		}
		op := si.op
		if waiters {
			op = si.waitKind.String()
		}
		add(&sites, key{op: op, fn: f.Func, file: f.File, line: f.Line}, count, delay, si)
	}
	byDelay := func(x, y ProfileSite) int {
		if c := cmp.Compare(y.Delay, x.Delay); c != 0 {
			return c
		}
		return cmp.Compare(x.Func, y.Func)
	}
	slices.SortFunc(sites, byDelay)
	slices.SortFunc(runtime, byDelay)
	share := func(list []ProfileSite, of int64) {
		for i := range list {
			if of > 0 {
				list[i].Share = float64(list[i].Delay) / float64(of)
			}
		}
	}
	share(sites, total)
	share(runtime, rtTotal)
	return sites, runtime, total, rtTotal
}

// sampleFrames returns a sample's stack, leaf first.
func sampleFrames(s *profile.Sample) []Frame {
	var frames []Frame
	for _, loc := range s.Location {
		if loc == nil {
			continue
		}
		for _, ln := range loc.Line {
			if ln.Function == nil {
				continue
			}
			frames = append(frames, Frame{Func: ln.Function.Name, File: ln.Function.Filename, Line: int(ln.Line)})
			if len(frames) == maxFrames {
				return frames
			}
		}
	}
	return frames
}

// learnProfiles teaches the wrapper knowledge the profiles' stacks: the
// block profile's are Lock calls, the mutex profile's Unlock calls,
// sampled over the same window, some of which the trace did not show.
func learnProfiles(w *wrapKnowledge, prof profiles) {
	for _, p := range []*profile.Profile{prof.mutex, prof.block} {
		if p == nil {
			continue
		}
		for _, s := range p.Sample {
			if frames := sampleFrames(s); len(frames) > 0 {
				si := &stackInfo{frames: frames}
				classifyFrames(si)
				w.learn(si)
			}
		}
	}
}

// profiles are the parsed profiles of [Options].
type profiles struct {
	mutex, block       *profile.Profile
	mutexErr, blockErr error
}

// readProfiles parses the profiles given in opts.
func readProfiles(opts Options) profiles {
	var p profiles
	if opts.MutexProfile != nil {
		p.mutex, p.mutexErr = profile.ParseData(opts.MutexProfile)
	}
	if opts.BlockProfile != nil {
		p.block, p.blockErr = profile.ParseData(opts.BlockProfile)
	}
	return p
}

// joinProfiles builds the profile section and attaches profile entries to
// the trace's sites and holders with the same function, file and line.
func joinProfiles(rep *Report, prof profiles, opts Options, wk *wrapKnowledge) *ProfileSection {
	ps := &ProfileSection{MutexFraction: opts.MutexFraction, BlockRate: opts.BlockRate}
	if len(opts.MutexFractions) > 1 {
		ps.MutexFractions = opts.MutexFractions
	}
	if rep.Window == nil {
		switch {
		case rep.TraceError != "":
			ps.Missing = append(ps.Missing, "trace unreadable: "+rep.TraceError)
		case rep.TraceUnavailable != "":
			ps.Missing = append(ps.Missing, "trace unavailable: "+rep.TraceUnavailable)
		default:
			ps.Missing = append(ps.Missing, "no trace was given")
		}
	}
	switch {
	case prof.mutexErr != nil:
		ps.Missing = append(ps.Missing, "mutex profile unreadable: "+prof.mutexErr.Error())
	case prof.mutex == nil && opts.MutexFraction == 0:
		ps.Missing = append(ps.Missing, "no mutex profile: it would show which Unlock sites make others wait "+
			"(runtime.SetMutexProfileFraction; LOCKDIAG_MUTEX_FRACTION in a lockdiag service)")
	case prof.mutex == nil:
		ps.Missing = append(ps.Missing, "mutex profile not collected for this window")
	}
	switch {
	case prof.blockErr != nil:
		ps.Missing = append(ps.Missing, "block profile unreadable: "+prof.blockErr.Error())
	case prof.block == nil && opts.BlockRate == 0:
		ps.Missing = append(ps.Missing, "no block profile: it would show where goroutines waited "+
			"(runtime.SetBlockProfileRate; LOCKDIAG_BLOCK_RATE in a lockdiag service)")
	case prof.block == nil:
		ps.Missing = append(ps.Missing, "block profile not collected for this window")
	}
	if prof.mutex == nil && prof.block == nil {
		if rep.Window != nil {
			return &ProfileSection{MutexFraction: opts.MutexFraction, MutexFractions: ps.MutexFractions, BlockRate: opts.BlockRate, Missing: ps.Missing}
		}
		return ps
	}

	var mt, rt, bt int64
	ps.Holders, ps.RuntimeLocks, mt, rt = profileSites(prof.mutex, false, wk)
	ps.Waiters, _, bt, _ = profileSites(prof.block, true, wk)
	ms := ps.mutexScale()
	for _, list := range [][]ProfileSite{ps.Holders, ps.RuntimeLocks} {
		for i := range list {
			list[i].Samples, _ = ms.samples(list[i].Count)
		}
	}
	ps.MutexTotal, ps.RuntimeTotal, ps.BlockTotal = time.Duration(mt), time.Duration(rt), time.Duration(bt)

	same := func(f1, file1 string, l1 int, f2, file2 string, l2 int) bool {
		if file1 == "" || file2 == "" {
			return f1 == f2 // a with-lock helper's callback: by function
		}
		return f1 == f2 && file1 == file2 && l1 == l2
	}
	for i := range ps.Holders {
		p := &ps.Holders[i]
		for si := range rep.Sites {
			for hi := range rep.Sites[si].Holders {
				h := &rep.Sites[si].Holders[hi]
				if same(p.Func, p.File, p.Line, h.Func, h.File, h.Line) {
					p.InTrace = true
					if h.MutexProfile == nil {
						cp := *p
						cp.Stack = nil
						h.MutexProfile = &cp
					}
				}
			}
		}
		if !p.InTrace {
			for _, s := range rep.Sites {
				for _, h := range s.Holders {
					if h.Func == p.Func {
						p.InTrace = true
					}
				}
			}
		}
	}
	for i := range ps.Waiters {
		p := &ps.Waiters[i]
		for _, list := range [][]Site{rep.Sites, rep.SyncSites} {
			for si := range list {
				s := &list[si]
				match := same(p.Func, p.File, p.Line, s.Func, s.File, s.Line)
				for _, e := range s.Entries {
					match = match || same(p.Func, p.File, p.Line, e.Func, e.File, e.Line)
				}
				if match {
					p.InTrace = true
					if s.BlockProfile == nil {
						cp := *p
						cp.Stack = nil
						s.BlockProfile = &cp
					} else {
						s.BlockProfile.Count += p.Count
						s.BlockProfile.Delay += p.Delay
					}
				}
			}
		}
	}
	notes(rep, ps, prof, opts)
	// The lists in the section are bounded like the sites.
	top := opts.Top
	if len(ps.Holders) > top {
		ps.Holders = ps.Holders[:top]
	}
	if len(ps.Waiters) > top {
		ps.Waiters = ps.Waiters[:top]
	}
	if len(ps.RuntimeLocks) > top {
		ps.RuntimeLocks = ps.RuntimeLocks[:top]
	}
	return ps
}

// A profile total next to the trace's gets a note when it differs from it
// by more than gapRatio either way, or when it rests on fewer than
// fewSamples samples. A total estimated from n samples is off by 1/√n or
// more (more when the delays vary): 22% at 20 samples, so below that a
// figure is an estimate even where it happens to match the trace; the same
// bound makes diag's status call the holders' shares rough. Beyond 1.25×
// the difference is more than sampling at that bound and the window's
// edges explain, and the reader sees two different numbers.
const (
	gapRatio   = 1.25
	fewSamples = 20
)

// mutexScale is what a mutex profile's counts stand on: the fraction in
// force while it was recorded (0 if unknown), or the fractions in force,
// oldest first, when it changed within the window. runtime/pprof writes
// each sample as the fraction in force when the runtime recorded it, so a
// count is samples × fraction while the fraction holds, and a mix of
// scales once it changed.
type mutexScale struct {
	fraction int   // the latest
	changes  []int // two or more when the fraction changed within the window
}

func (ps *ProfileSection) mutexScale() mutexScale {
	if ps == nil {
		return mutexScale{}
	}
	return mutexScale{fraction: ps.MutexFraction, changes: ps.MutexFractions}
}

func (ms mutexScale) mixed() bool { return len(ms.changes) > 1 }

// String is "1 in 100", or "1 in 100, then 1 in 300".
func (ms mutexScale) String() string {
	return ms.say(func(f int) string { return fmt.Sprintf("1 in %d", f) })
}

// say joins the fractions, each said by say: "A, then B".
func (ms mutexScale) say(say func(int) string) string {
	fs := ms.changes
	if !ms.mixed() {
		fs = []int{ms.fraction}
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = say(f)
	}
	return strings.Join(parts, ", then ")
}

// samples returns how many samples a count stands on. ok is false when
// that is not known: the fraction is unknown or changed within the window,
// or the count is not a multiple of it.
func (ms mutexScale) samples(count int64) (n int64, ok bool) {
	switch {
	case ms.mixed():
	case ms.fraction == 1:
		return count, true
	case ms.fraction > 1 && count > 0 && count%int64(ms.fraction) == 0:
		return count / int64(ms.fraction), true
	}
	return 0, false
}

// count says a count with the samples it stands on: "2 samples (×100:
// about 200 contentions)", or "200 contentions" when every contention was
// recorded or the fraction is not known.
func (ms mutexScale) count(count int64) string {
	n, ok := ms.samples(count)
	switch {
	case ms.mixed():
		return fmt.Sprintf("about %d contentions (sampled %s: the fraction changed within the window; scaled up)", count, ms)
	case ok && ms.fraction > 1:
		return fmt.Sprintf("%s (×%d: about %d contentions)", textfmt.Plural(int(n), "sample", "samples"), ms.fraction, count)
	case ms.fraction > 1:
		return fmt.Sprintf("about %d contentions (sampled 1 in %d, scaled up)", count, ms.fraction)
	}
	return fmt.Sprintf("%d contentions", count)
}

// notes says, where a profile's total for a site or a critical section
// differs from the trace's or rests on few samples (see gapRatio), why.
func notes(rep *Report, ps *ProfileSection, prof profiles, opts Options) {
	var traceWin, profWin time.Duration
	if rep.Window != nil {
		traceWin = rep.Window.Duration
	}
	if prof.mutex != nil && prof.mutex.DurationNanos > 0 {
		profWin = time.Duration(prof.mutex.DurationNanos)
	} else if prof.block != nil && prof.block.DurationNanos > 0 {
		profWin = time.Duration(prof.block.DurationNanos)
	}
	for i := range rep.Sites {
		s := &rep.Sites[i]
		if bp := s.BlockProfile; bp != nil {
			bp.Note = gapNote(s.Total, bp.Delay, bp.Count, opts.BlockRate, false, s.WaitingAtEnd, traceWin, profWin, mutexScale{})
		}
		for j := range s.Holders {
			h := &s.Holders[j]
			if mp := h.MutexProfile; mp != nil {
				mp.Note = gapNote(h.Wait, mp.Delay, mp.Count, opts.MutexFraction, true, 0, traceWin, profWin, ps.mutexScale())
			}
		}
	}
}

// gapNote explains a profile total (prof, from count contentions) next to
// the trace's total: when they differ by more than gapRatio either way, or
// when a mutex profile total rests on fewer than fewSamples samples; else
// it returns "".
//
// For a mutex profile whose fraction changed within the window (ms
// mixed), a count is no number of samples times one fraction: the note
// names the fractions, and calls the count few only when even the
// smallest fraction gives fewer than fewSamples samples.
func gapNote(trace, prof time.Duration, count int64, rate int, mutex bool, atEnd int, traceWin, profWin time.Duration, ms mutexScale) string {
	if trace <= 0 || prof <= 0 {
		return ""
	}
	r := float64(prof) / float64(trace)
	// With every contention recorded (rate 1) there is no sampling error.
	// A count that is no multiple of the rate (it changed within the
	// window) still stands on about count/rate samples.
	if mutex && ms.mixed() {
		rate = slices.Min(ms.changes)
	}
	few := mutex && rate > 1 && count/int64(rate) < fewSamples
	if r <= gapRatio && r >= 1/gapRatio && !few {
		return ""
	}
	var why []string
	switch {
	case mutex && ms.mixed():
		why = append(why, fmt.Sprintf("sampled %s (the fraction changed within the window), scaled up", ms))
	case mutex && rate > 1:
		if events := count / int64(rate); events < fewSamples {
			why = append(why, fmt.Sprintf("%s, scaled ×%d: too few for more than a rough total",
				textfmt.Plural(int(max(events, 1)), "sampled event", "sampled events"), rate))
		} else {
			why = append(why, fmt.Sprintf("sampled, 1 event in %d, scaled up", rate))
		}
	case !mutex && rate > 1:
		why = append(why, fmt.Sprintf("waits shorter than %s are sampled and scaled up", textfmt.Dur(time.Duration(rate))))
	}
	if atEnd > 0 && trace > prof {
		why = append(why, fmt.Sprintf("%s still going when the window ended, which the profiles do not count yet (a wait is recorded when it ends)",
			textfmt.Plural(atEnd, "wait was", "waits were")))
	}
	if traceWin > 0 && profWin > 0 && (float64(profWin) > 1.2*float64(traceWin) || float64(traceWin) > 1.2*float64(profWin)) {
		why = append(why, fmt.Sprintf("the profile covers %s, the trace %s", textfmt.Dur(profWin), textfmt.Dur(traceWin)))
	}
	if mutex {
		why = append(why, "the mutex profile charges waiting to the Unlock by its own estimate")
	}
	if len(why) == 0 {
		// A block profile at rate 1 over the trace's window: the same
		// waits, clocked apart.
		why = append(why, "the profile and the trace time a wait from different moments, and a wait at the window's edges may fall in one and not the other")
	}
	var ratio string
	switch {
	case r <= gapRatio && r >= 1/gapRatio:
		ratio = "close to"
	case r < 1:
		ratio = textfmt.Pct(r) + " of"
	default:
		ratio = fmt.Sprintf("%.1f×", r)
	}
	return fmt.Sprintf("%s the trace's %s: %s", ratio, textfmt.Dur(trace), strings.Join(why, "; "))
}
