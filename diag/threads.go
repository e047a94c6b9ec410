package diag

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/internal/procfs"
)

// threadSampler scans /proc/self/task for the thread signals, keeping its
// descriptors open between scans. sample is called by the sampling
// goroutine only; series and close may be called by others.
type threadSampler struct {
	scanner *procfs.Scanner
	err     error // why there is no scanner

	mu     sync.Mutex
	recent []procfs.Summary // newest last, bounded
	times  []time.Time
}

// threadSeriesMax bounds the thread summaries kept for threads.json: ten
// minutes at the default 1s.
const threadSeriesMax = 600

func newThreadSampler(enabled bool) *threadSampler {
	t := &threadSampler{}
	if !enabled {
		t.err = errNoThreads
		return t
	}
	t.scanner, t.err = procfs.NewScanner("/proc/self")
	return t
}

// sample scans and stores the thread signals in out; on failure they are
// NaN.
func (t *threadSampler) sample(now time.Time, out *[numSignals]float64) error {
	out[FutexWaiters], out[RunDelay], out[CtxSwitches] = math.NaN(), math.NaN(), math.NaN()
	if t.scanner == nil {
		return nil
	}
	scan, err := t.scanner.Scan()
	if err != nil {
		return err
	}
	s := scan.Summary
	out[FutexWaiters] = float64(s.FutexWaiters)
	if s.RatesValid {
		out[RunDelay] = s.RunDelay
		out[CtxSwitches] = s.CtxSwitches
	}
	t.mu.Lock()
	if len(t.recent) == threadSeriesMax {
		t.recent = append(t.recent[:0], t.recent[1:]...)
		t.times = append(t.times[:0], t.times[1:]...)
	}
	t.recent = append(t.recent, s)
	t.times = append(t.times, now)
	t.mu.Unlock()
	return nil
}

func (t *threadSampler) close() {
	if t.scanner != nil {
		t.scanner.Close()
	}
}

// threadSeriesPoint is one sampled thread summary in threads.json.
type threadSeriesPoint struct {
	Time time.Time `json:"t"`
	procfs.Summary
}

// series returns the summaries sampled at or after from.
func (t *threadSampler) series(from time.Time) []threadSeriesPoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []threadSeriesPoint
	for i, at := range t.times {
		if !at.Before(from) {
			out = append(out, threadSeriesPoint{at, t.recent[i]})
		}
	}
	return out
}

// scanNow takes a fresh scan of every thread for a snapshot, with a
// scanner of its own: the sampler's is not safe for concurrent use. Two
// reads a little apart give the per-thread rates.
func scanNow() (*procfs.Scan, error) {
	sc, err := procfs.NewScanner("/proc/self")
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	if _, err := sc.Scan(); err != nil {
		return nil, err
	}
	timer := time.NewTimer(50 * time.Millisecond)
	<-timer.C
	return sc.Scan()
}

// ThreadsSection is the OS view of the process's threads in a report
// (Linux): the thread classes at the trigger, and what the goroutines on
// threads blocked on a lock word were doing, from the trace.
type ThreadsSection struct {
	Scan *procfs.Scan `json:"scan"`
	// OnLockWord are the threads blocked on a lock word (runtime-internal
	// or cgo), with what the trace says ran on them last.
	OnLockWord []ThreadOnLock `json:"on_lock_word,omitempty"`
	// TraceMatched is how many of the scanned threads the trace window
	// knows by their thread id.
	TraceMatched int `json:"trace_matched"`
}

// ThreadOnLock is an OS thread blocked on a lock word.
type ThreadOnLock struct {
	TID   int    `json:"tid"`
	Class string `json:"class"`
	Futex uint64 `json:"futex_addr"`
	// Goroutine, State and Stack come from the trace: the goroutine that
	// ran on this thread last, and what it was doing.
	Goroutine int64             `json:"goroutine,omitempty"`
	State     string            `json:"state,omitempty"`
	Stack     []flightrec.Frame `json:"stack,omitempty"`
}

// newThreadsSection joins a scan with the trace's view of the threads.
func newThreadsSection(scan *procfs.Scan, analysis *flightrec.Report) *ThreadsSection {
	ts := &ThreadsSection{Scan: scan}
	byTID := map[int64]flightrec.ThreadActivity{}
	if analysis != nil {
		for _, a := range analysis.Threads {
			byTID[a.Thread] = a
		}
	}
	for _, th := range scan.Threads {
		a, known := byTID[int64(th.TID)]
		if known {
			ts.TraceMatched++
		}
		if th.Class != procfs.ClassRuntimeLock && th.Class != procfs.ClassPthreadMutex {
			continue
		}
		row := ThreadOnLock{TID: th.TID, Class: th.Class.String(), Futex: th.Futex.Uaddr}
		if known {
			row.Goroutine, row.State, row.Stack = a.Goroutine, a.State, a.Stack
		}
		ts.OnLockWord = append(ts.OnLockWord, row)
	}
	return ts
}

func (t *ThreadsSection) writeText(w io.Writer) error {
	fmt.Fprintf(w, "OS THREADS (/proc/self/task at the trigger)\n")
	if err := t.Scan.WriteText(w); err != nil {
		return err
	}
	if len(t.OnLockWord) > 0 {
		fmt.Fprintf(w, "  Threads blocked on a lock word, and what the trace last saw on them:\n")
		for _, r := range t.OnLockWord {
			fmt.Fprintf(w, "    tid %-7d %-14s futex %#x", r.TID, r.Class, r.Futex)
			if r.Goroutine != 0 {
				fmt.Fprintf(w, "  last ran g%d (%s)", r.Goroutine, r.State)
				if len(r.Stack) > 0 {
					f := r.Stack[0]
					fmt.Fprintf(w, " at %s %s:%d", shortFunc(f.Func), filepath.Base(f.File), f.Line)
				}
			} else {
				fmt.Fprintf(w, "  (not in the trace window)")
			}
			fmt.Fprintln(w)
		}
	}
	_, err := fmt.Fprintf(w, "  The trace knew %d of these %d threads by id (Go trace thread ids are Linux tids).\n", t.TraceMatched, len(t.Scan.Threads))
	return err
}

// threadsJSON is threads.json: the scan at the trigger and the recent
// series of thread signals.
func threadsJSON(scan *procfs.Scan, series []threadSeriesPoint) ([]byte, error) {
	return json.MarshalIndent(struct {
		AtTrigger *procfs.Scan        `json:"at_trigger"`
		Series    []threadSeriesPoint `json:"series"`
		Classes   map[string]string   `json:"classes"`
	}{scan, series, classHelp()}, "", "  ")
}

func classHelp() map[string]string {
	m := map[string]string{}
	for c := procfs.ClassOther; c <= procfs.ClassSyscall; c++ {
		m[c.String()] = c.Description()
	}
	return m
}

var errNoThreads = errors.New("thread sampling is off")
