package lockreport

import (
	"cmp"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// profileSites groups a contention profile (mutex or block: sample types
// contentions/count and delay/nanoseconds) by leaf call and call site.
// runtime collects the samples on runtime-internal locks separately.
func profileSites(p *profile.Profile, waiters bool) (sites, runtime []ProfileSite, total int64) {
	if p == nil {
		return nil, nil, 0
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
		return nil, nil, 0
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
		total += delay
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
					break
				}
			}
		}
		if len(frames) == 0 {
			continue
		}
		si := &stackInfo{frames: frames}
		classifyFrames(si)
		f := si.siteFrame()
		if leaf := frames[0].Func; leaf == "runtime.unlock" || leaf == "runtime._LostContendedRuntimeLock" {
			op := "runtime.unlock"
			if leaf == "runtime._LostContendedRuntimeLock" {
				op = "runtime lock (record lost)"
			}
			add(&runtime, key{op: op, fn: f.Func, file: f.File, line: f.Line}, count, delay, si)
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
	for _, list := range [][]ProfileSite{sites, runtime} {
		for i := range list {
			if total > 0 {
				list[i].Share = float64(list[i].Delay) / float64(total)
			}
		}
	}
	return sites, runtime, total
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
func joinProfiles(rep *Report, prof profiles, opts Options) *ProfileSection {
	ps := &ProfileSection{MutexFraction: opts.MutexFraction, BlockRate: opts.BlockRate}
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
			return &ProfileSection{MutexFraction: opts.MutexFraction, BlockRate: opts.BlockRate, Missing: ps.Missing}
		}
		return ps
	}

	var mt, bt int64
	ps.Holders, ps.RuntimeLocks, mt = profileSites(prof.mutex, false)
	ps.Waiters, _, bt = profileSites(prof.block, true)
	ps.MutexTotal, ps.BlockTotal = time.Duration(mt), time.Duration(bt)

	same := func(f1, file1 string, l1 int, f2, file2 string, l2 int) bool {
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
				if same(p.Func, p.File, p.Line, s.Func, s.File, s.Line) {
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
