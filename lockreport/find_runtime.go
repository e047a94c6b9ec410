package lockreport

import (
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// runtimeLockCandidates proposes contention on the Go runtime's own locks:
// the mutex profile's runtime.unlock samples, with the OS threads that
// were blocked on runtime locks when the window ended.
func runtimeLockCandidates(rep *Report, window time.Duration) []candidate {
	threads := 0
	if ot := rep.OSThreads; ot != nil {
		for _, r := range ot.OnLockWord {
			if r.Class == "runtime-lock" {
				threads++
			}
		}
	}
	fs := runtimeLockFindings(rep, window)
	if len(fs) == 0 && threads < 2 {
		return nil
	}
	total := rep.Profiles.runtimeTotal()
	var f Finding
	if len(fs) > 0 {
		f = fs[0]
	} else {
		f = Finding{Kind: "runtime-lock", Summary: "Runtime-internal lock contention: OS threads were blocked on the Go runtime's own locks."}
	}
	f.Source = "mutex profile"
	h := "runtime-internal lock contention"
	if total > 0 {
		h += fmt.Sprintf(": %s of delay in the mutex profile", textfmt.Dur(total))
		if p := rep.Profiles; p != nil && len(p.RuntimeLocks) > 0 {
			if r := p.RuntimeLocks[0]; r.Func != "" {
				h += ", most under " + funcAt(Frame{Func: r.Func, File: r.File, Line: r.Line})
			} else {
				h += ", most with no stack (the runtime lost it)"
			}
		}
	}
	if threads > 0 {
		f.Source = "mutex profile, threads"
		line := fmt.Sprintf("threads (/proc): %d OS threads were blocked on runtime-internal locks when the window ended", threads)
		f.Evidence = append([]string{line}, f.Evidence...)
		h += fmt.Sprintf("; %d OS threads blocked on runtime locks when the window ended", threads)
	}
	return []candidate{{headline: h, finding: f, weight: total.Seconds() + float64(threads)*0.1, current: threads > 0 || total > 0}}
}

// profileWindow is the span the mutex profile delta covers, or the trace
// window; 0 if neither is known.
func profileWindow(rep *Report, prof profiles) time.Duration {
	if prof.mutex != nil && prof.mutex.DurationNanos > 0 {
		return time.Duration(prof.mutex.DurationNanos)
	}
	if rep.Window != nil {
		return rep.Window.Duration
	}
	return 0
}

func runtimeLockFindings(rep *Report, window time.Duration) []Finding {
	p := rep.Profiles
	if p == nil || len(p.RuntimeLocks) == 0 {
		return nil
	}
	total := p.runtimeTotal()
	if total < max(minRuntimeLock, time.Duration(float64(window)*runtimeLockShare)) {
		return nil
	}
	top := p.RuntimeLocks[0]
	f := Finding{Kind: "runtime-lock"}
	f.Summary = fmt.Sprintf("Runtime-internal lock contention: the mutex profile has %s of delay on runtime locks, most under %s.",
		textfmt.Dur(total), funcAt(Frame{Func: top.Func, File: top.File, Line: top.Line}))
	for i, r := range p.RuntimeLocks {
		if i == 3 {
			break
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s in %s: %s", textfmt.Dur(r.Delay), p.mutexScale().count(r.Count), stackLine(r.Stack)))
	}
	f.Evidence = append(f.Evidence, "runtime locks guard channels, timers, the scheduler and the heap: look for one channel shared by many goroutines, "+
		"or GOMAXPROCS above the CPUs available")
	return []Finding{f}
}

// runtimeTotal is the mutex profile's delay on runtime-internal locks: all
// of it, also the part cut from RuntimeLocks. A report read from an older
// report.json has no RuntimeTotal; there it is the listed rows' sum.
func (p *ProfileSection) runtimeTotal() time.Duration {
	if p == nil {
		return 0
	}
	if p.RuntimeTotal > 0 {
		return p.RuntimeTotal
	}
	var total time.Duration
	for _, r := range p.RuntimeLocks {
		total += r.Delay
	}
	return total
}
