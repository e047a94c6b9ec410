package lockreport

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// parkedSites returns the parked sites, most waiters first.
func parkedSites(in []ParkedSite) []ParkedSite {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b ParkedSite) int { return cmp.Compare(b.Waiters, a.Waiters) })
	return out
}

// osThreads joins a thread scan with the trace's last view of each thread
// (Go trace thread ids are Linux tids).
func osThreads(in *Threads, traced []ThreadActivity) *OSThreads {
	if in == nil {
		return nil
	}
	out := &OSThreads{Threads: *in}
	out.Threads.Threads = slices.Clone(in.Threads)
	byTID := make(map[int64]ThreadActivity, len(traced))
	for _, a := range traced {
		byTID[a.Thread] = a
	}
	for i := range out.Threads.Threads {
		th := &out.Threads.Threads[i]
		a, known := byTID[int64(th.TID)]
		if known {
			out.TraceMatched++
			if a.State == "cgo call" && th.Class == "idle" {
				// A futex wait with the value 0 looks like an idle M
				// from /proc alone, but this thread's goroutine is in a
				// cgo call: it waits in C, on a condition variable,
				// semaphore or mutex of the C code.
				th.Class = "pthread-mutex"
				out.Reclassified++
			}
		}
		if !onLockWord(th.Class) {
			continue
		}
		row := ThreadOnLock{TID: th.TID, Class: th.Class, Futex: th.FutexAddr}
		if known {
			row.Goroutine, row.State, row.Stack = a.Goroutine, a.State, a.Stack
		}
		out.OnLockWord = append(out.OnLockWord, row)
	}
	return out
}

func onLockWord(class string) bool { return class == "runtime-lock" || class == "pthread-mutex" }

// threadClasses are the classes of [Thread.Class], in the order reports
// list them, with what each means.
var threadClasses = []struct{ name, help string }{
	{"running", "on a CPU or runnable, waiting for one; running Go or C code."},
	{"runtime-lock", "an M blocked on a contended Go runtime-internal lock (futex value 0xffffffff); the mutex profile has the lock's stack."},
	{"pthread-mutex", "waiting on a lock word outside the Go runtime: a cgo/C pthread mutex, condition variable or semaphore (shared futex word, or a value the runtime never uses)."},
	{"idle", "an idle M parked until the scheduler needs it (futex value 0); normal."},
	{"netpoller", "the network poller waiting for I/O in epoll; normal."},
	{"sleeping", "sleeping in nanosleep, usually the runtime's sysmon; normal."},
	{"syscall", "blocked in another system call (file or network I/O, wait4, ...)."},
	{"other", "not in a system call, or /proc did not say what it waits for (page fault, unknown architecture)."},
}

// Limits on the lists of the threads section.
const (
	maxLockRows     = 40
	maxRunDelayRows = 10
	maxErrRows      = 5
)

// threadsBlindSpot is the caveat the threads section always carries.
const threadsBlindSpot = `What this view cannot see: goroutines waiting on a contended sync.Mutex or
sync.RWMutex park in the Go scheduler, and their OS threads go on running
other goroutines (or park as idle Ms), so that contention never shows up
here; the mutex and block profiles and the execution trace show it. This
view explains runtime-internal lock contention, cgo/pthread locks, CPU
starvation (run delay) and idle threads.
`

// writeParked prints the goroutines parked on locks when the window ended.
func writeParked(w io.Writer, parked []ParkedSite) {
	if len(parked) == 0 {
		fmt.Fprintf(w, "\nNo goroutine was parked on a lock when the window ended.\n")
		return
	}
	fmt.Fprintf(w, "\nGOROUTINES PARKED ON LOCKS when the window ended\n")
	for i, s := range parked {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more sites\n", len(parked)-i)
			break
		}
		stuck := ""
		if s.NoProgress > 0 {
			stuck = "  no progress for " + textfmt.Dur(s.NoProgress)
		}
		if s.Named {
			stuck = "  (named locks: see NAMED LOCKS)"
		}
		fmt.Fprintf(w, "  %5d  %-14s %s%s\n", s.Waiters, s.Kind, s.Where(), stuck)
	}
	fmt.Fprintf(w, "  (A lock that is still held shows here, not in the trace's wait totals.)\n")
}

// writeOSThreads prints the threads section: the signals, the threads by
// class, those blocked on lock words with what the trace saw on them, and
// those that waited longest for a CPU.
func writeOSThreads(w io.Writer, t *OSThreads) {
	fmt.Fprintf(w, "\nOS THREADS (/proc/self/task when the window ended: %d threads", len(t.Threads.Threads))
	if t.Vanished > 0 {
		fmt.Fprintf(w, "; %d more exited while being read", t.Vanished)
	}
	fmt.Fprintf(w, ")\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  futex waiters\t%d\tthreads blocked on a lock word right now (runtime-lock + pthread-mutex)\n", t.FutexWaiters)
	if t.RatesValid {
		fmt.Fprintf(tw, "  run delay\t%.3f s/s\ttime threads were runnable but waited for a CPU, per second, summed over threads\n", t.RunDelay)
		fmt.Fprintf(tw, "  ctx switches\t%.0f /s\tvoluntary + involuntary context switches, all threads\n", t.CtxSwitches)
	}
	tw.Flush()

	counts := map[string]int{}
	for _, th := range t.Threads.Threads {
		counts[th.Class]++
	}
	fmt.Fprintf(w, "  Threads by class:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range threadClasses {
		if counts[c.name] > 0 || onLockWord(c.name) {
			fmt.Fprintf(tw, "    %s\t%d\t%s\n", c.name, counts[c.name], c.help)
		}
	}
	tw.Flush()
	writeLockWordThreads(w, t)
	writeRunDelay(w, t)

	var errRows []Thread
	for _, th := range t.Threads.Threads {
		if th.Err != "" {
			errRows = append(errRows, th)
		}
	}
	if len(errRows) > 0 {
		fmt.Fprintf(w, "  Threads whose files could not be fully read: %d\n", len(errRows))
		for _, th := range errRows[:min(len(errRows), maxErrRows)] {
			fmt.Fprintf(w, "    tid %d: %s\n", th.TID, printable(th.Err))
		}
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "  Note: %s\n", n)
	}
	fmt.Fprintf(w, "  The trace knew %d of these %d threads by id (Go trace thread ids are Linux tids).\n",
		t.TraceMatched, len(t.Threads.Threads))
	if t.Reclassified > 0 {
		fmt.Fprintf(w, "  %s in a futex wait on the value 0, which /proc alone takes for an idle M, ran a goroutine in a cgo call:\n"+
			"  counted as pthread-mutex (waiting in C on a mutex, condition variable or semaphore).\n", textfmt.Plural(t.Reclassified, "thread", "threads"))
	}
	for _, line := range strings.Split(strings.TrimSpace(threadsBlindSpot), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

func writeLockWordThreads(w io.Writer, t *OSThreads) {
	if len(t.OnLockWord) == 0 {
		fmt.Fprintf(w, "  Threads blocked on a lock word: none\n")
		return
	}
	byTID := make(map[int]Thread, len(t.Threads.Threads))
	shared := map[uint64][]int{}
	for _, th := range t.Threads.Threads {
		byTID[th.TID] = th
		if th.FutexWaiters > 1 {
			shared[th.FutexAddr] = append(shared[th.FutexAddr], th.TID)
		}
	}
	fmt.Fprintf(w, "  Threads blocked on a lock word, and what the trace last saw on them:\n")
	for i, r := range t.OnLockWord {
		if i == maxLockRows {
			fmt.Fprintf(w, "    ... and %d more\n", len(t.OnLockWord)-i)
			break
		}
		th := byTID[r.TID]
		fmt.Fprintf(w, "    tid %-7d %-15s %-14s futex %#x val=%#x", r.TID, printable(th.Name), r.Class, r.Futex, th.FutexVal)
		if r.Goroutine != 0 {
			fmt.Fprintf(w, "  last ran g%d (%s)", r.Goroutine, r.State)
			if len(r.Stack) > 0 {
				f := r.Stack[0]
				fmt.Fprintf(w, " at %s %s:%d", stacks.Short(f.Func), path.Base(f.File), f.Line)
			}
		} else {
			fmt.Fprintf(w, "  (not in the trace window)")
		}
		fmt.Fprintln(w)
	}
	if len(shared) > 0 {
		addrs := make([]uint64, 0, len(shared))
		for a := range shared {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, func(a, b uint64) int { return cmp.Compare(len(shared[b]), len(shared[a])) })
		fmt.Fprintf(w, "  Futex words shared by several threads (a lock outside the Go runtime; the address is the lock's):\n")
		for _, a := range addrs {
			fmt.Fprintf(w, "    %#x: %d threads: %s\n", a, len(shared[a]), joinTIDs(shared[a], 20))
		}
	}
	for _, r := range t.OnLockWord {
		if r.Class == "runtime-lock" {
			fmt.Fprintf(w, "  runtime-lock: the word is the M's own, so the lock's address is not known here; the mutex profile has the runtime.unlock stacks.\n")
			break
		}
	}
}

func writeRunDelay(w io.Writer, t *OSThreads) {
	if !t.RatesValid {
		return
	}
	var rows []Thread
	for _, th := range t.Threads.Threads {
		if th.RatesValid && th.RunDelay >= 0.5e-3 {
			rows = append(rows, th)
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b Thread) int { return cmp.Compare(b.RunDelay, a.RunDelay) })
	fmt.Fprintf(w, "  Threads that waited longest for a CPU (run delay per second; 1000 ms/s means always waiting):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "    TID\tNAME\tCLASS\tRUN DELAY\tVOL CS/s\tINVOL CS/s\n")
	for _, th := range rows[:min(len(rows), maxRunDelayRows)] {
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%.1f ms/s\t%.0f\t%.0f\n",
			th.TID, printable(th.Name), th.Class, th.RunDelay*1e3, th.Voluntary, th.Involuntary)
	}
	tw.Flush()
	if rows[0].RunDelay >= 0.1 {
		fmt.Fprintf(w, "  A high run delay means more runnable threads than CPUs: GOMAXPROCS above the CPU quota, or a busy host.\n")
	}
}

func joinTIDs(tids []int, limit int) string {
	var b strings.Builder
	for i, t := range tids {
		if i == limit {
			fmt.Fprintf(&b, ", ... (%d more)", len(tids)-limit)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(t))
	}
	return b.String()
}

// printable replaces control characters and invalid UTF-8 in s (a thread
// name is whatever the program set) so that they cannot garble a terminal
// or the table layout.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
