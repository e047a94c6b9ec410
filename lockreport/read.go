package lockreport

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
	"unsafe"

	"github.com/lockdiag/lockdiag/internal/textfmt"

	"golang.org/x/exp/trace"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// evBatch carries events from the parser to the analysis.
type evBatch struct {
	evs   []trace.Event
	bytes int64 // trace bytes read when the batch was filled
	err   error // on the last batch: io.EOF, a read error, or a parser panic
}

// Batches of events, handed from the parser to the analysis. The analysis
// is about twice as fast as the parser, so it sleeps between batches, and
// waking it costs the parser time (on a 2-vCPU VM, about 100 µs pass
// until the analysis runs, and each wake-up costs the parser some 15-30
// µs, inferred from the timings below). Large batches pay off: analysis
// speed over bare reading (BenchmarkAnalyzeVsRead, quiet machine, a 10 MB
// trace) was 0.75 with two batches of 4096 events, 0.85 with 8192 and
// 0.88 with 16384 (1.3 MiB, about 2 ms of parsing), and no better above;
// three big batches did no better than two (the parser fills one while
// the analysis reads the other), nor did 16 or 32 batches of 1024 events
// with the analysis woken only when half of them were full (0.8). Small
// batches need more of them: a 1 MB window analyzed at 0.56 with two
// batches of 1024 events, at 0.75-0.8 with four. So the batches hold
// batchSize events, which grows with the trace read so far, four of them
// up to 4096 events and two above; the parser makes them as it needs
// them, and they take at most half the bytes of trace read (2.6 MiB for
// the largest), a small part of what the parser holds (a generation).
const (
	minBatch     = 1024
	maxBatch     = 16384
	smallBatches = 4 // batches of fewer than maxBatch/2 events
	bigBatches   = 2 // of more
	// eventBytes is the size of a trace.Event.
	eventBytes = int64(unsafe.Sizeof(trace.Event{}))
)

// run reads the trace. It returns an error only when nothing of the trace
// could be read.
//
// With GOMAXPROCS above 1, parsing (x/exp/trace, most of the cost) runs
// in a goroutine of its own, one batch of events ahead of the analysis, so
// that the two overlap when a second CPU is free. run waits for that
// goroutine before it returns.
func (a *analyzer) run(ctx context.Context, src io.Reader) error {
	began := time.Now()
	cr := &countingReader{r: src}
	r, err := newReader(cr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadableTrace, err)
	}

	var last error
	stopped := false
	// consume analyzes one batch; it returns false when ctx ended, or
	// when x/exp/trace panicked on an event it had let through (a corrupt
	// trace).
	consume := func(b *evBatch) (ok bool) {
		defer func() {
			if p := recover(); p != nil {
				if !parserPanic() {
					panic(p)
				}
				a.partial = fmt.Sprintf("the trace is corrupt after %s (%d events): trace parser panic: %v", textfmt.Bytes(b.bytes), a.win.events, p)
				ok = false
			}
		}()
		evs := b.evs
		for len(evs) > 0 {
			// Check ctx every budgetEvery events.
			if n := a.win.events; n%budgetEvery == 0 && n > 0 && ctx.Err() != nil {
				a.partial = stopReason(ctx, began, fmt.Sprintf("%s of trace (%d events)", textfmt.Bytes(b.bytes), n))
				return false
			}
			chunk := evs[:min(len(evs), budgetEvery-int(a.win.events%budgetEvery))]
			for i := range chunk {
				a.event(&chunk[i])
			}
			evs = evs[len(chunk):]
		}
		a.win.bytes = b.bytes
		last = b.err
		b.evs = b.evs[:0]
		return true
	}

	if runtime.GOMAXPROCS(0) < 2 {
		b := &evBatch{evs: make([]trace.Event, 0, minBatch)}
		for last == nil && !stopped {
			fill(r, cr, b)
			stopped = !consume(b)
		}
	} else {
		full := make(chan *evBatch, smallBatches)
		free := make(chan *evBatch, smallBatches)
		stop := make(chan struct{})
		go produce(r, cr, full, free, stop)
		for b := range full {
			if stopped {
				continue // drain until the parser has exited
			}
			if !consume(b) {
				stopped = true
				close(stop)
			}
			free <- b
		}
	}

	switch {
	case stopped || last == nil:
	case last == io.EOF:
		a.win.eof = true
	case a.win.events == 0:
		return fmt.Errorf("%w: %v", ErrUnreadableTrace, last)
	default:
		a.partial = fmt.Sprintf("the trace is cut short or corrupt after %s (%d events): %v", textfmt.Bytes(a.win.bytes), a.win.events, last)
	}
	if a.win.events <= 1 && a.partial == "" {
		// Only the opening Sync: a header without a generation.
		return fmt.Errorf("%w: the trace has no events", ErrUnreadableTrace)
	}
	a.endGeneration()
	a.finish()
	return nil
}

// newReader turns a panic in the trace parser into an error: a corrupt
// trace must not take the host process down.
func newReader(r io.Reader) (tr *trace.Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("trace parser panic: %v", p)
		}
	}()
	return trace.NewReader(r)
}

// parserPanic reports, from a deferred function, whether the panic going
// on was raised in golang.org/x/exp/trace: its accessors (StateTransition,
// Sync, ...) can panic on a corrupt trace that the reader let through.
func parserPanic() bool {
	st := string(debug.Stack())
	i := strings.Index(st, "\npanic(")
	if i < 0 {
		return false
	}
	// After panic( come its file line, then the frames that panicked:
	// skip the runtime's own (goPanicIndex and such).
	lines := strings.Split(st[i+1:], "\n")
	for j := 2; j < len(lines); j += 2 {
		fn := lines[j]
		if strings.HasPrefix(fn, "runtime.") {
			continue
		}
		return strings.HasPrefix(fn, "golang.org/x/exp/trace.")
	}
	return false
}

// fill reads events into b until it is full or the trace ends (b.err is
// then set). A panic in the parser ends the trace with an error.
func fill(r *trace.Reader, cr *countingReader, b *evBatch) {
	evs := b.evs[len(b.evs):cap(b.evs)]
	n := 0
	defer func() {
		if p := recover(); p != nil {
			b.err = fmt.Errorf("trace parser panic: %v", p)
		}
		b.evs = b.evs[:len(b.evs)+n]
		b.bytes = cr.n
	}()
	for n < len(evs) {
		ev, err := r.ReadEvent()
		if err != nil {
			b.err = err
			return
		}
		evs[n] = ev
		n++
	}
}

// batchSize is the number of events in a batch once read bytes of trace
// have been read (the parser reads a whole generation before it returns
// its first event): the largest power of two from minBatch to maxBatch
// whose batches take at most half the bytes read.
func batchSize(read int64) int {
	size := minBatch
	for next := 2 * size; next <= maxBatch && 2*int64(batchCount(next)*next)*eventBytes <= read; next *= 2 {
		size = next
	}
	return size
}

// batchCount is how many batches of size events the parser fills ahead.
func batchCount(size int) int {
	if size >= maxBatch/2 {
		return bigBatches
	}
	return smallBatches
}

// produce fills batches until the trace ends or stop is closed, and
// closes full when it returns. It makes the batches, growing them from
// minBatch to maxBatch events; free gives them back.
func produce(r *trace.Reader, cr *countingReader, full, free chan *evBatch, stop chan struct{}) {
	defer close(full)
	size, made := minBatch, 0
	for {
		want := batchCount(size)
		var b *evBatch
		select {
		case b = <-free:
		default:
			// A new batch only when none is free.
			if made < want {
				b = &evBatch{evs: make([]trace.Event, 0, size)}
				made++
				break
			}
			select {
			case b = <-free:
			case <-stop:
				return
			}
		}
		if made > want {
			made-- // one batch fewer from now on
			continue
		}
		if cap(b.evs) < size {
			b.evs = make([]trace.Event, 0, size)
		}
		fill(r, cr, b)
		size = batchSize(cr.n)
		select {
		case full <- b:
		case <-stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}
