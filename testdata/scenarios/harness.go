package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
)

// Expect is one scenario's ground truth. Empty fields are not known or do
// not apply.
type Expect struct {
	Name string `json:"name"`
	// Bundle is the snapshot bundle's file name in the output directory;
	// Trace a plain execution trace's.
	Bundle string `json:"bundle,omitempty"`
	Trace  string `json:"trace,omitempty"`
	What   string `json:"what"`
	// Finding is the kind of finding a correct report leads with:
	// held-across-blocking, saturated-lock, long-hold, cgo-lock, deadlock,
	// stuck-lock, lock-chain, contention-ended, reader-convoy.
	Finding string `json:"finding"`
	// AlsoTrue are other findings that are true of the incident but are
	// not the headline.
	AlsoTrue []string `json:"also_true,omitempty"`
	// Lock is the contended lock. Locks lists several (deadlock, chain).
	Lock  *Lock   `json:"lock,omitempty"`
	Locks []*Lock `json:"locks,omitempty"`
	// Caller is the program's own function that called into the library
	// (or took the lock) on the waiters' side.
	Caller  string   `json:"caller,omitempty"`
	Waiters *Waiters `json:"waiters,omitempty"`
	Holder  *Holder  `json:"holder,omitempty"`
	// Cycle is a deadlock's cycle: each member holds one lock and waits for
	// the next member's.
	Cycle []*CycleMember `json:"cycle,omitempty"`
	// Chain is a wait chain, first waiter to last holder.
	Chain []*CycleMember `json:"chain,omitempty"`
	Time  *Timing        `json:"time,omitempty"`
	// Process is the process at the snapshot.
	Process *Process `json:"process,omitempty"`
	// Collection lists the parts of the bundle the monitor did not collect
	// (status other than "ok"), from meta.json.
	Collection []bundle.Note `json:"collection_not_ok,omitempty"`
	// Sleeps says where the scenario uses time.Sleep to make something slow
	// (empty: nowhere on the holder's path).
	Sleeps string   `json:"sleeps,omitempty"`
	Notes  []string `json:"notes,omitempty"`
	// Extra is scenario-specific data (e.g. the benchmark's goroutines).
	Extra map[string]any `json:"extra,omitempty"`
}

// Lock describes a lock as a report should name it.
type Lock struct {
	// Name is how the scenario refers to it ("A", "accounts[1].mu").
	Name string `json:"name,omitempty"`
	// Kind: sync.Mutex, sync.RWMutex, pthread_mutex_t.
	Kind string `json:"kind"`
	// Type is the library type that owns the lock, package-qualified, and
	// Field the field that is the lock.
	Type  string `json:"type"`
	Field string `json:"field,omitempty"`
	// Module is the module that owns the lock code, with its version
	// ("std" for the standard library, "main" for the program).
	Module string `json:"module"`
	// Site is the function that takes the lock on the waiters' path,
	// package-qualified, after walking past Wrappers.
	Site string `json:"site"`
	// Sites lists every site of the same lock when there are several.
	Sites []string `json:"sites,omitempty"`
	// Mode is "write" or "read" for an RWMutex: how the waiters want it.
	Mode string `json:"mode,omitempty"`
	// Wrappers are functions that only call Lock/Unlock (or lend a deferred
	// unlock) and should be walked past.
	Wrappers []string `json:"wrappers,omitempty"`
	// Address is the lock's address where known (pthread mutex).
	Address string `json:"address,omitempty"`
}

// Waiters are the goroutines (or threads) queued on the lock.
type Waiters struct {
	Function     string  `json:"function"`
	Count        int     `json:"count"`
	GoroutineIDs []int64 `json:"goroutine_ids,omitempty"`
	// Where they wait when it is not a goroutine park (e.g. "futex in
	// pthread_mutex_lock inside a cgo call").
	State string `json:"state,omitempty"`
}

// Holder is who holds the lock and what it does inside.
type Holder struct {
	// Function is the function whose critical section it is (takes and
	// releases the lock), package-qualified.
	Function string `json:"function"`
	// Caller is the program's own function on the holder's stack.
	Caller string `json:"caller,omitempty"`
	// Did is what the holder does inside: cpu, sleep, network-read,
	// network-write, pipe-write-syscall, fsync-syscall, cgo-call,
	// lock-wait, c-sleep.
	Did string `json:"did"`
	// Inside is the frame that does it ("net.(*conn).Read in
	// main.(*ackSink).Write").
	Inside string `json:"inside"`
	// Hold is the typical or total time of a hold.
	Hold string `json:"hold"`
	// GoroutineIDs: the holder's goroutine, or (for a lock handed around
	// among workers) every goroutine that takes turns holding it.
	GoroutineIDs []int64 `json:"goroutine_ids,omitempty"`
	// Rotating says the holder changes with every hold.
	Rotating bool `json:"rotating,omitempty"`
	// Thread is the OS thread id of a C holder.
	Thread int `json:"thread,omitempty"`
}

// CycleMember is one goroutine in a deadlock cycle or a wait chain.
type CycleMember struct {
	GoroutineID int64  `json:"goroutine_id"`
	Function    string `json:"function"`
	Holds       string `json:"holds,omitempty"`
	WaitsFor    string `json:"waits_for,omitempty"`
	Doing       string `json:"doing,omitempty"`
}

// Timing places the incident relative to the snapshot (seconds; negative
// is before the snapshot).
type Timing struct {
	Snapshot time.Time `json:"snapshot"`
	// OnsetS is when the incident began; EndS when it ended (nil: it was
	// still going on at the snapshot).
	OnsetS float64  `json:"onset_s"`
	EndS   *float64 `json:"end_s"`
	// WindowStartS is the window start meta.json states; TraceFirstS and
	// TraceLastS are the first and last events in trace.out, converted to
	// wall-clock time with the trace's clock snapshot.
	WindowStartS float64  `json:"window_start_s"`
	TraceFirstS  *float64 `json:"trace_first_s,omitempty"`
	TraceLastS   *float64 `json:"trace_last_s,omitempty"`
}

// Process is the process at the snapshot.
type Process struct {
	Goroutines int    `json:"goroutines"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Threads    int    `json:"threads,omitempty"`
	GoVersion  string `json:"go_version"`
}

// H runs one scenario in the child process.
type H struct {
	s     *scenario
	out   string
	exp   *Expect
	m     *diag.Monitor
	onset time.Time
	end   time.Time
	done  bool
}

// startMonitor starts the monitor with the stable public API.
func (h *H) startMonitor() error {
	window := h.s.window
	if window == 0 {
		window = 3 * time.Second
	}
	maxBytes := h.s.maxBytes
	if maxBytes == 0 {
		maxBytes = 4 << 20
	}
	m, err := diag.New(diag.Config{
		Dir:              diag.DirOff,
		Rules:            diag.RulesOff,
		TraceWindow:      window,
		TraceMaxBytes:    int64(maxBytes),
		WallProfile:      -1,
		GoroutineGuard:   h.s.guard,
		BlockProfileRate: 10_000, // 10µs: a block profile in the bundle too
		// The scenarios test the report on the window before the
		// snapshot, whatever the recorder would cost here; the trace
		// modes have tests of their own (diag, diag/auto).
		Trace: diag.TraceOn,
	})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	h.m = m
	return nil
}

// markOnset records the start of the incident (the first call wins).
func (h *H) markOnset() {
	if h.onset.IsZero() {
		h.onset = time.Now()
	}
}

// markEnd records that the incident is over.
func (h *H) markEnd() { h.end = time.Now() }

// snapshot takes the snapshot, writes <name>.zip and fills in what the
// bundle says about itself.
func (h *H) snapshot() error {
	if h.m == nil {
		return fmt.Errorf("snapshot without a monitor")
	}
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := h.m.Snapshot(ctx, diag.SnapshotOptions{Reason: "scenario " + h.s.name})
	if err != nil {
		return err
	}
	b, err := h.m.Bundle(info.ID)
	if err != nil {
		return err
	}
	zipData := b.Bytes()
	h.exp.Bundle = h.s.name + ".zip"
	if err := os.WriteFile(filepath.Join(h.out, h.exp.Bundle), zipData, 0o644); err != nil {
		return err
	}
	h.done = true

	t := &Timing{Snapshot: info.Time.UTC()}
	if !h.onset.IsZero() {
		t.OnsetS = round3(h.onset.Sub(info.Time).Seconds())
	}
	if !h.end.IsZero() {
		e := round3(h.end.Sub(info.Time).Seconds())
		t.EndS = &e
	}
	meta, traceData, err := readBundle(zipData)
	if err != nil {
		return err
	}
	t.WindowStartS = round3(meta.Window.Start.Sub(info.Time).Seconds())
	if first, last, ok := traceSpan(traceData); ok {
		f, l := round3(first.Sub(info.Time).Seconds()), round3(last.Sub(info.Time).Seconds())
		t.TraceFirstS, t.TraceLastS = &f, &l
	}
	h.exp.Time = t
	h.exp.Process = &Process{Goroutines: goroutines, GOMAXPROCS: runtime.GOMAXPROCS(0), Threads: countThreads(), GoVersion: runtime.Version()}
	for _, n := range meta.Collection {
		if n.Status != "ok" {
			h.exp.Collection = append(h.exp.Collection, n)
		}
	}
	return nil
}

type bundleMeta struct {
	Window     bundle.Window `json:"window"`
	Collection []bundle.Note `json:"collection"`
}

func readBundle(data []byte) (meta bundleMeta, traceData []byte, err error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return meta, nil, err
	}
	for _, f := range zr.File {
		if f.Name != "meta.json" && f.Name != "trace.out" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return meta, nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return meta, nil, err
		}
		if f.Name == "meta.json" {
			if err := json.Unmarshal(b, &meta); err != nil {
				return meta, nil, fmt.Errorf("meta.json: %v", err)
			}
		} else {
			traceData = b
		}
	}
	return meta, traceData, nil
}

// traceSpan returns the wall-clock times of a trace's first and last events.
func traceSpan(data []byte) (first, last time.Time, ok bool) {
	if len(data) == 0 {
		return
	}
	r, err := trace.NewReader(bytes.NewReader(data))
	if err != nil {
		return
	}
	var t0, t1 trace.Time
	var cs *trace.ClockSnapshot
	n := 0
	for {
		ev, err := r.ReadEvent()
		if err != nil {
			break
		}
		if n == 0 {
			t0 = ev.Time()
		}
		t1 = ev.Time()
		n++
		if ev.Kind() == trace.EventSync && cs == nil {
			cs = ev.Sync().ClockSnapshot
		}
	}
	if n == 0 || cs == nil {
		return
	}
	wall := func(t trace.Time) time.Time { return cs.Wall.Add(time.Duration(int64(t) - int64(cs.Trace))) }
	return wall(t0), wall(t1), true
}

func round3(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return v
}

func countThreads() int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0
	}
	return len(ents)
}

// module returns "path version" of a module in the build, "std" for the
// standard library.
func module(path string) string {
	if path == "std" || path == "main" {
		return path
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return path
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return path + " " + d.Version + " (replaced)"
			}
			return path + " " + d.Version
		}
	}
	return path
}

// goid returns the current goroutine's id from runtime.Stack's header
// "goroutine N [running]:".
func goid() int64 {
	var b [64]byte
	n := runtime.Stack(b[:], false)
	s := strings.TrimPrefix(string(b[:n]), "goroutine ")
	if i := strings.IndexByte(s, ' '); i > 0 {
		id, _ := strconv.ParseInt(s[:i], 10, 64)
		return id
	}
	return 0
}

// ids collects goroutine ids from many goroutines.
type ids struct {
	mu  sync.Mutex
	ids []int64
}

func (s *ids) add(id int64) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *ids) list() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]int64(nil), s.ids...)
	sortInts(out)
	return out
}

func sortInts(a []int64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// burnSHA does CPU work: n rounds of sha256 over 1 KiB (about 2.5µs each
// on the reference machine), without blocking.
//
//go:noinline
func burnSHA(n int) [32]byte {
	var buf [1024]byte
	var sum [32]byte
	for i := 0; i < n; i++ {
		copy(buf[:], sum[:])
		sum = sha256.Sum256(buf[:])
	}
	return sum
}

// calibrate returns how many burnSHA rounds take about d.
func calibrate(d time.Duration) int {
	const probe = 400
	best := time.Duration(1 << 62)
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		burnSHA(probe)
		if e := time.Since(t0); e < best {
			best = e
		}
	}
	n := int(float64(probe) * float64(d) / float64(best))
	return max(n, 1)
}

// stopper stops a set of loops.
type stopper struct {
	ch   chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newStopper() *stopper { return &stopper{ch: make(chan struct{})} }

func (s *stopper) stopped() bool {
	select {
	case <-s.ch:
		return true
	default:
		return false
	}
}

func (s *stopper) stop() {
	s.once.Do(func() { close(s.ch) })
	s.wg.Wait()
}

// goLoop runs fn in a goroutine until stopped.
func (s *stopper) goLoop(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for !s.stopped() {
			fn()
		}
	}()
}

// durations collects measured times (holds) from many goroutines.
type durations struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *durations) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// summary is "n=N median M max X".
func (s *durations) summary() string {
	s.mu.Lock()
	d := append([]time.Duration(nil), s.d...)
	s.mu.Unlock()
	if len(d) == 0 {
		return "none measured"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	r := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
	return fmt.Sprintf("n=%d median %v p90 %v max %v", len(d), r(d[len(d)/2]), r(d[len(d)*9/10]), r(d[len(d)-1]))
}
