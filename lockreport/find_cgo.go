package lockreport

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// cgoLockCandidates proposes the locks outside Go: OS threads blocked on
// one futex word that the Go runtime does not use (a pthread mutex taken
// in C), joined with the goroutines whose threads they are (trace thread
// ids are Linux thread ids). No Go profile sees these waits: the
// goroutines are in cgo calls, not parked.
func cgoLockCandidates(rep *Report) []candidate {
	ot := rep.OSThreads
	if ot == nil {
		return nil
	}
	byWord := map[uint64][]ThreadOnLock{}
	var words []uint64
	for _, r := range ot.OnLockWord {
		if r.Class != "pthread-mutex" {
			continue
		}
		if byWord[r.Futex] == nil {
			words = append(words, r.Futex)
		}
		byWord[r.Futex] = append(byWord[r.Futex], r)
	}
	slices.SortFunc(words, func(a, b uint64) int { return cmp.Compare(len(byWord[b]), len(byWord[a])) })
	prog := program{module: rep.MainModule}
	var win time.Duration
	if rep.Window != nil {
		win = rep.Window.Duration
	}
	byThread := map[int64]ThreadActivity{}
	for _, t := range rep.Threads {
		byThread[t.Thread] = t
	}
	osByTID := map[int]Thread{}
	for _, t := range ot.Threads.Threads {
		osByTID[t.TID] = t
	}
	var cs []candidate
	for _, word := range words {
		rows := byWord[word]
		if len(rows) < 2 {
			continue // one thread on a word may be a condition variable or semaphore
		}
		onWord := map[int]bool{}
		var gids []string
		callers := map[string]int{}
		stub := ""
		earliest := time.Duration(-1)
		weight := 0.0
		for _, r := range rows {
			onWord[r.TID] = true
			if r.Goroutine != 0 {
				gids = append(gids, strconv.FormatInt(r.Goroutine, 10))
			}
			if c, s := cgoCaller(prog, r.Stack); c != "" {
				callers[c]++
				if stub == "" {
					stub = s
				}
			}
			since := time.Duration(0)
			if ta, ok := byThread[int64(r.TID)]; ok && ta.State != "" && ta.Since > 0 {
				since = ta.Since
			}
			if earliest < 0 || since < earliest {
				earliest = since
			}
			weight += (win - since).Seconds()
		}
		if weight <= 0 {
			weight = float64(len(rows))
		}
		caller := topKey(callers)
		where := ""
		if caller != "" {
			where = " in cgo calls from " + caller
			if stub != "" {
				where += " (" + stub + ")"
			}
		}
		holder := cgoHolder(rep, prog, onWord, earliest, osByTID)
		f := Finding{Kind: "cgo-lock", Source: "threads", Site: fmt.Sprintf("pthread mutex %#x", word)}
		f.Summary = fmt.Sprintf("Lock outside Go: %d OS threads were blocked on one pthread mutex (futex word %#x)%s when the window ended. "+
			"No Go profile or trace wait shows this: the goroutines are in cgo calls, their threads wait in C.",
			len(rows), word, where)
		if holder != "" {
			f.Summary += " Likely holder: " + holder + "."
		}
		if len(gids) > 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("threads (/proc): tids %s; trace: their goroutines %s, in cgo calls",
				joinTIDs(tids(rows), 20), strings.Join(gids[:min(len(gids), 20)], ", ")))
		}
		for _, r := range rows {
			if len(r.Stack) > 0 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("a waiter's Go stack (goroutine %d, thread %d): %s", r.Goroutine, r.TID, stackLine(r.Stack)))
				break
			}
		}
		f.Evidence = append(f.Evidence, "the holder is the thread that locked the mutex in C and has not unlocked it: "+
			"look for C code that sleeps, waits or calls back into Go while holding it; "+
			"the futex word is the mutex's address (gdb: p *(pthread_mutex_t*)ADDR shows the owner's tid)")
		h := fmt.Sprintf("%d OS threads were blocked on one pthread mutex (futex word %#x)%s: a lock outside Go that no Go profile sees",
			len(rows), word, where)
		if holder != "" {
			h += "; likely holder: " + holder
		}
		cs = append(cs, candidate{headline: h, finding: f, weight: weight, current: true})
	}
	return cs
}

func tids(rows []ThreadOnLock) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r.TID
	}
	return out
}

// cgoCaller returns the program's function that made the cgo call on a
// stack, and the cgo stub ("main._Cfunc_native_lookup").
func cgoCaller(prog program, fs []Frame) (caller, stub string) {
	for _, f := range fs {
		switch {
		case stacks.Cgo(f.Func):
			if stub == "" && f.Func != "runtime.cgocall" {
				stub = name(f.Func)
			}
		case caller == "" && prog.is(f.Func):
			caller = name(f.Func)
		}
	}
	if caller == "" {
		for _, f := range fs {
			if !stacks.Cgo(f.Func) && !stacks.Internal(f.Func) {
				return name(f.Func), stub
			}
		}
	}
	return caller, stub
}

// cgoHolder guesses who holds a lock outside Go: a goroutine in a cgo
// call since before the first waiter arrived (since), whose thread is not
// among the waiters.
func cgoHolder(rep *Report, prog program, onWord map[int]bool, since time.Duration, osByTID map[int]Thread) string {
	var best *ThreadActivity
	for i := range rep.Threads {
		t := &rep.Threads[i]
		if onWord[int(t.Thread)] || t.State != "cgo call" {
			continue
		}
		if since >= 0 && t.Since > since {
			continue
		}
		if best == nil || t.Since < best.Since {
			best = t
		}
	}
	if best == nil {
		return ""
	}
	caller, stub := cgoCaller(prog, best.Stack)
	s := fmt.Sprintf("goroutine %d in %s", best.Goroutine, caller)
	if stub != "" {
		s += " (" + stub + ")"
	}
	if best.AtLeast {
		s += ", in its cgo call since before the window began"
	} else {
		s += fmt.Sprintf(", in its cgo call since +%s of the window, before the waiters", textfmt.Dur(best.Since))
	}
	if th, ok := osByTID[int(best.Thread)]; ok {
		s += fmt.Sprintf("; its thread %d is %s", th.TID, th.Class)
		if th.Syscall != "" {
			s += " (" + th.Syscall + ")"
		}
	}
	return s
}

func topKey(m map[string]int) string {
	best, n := "", 0
	for k, v := range m {
		if v > n || v == n && k < best {
			best, n = k, v
		}
	}
	return best
}

// cgoWaitCandidates proposes locks in C that are waited for without a
// futex: goroutines that spent much of the window in cgo calls from one
// place while, when it ended, their OS threads slept (a busy handler
// that sleeps and retries until a lock held elsewhere is free) instead
// of running.
func cgoWaitCandidates(rep *Report) []candidate {
	if rep.Window == nil || rep.OSThreads == nil || len(rep.CgoCalls) == 0 {
		return nil
	}
	win := rep.Window.Duration
	prog := program{module: rep.MainModule}
	class := map[int]Thread{}
	for _, t := range rep.OSThreads.Threads.Threads {
		class[t.TID] = t
	}
	// Threads that share a futex word with others are cgoLockCandidates'
	// (the lock's address is known); the others wait here.
	perWord := map[uint64]int{}
	for _, r := range rep.OSThreads.OnLockWord {
		perWord[r.Futex]++
	}
	onShared := map[int]bool{}
	for _, r := range rep.OSThreads.OnLockWord {
		if r.Class == "pthread-mutex" && perWord[r.Futex] >= 2 {
			onShared[r.TID] = true
		}
	}
	var cs []candidate
	for _, c := range rep.CgoCalls {
		if c.Goroutines < 2 || c.Total < win/2 {
			continue
		}
		var asleep, running []ThreadActivity
		sleepCall := ""
		for _, t := range rep.Threads {
			if t.State != "cgo call" {
				continue
			}
			if caller, stub := cgoCaller(prog, t.Stack); caller != c.Func || stub != c.Stub {
				continue
			}
			th := class[int(t.Thread)]
			if onShared[th.TID] {
				continue
			}
			switch th.Class {
			case "sleeping", "pthread-mutex":
				// Asleep, or blocked on a futex in C: waiting either way.
				asleep = append(asleep, t)
				if !strings.Contains(sleepCall, th.Syscall) {
					sleepCall = strings.TrimPrefix(sleepCall+", "+th.Syscall, ", ")
				}
			case "running":
				running = append(running, t)
			}
		}
		if len(asleep) < 2 || len(asleep) <= len(running) {
			continue
		}
		pkg, _, _ := strings.Cut(c.Stub, "._C")
		holder := ""
		for _, t := range rep.Threads {
			if t.State != "cgo call" || class[int(t.Thread)].Class != "running" {
				continue
			}
			caller, stub := cgoCaller(prog, t.Stack)
			if caller == c.Func || !strings.HasPrefix(stub, pkg+"._C") {
				continue
			}
			holder = fmt.Sprintf("goroutine %d in %s, in a cgo call into the same package (%s) with its thread running", t.Goroutine, caller, stub)
			break
		}
		if holder == "" {
			// Nobody seen running in C at the end: the program's other
			// callers into the same package, those still in a call first.
			var best *CgoSite
			for i := range rep.CgoCalls {
				o := &rep.CgoCalls[i]
				if o.Func == c.Func || !strings.HasPrefix(o.Stub, pkg+"._C") {
					continue
				}
				if best == nil || o.Ongoing > 0 && best.Ongoing == 0 || (o.Ongoing > 0) == (best.Ongoing > 0) && o.Total > best.Total {
					best = o
				}
			}
			if best != nil {
				holder = fmt.Sprintf("%s, the other caller into the same package (%s: %s, %s", best.Func, best.Stub,
					textfmt.Plural(best.Calls, "call", "calls"), textfmt.Dur(best.Total))
				if best.Ongoing > 0 {
					holder += ", in one when the window ended"
				}
				holder += ")"
			}
		}
		var ids []string
		for _, t := range asleep {
			ids = append(ids, strconv.FormatInt(t.Goroutine, 10))
		}
		where := fmt.Sprintf("cgo calls from %s (%s)", c.Func, c.Stub)
		f := Finding{Kind: "cgo-lock", Source: "trace, threads", Site: c.Stub}
		f.Summary = fmt.Sprintf("Lock outside Go (likely): %d goroutines spent %s in %s, up to %s in one call; "+
			"when the window ended %d of their OS threads were asleep or blocked in C (%s), not running: C code that waits for "+
			"something held elsewhere (a busy handler that sleeps and retries, a C mutex or condition variable).",
			c.Goroutines, textfmt.Dur(c.Total), where, textfmt.Dur(c.Max), len(asleep), sleepCall)
		if holder != "" {
			f.Summary += " Likely holder: " + holder + "."
		}
		f.Evidence = append(f.Evidence,
			fmt.Sprintf("trace: %s, %d still going at the end; goroutines asleep in them: %s", textfmt.Plural(c.Calls, "cgo call", "cgo calls"),
				c.Ongoing, strings.Join(ids, ", ")),
			"stack: "+stackLine(c.Stack),
			"no Go profile sees a wait inside C: the mutex and block profiles and the trace's waits show nothing; "+
				"look at what the C library waits for (a database's write lock, a file lock) and who holds it")
		h := fmt.Sprintf("%d goroutines spent %s in %s, their threads asleep or blocked in C when the window ended: a lock outside Go",
			c.Goroutines, textfmt.Dur(c.Total), where)
		if holder != "" {
			h += "; likely holder: " + holder
		}
		cs = append(cs, candidate{headline: h, finding: f, weight: c.Total.Seconds(), current: true})
	}
	return cs
}
