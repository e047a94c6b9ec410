// Package flightrec keeps the process's execution-trace flight recorder,
// in the shape of [trace.FlightRecorder]: [New], then Start, Stop,
// Enabled and WriteTo on the [Recorder].
//
// Only one flight recorder may be active in a process. If the host program
// already runs one, [Recorder.Start] returns an error wrapping
// [ErrUnavailable] and the caller carries on without a trace. A flight
// recorder can be active at the same time as [trace.Start], so a host that
// traces on its own does not get in the way. Every user of the process's
// window, lockdiag's snapshots and a host that writes through the
// Recorder alike, shares one write of it: the runtime refuses overlapping
// writes.
//
// The analysis of a window is package lockreport.
//
// # Cost
//
// Recording costs about 110 ns per trace event: a service that rarely
// parks goroutines sees no change, one that parks them hundreds of
// thousands of times a second 10-20 % (see BENCHMARKS.md). A write forces a
// trace generation switch, whose cost grows with the goroutine count (about
// 1 ms at 1k goroutines, tens of ms at 10k).
package flightrec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/trace"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/internal/coalesce"
)

// ErrUnavailable is wrapped by the error [Recorder.Start] returns when the
// process's flight recorder is already owned by someone else.
var ErrUnavailable = errors.New("flight recorder unavailable")

// ErrNotRecording is returned by [Recorder.WriteTo] and [Recorder.Window]
// when the recorder is not running.
var ErrNotRecording = errors.New("flightrec: not recording")

// Config configures a [Recorder]. The zero value is ready to use.
type Config struct {
	// MinAge is how far back the window reaches. The runtime keeps whole
	// trace generations of about one second, so the window is rounded up
	// to a generation. If zero, 10s is used.
	MinAge time.Duration

	// MaxBytes bounds the window's size, and wins over MinAge. It is a
	// hint: a window can exceed it by about one generation. If zero,
	// 10 MiB is used.
	MaxBytes uint64
}

func (c Config) withDefaults() Config {
	if c.MinAge <= 0 {
		c.MinAge = 10 * time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 10 << 20
	}
	return c
}

// A Recorder owns the process's flight recorder. Its methods are safe for
// concurrent use.
type Recorder struct {
	cfg      Config
	writes   coalesce.Group[[]byte]
	lastSize uint64 // of the last window written; used by the write in flight only

	mu sync.Mutex
	fr *trace.FlightRecorder
}

// New returns a Recorder for cfg. It does not start recording.
func New(cfg Config) *Recorder {
	return &Recorder{cfg: cfg.withDefaults()}
}

// Start starts recording. It returns an error if r is already recording,
// and an error wrapping [ErrUnavailable] if another flight recorder is
// active in the process.
func (r *Recorder) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fr != nil {
		return errors.New("flightrec: recorder already started")
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{
		MinAge:   r.cfg.MinAge,
		MaxBytes: r.cfg.MaxBytes,
	})
	if err := fr.Start(); err != nil {
		return fmt.Errorf("flightrec: %w: another one runs in this process (runtime/trace: %v)", ErrUnavailable, err)
	}
	r.fr = fr
	return nil
}

// Stop stops recording. It waits for a write in flight to finish. Stop
// is idempotent; a stopped Recorder can be started again.
func (r *Recorder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fr == nil {
		return
	}
	// The runtime's FlightRecorder.Stop resets state that a WriteTo in
	// progress reads, without waiting for it (Go 1.26): let the write end
	// first. Holding mu keeps a new one from starting.
	r.writes.Wait()
	r.fr.Stop()
	r.fr = nil
}

// Enabled reports whether r is recording.
func (r *Recorder) Enabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fr != nil
}

// WriteTo writes the current window to w as a trace file that `go tool
// trace` opens. Concurrent callers share one write of the window.
func (r *Recorder) WriteTo(w io.Writer) (int64, error) {
	data, err := r.Window(context.Background())
	if err != nil {
		return 0, err
	}
	n, err := w.Write(data)
	return int64(n), err
}

// Window returns the current window as a trace file. Callers that arrive
// while the window is being written wait for that write and share its
// result, so the returned bytes must not be modified. If ctx ends first,
// Window returns ctx's error; the write goes on for the callers still
// waiting.
func (r *Recorder) Window(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	fr := r.fr
	if fr == nil {
		r.mu.Unlock()
		return nil, ErrNotRecording
	}
	c, _ := r.writes.Do(func() ([]byte, error) {
		// Sized like the last window, with room to grow: a buffer
		// that doubles on the way would need twice the window.
		var buf bytes.Buffer
		buf.Grow(int(min(max(r.lastSize*5/4, r.cfg.MaxBytes/4), 1<<30)))
		if _, err := fr.WriteTo(&buf); err != nil {
			return nil, fmt.Errorf("flightrec: writing window: %w", err)
		}
		r.lastSize = uint64(buf.Len())
		return buf.Bytes(), nil
	})
	r.mu.Unlock()
	return c.Wait(ctx)
}
