package procfs

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on the lists in the text report.
const (
	maxLockRows     = 40
	maxRunDelayRows = 10
	maxErrRows      = 5
)

// blindSpot is the caveat every report carries.
const blindSpot = `What this view cannot see: goroutines waiting on a contended sync.Mutex or
sync.RWMutex park in the Go scheduler, and their OS threads go on running
other goroutines (or park as idle Ms), so that contention never shows up
here; the mutex and block profiles and the execution trace show it. This
view explains runtime-internal lock contention, cgo/pthread locks, CPU
starvation (run delay) and idle threads.
`

// WriteText writes s for an on-call engineer: the signals, what each class
// of thread means and how many there are, the threads blocked on lock
// words, the threads that waited longest for a CPU, and what this view
// cannot see. It returns the first write error.
func (s *Scan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	s.writeText(ew)
	return ew.err
}

func (s *Scan) writeText(w *errWriter) {
	sum := s.Summary
	fmt.Fprintf(w, "OS threads of this process at %s: %d threads", s.Time.Format(time.RFC3339Nano), len(s.Threads))
	if s.Vanished > 0 {
		fmt.Fprintf(w, " (%d more exited while being read)", s.Vanished)
	}
	fmt.Fprintln(w, ".")

	fmt.Fprintln(w, "\nSignals")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  futex waiters\t%d\tthreads blocked on a lock word right now (runtime-lock + pthread-mutex)\n", sum.FutexWaiters)
	if sum.RatesValid {
		fmt.Fprintf(tw, "  run delay\t%.3f s/s\ttime threads were runnable but waited for a CPU, per second, summed over threads\n", sum.RunDelay)
		fmt.Fprintf(tw, "  ctx switches\t%.0f /s\tvoluntary + involuntary context switches, all threads\n", sum.CtxSwitches)
		fmt.Fprintf(tw, "  \t\t(rates over the last %.2f s)\n", sum.IntervalSeconds)
	} else {
		fmt.Fprintln(tw, "  run delay\tn/a\trates need a previous scan")
		fmt.Fprintln(tw, "  ctx switches\tn/a\trates need a previous scan")
	}
	tw.Flush()

	fmt.Fprintln(w, "\nThreads by class")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range classOrder {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", c, s.Counts[c], c.Description())
	}
	tw.Flush()

	s.writeLockWaiters(w)
	s.writeRunDelay(w)

	var errRows []Thread
	for _, t := range s.Threads {
		if t.Err != "" {
			errRows = append(errRows, t)
		}
	}
	if len(errRows) > 0 {
		fmt.Fprintf(w, "\nThreads whose files could not be fully read: %d\n", len(errRows))
		for _, t := range errRows[:min(len(errRows), maxErrRows)] {
			fmt.Fprintf(w, "  tid %d: %s\n", t.TID, printable(t.Err))
		}
		if len(errRows) > maxErrRows {
			fmt.Fprintf(w, "  ... and %d more\n", len(errRows)-maxErrRows)
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
	fmt.Fprintf(w, "\n%s", blindSpot)
}

func (s *Scan) writeLockWaiters(w *errWriter) {
	var rows []Thread
	for _, t := range s.Threads {
		if t.Class == ClassRuntimeLock || t.Class == ClassPthreadMutex {
			rows = append(rows, t)
		}
	}
	fmt.Fprintln(w, "\nThreads blocked on a lock word")
	if len(rows) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TID\tNAME\tCLASS\tFUTEX\tWAITERS ON WORD")
		for _, t := range rows[:min(len(rows), maxLockRows)] {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s uaddr=%#x val=%#x\t%d\n",
				t.TID, printable(t.Name), t.Class, t.Futex.Cmd, t.Futex.Uaddr, t.Futex.Val, t.Futex.Waiters)
		}
		tw.Flush()
		if len(rows) > maxLockRows {
			fmt.Fprintf(w, "  ... and %d more\n", len(rows)-maxLockRows)
		}
		if s.Counts[ClassRuntimeLock] > 0 {
			fmt.Fprintln(w, "  runtime-lock: the word is the M's own, so the lock's address is not known here; the mutex profile has the runtime.unlock stacks.")
		}
	}
	if len(s.SharedFutexes) > 0 {
		fmt.Fprintln(w, "\nFutex words shared by several threads (a lock outside the Go runtime; the address is the lock's)")
		for _, f := range s.SharedFutexes {
			fmt.Fprintf(w, "  %#x: %d threads: %s\n", f.Uaddr, f.Threads, joinTIDs(f.TIDs, 20))
		}
	}
}

func (s *Scan) writeRunDelay(w *errWriter) {
	if !s.Summary.RatesValid {
		return
	}
	var rows []Thread
	for _, t := range s.Threads {
		if t.RatesValid && t.RunDelayPerSec >= 0.5e-3 {
			rows = append(rows, t)
		}
	}
	slices.SortStableFunc(rows, func(a, b Thread) int { return cmp.Compare(b.RunDelayPerSec, a.RunDelayPerSec) })
	fmt.Fprintln(w, "\nThreads that waited longest for a CPU (run delay per second of wall time; 1000 ms/s means always waiting)")
	if len(rows) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TID\tNAME\tCLASS\tRUN DELAY\tVOL CS/s\tINVOL CS/s")
	for _, t := range rows[:min(len(rows), maxRunDelayRows)] {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%.1f ms/s\t%.0f\t%.0f\n",
			t.TID, printable(t.Name), t.Class, t.RunDelayPerSec*1e3, t.VoluntaryPerSec, t.InvoluntaryPerSec)
	}
	tw.Flush()
	if rows[0].RunDelayPerSec < 0.1 {
		return
	}
	fmt.Fprintln(w, "  A high run delay means more runnable threads than CPUs: GOMAXPROCS above the CPU quota, or a busy host.")
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
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// errWriter remembers the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
