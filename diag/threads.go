package diag

import (
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/internal/procfs"
	"github.com/lockdiag/lockdiag/lockreport"
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

// threadsForReport turns a /proc scan into the report's view of the
// threads.
func threadsForReport(scan *procfs.Scan) *lockreport.Threads {
	out := &lockreport.Threads{
		Time:            scan.Time,
		FutexWaiters:    scan.Summary.FutexWaiters,
		RatesValid:      scan.Summary.RatesValid,
		IntervalSeconds: scan.Summary.IntervalSeconds,
		RunDelay:        scan.Summary.RunDelay,
		CtxSwitches:     scan.Summary.CtxSwitches,
		Vanished:        scan.Vanished,
		Notes:           scan.Notes,
	}
	for _, t := range scan.Threads {
		out.Threads = append(out.Threads, lockreport.Thread{
			TID: t.TID, Name: t.Name, State: t.State, Class: t.Class.String(), Syscall: t.Syscall,
			FutexAddr: t.Futex.Uaddr, FutexVal: t.Futex.Val, FutexWaiters: t.Futex.Waiters,
			RatesValid: t.RatesValid, RunDelay: t.RunDelayPerSec, Voluntary: t.VoluntaryPerSec, Involuntary: t.InvoluntaryPerSec,
			Err: t.Err,
		})
	}
	return out
}

// threadsJSON is threads.json: the scan at the trigger and the recent
// series of thread signals.
func threadsJSON(scan *procfs.Scan, series []threadSeriesPoint) ([]byte, error) {
	return json.MarshalIndent(struct {
		AtTrigger *procfs.Scan        `json:"at_trigger"`
		Series    []threadSeriesPoint `json:"series"`
	}{scan, series}, "", "  ")
}

var errNoThreads = errors.New("thread sampling is off")
