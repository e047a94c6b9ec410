package diag

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	xtrace "golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// The progress witness. Scans see how many goroutines wait at a lock site,
// not whether they are the same waits: a goroutine that waits at a busy
// lock again and again, and is found waiting by every scan, looks like one
// that never got the lock. (An RWMutex's writer every 5ms behind 8 busy
// readers, under -race on 2 CPUs, was called stuck with 1 waiter: every
// scan for 2s found it in Lock, and the goroutine dump found it blocked.)
// So before a site is first called stuck, the flight recorder's window, if
// it is recording (the scans' early warning starts an armed recorder),
// says whether goroutines blocked at the site were woken lately: a stuck
// lock's waiters are not, a busy lock's are, within milliseconds. The
// witness reads the recorder lockdiag owns and starts no tracing of its
// own, which would fail a trace.Start of the program's meanwhile.

// witnessMaxBytes bounds the window the witness parses (about 0.2s of
// CPU at the parser's speed here); a larger one is not read, and the
// goroutine dump decides alone.
const witnessMaxBytes = 8 << 20

// wokenRecently returns, for each lock site, how many goroutines blocked
// at it were woken in the last recent of the flight recorder's window;
// false if the recorder is not recording or its window cannot be read.
func (m *Monitor) wokenRecently(recent time.Duration) (map[siteKey]int, bool) {
	m.mu.Lock()
	rec, traceErr := m.rec, m.traceErr
	m.mu.Unlock()
	if rec == nil || traceErr != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	data, err := rec.Window(ctx)
	if err != nil || len(data) > witnessMaxBytes {
		return nil, false
	}
	woken, err := wokenIn(bytes.NewReader(data), recent)
	if err != nil {
		return nil, false
	}
	return woken, true
}

// wokenIn reads a trace and counts, by lock site, the goroutines woken
// from a wait at that site within recent of the trace's last event.
func wokenIn(r io.Reader, recent time.Duration) (out map[siteKey]int, err error) {
	defer func() {
		if p := recover(); p != nil { // a corrupt trace must not take the host down
			out, err = nil, errors.New("diag: trace parser panic")
		}
	}()
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return nil, err
	}
	at := make(map[xtrace.GoID]siteKey)                    // goroutines waiting at a lock site
	woken := make(map[siteKey]map[xtrace.GoID]xtrace.Time) // by site, each goroutine's latest wake
	var last xtrace.Time
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		last = max(last, ev.Time())
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		switch {
		case to == xtrace.GoWaiting:
			if k, ok := traceSite(st.Stack); ok {
				at[g] = k
			} else {
				delete(at, g)
			}
		case from == xtrace.GoWaiting:
			if k, ok := at[g]; ok {
				if woken[k] == nil {
					woken[k] = make(map[xtrace.GoID]xtrace.Time)
				}
				woken[k][g] = ev.Time()
				delete(at, g)
			}
		}
	}
	out = make(map[siteKey]int, len(woken))
	since := last - xtrace.Time(recent)
	for k, gs := range woken {
		for _, t := range gs {
			if t >= since {
				out[k]++
			}
		}
	}
	return out, nil
}

// traceSite is lockSite for a trace stack: the site of the lock method on
// it, if there is one.
func traceSite(s xtrace.Stack) (siteKey, bool) {
	key, found := siteKey{}, false
	for f := range s.Frames() {
		if p := stacks.LockMethod(f.Func); p != stacks.PrimNone {
			key.kind = p.String()
		} else if !stacks.Internal(f.Func) {
			if key.kind != "" {
				key.fn, key.file, key.line = f.Func, f.File, int(f.Line)
				found = true
			}
			break
		}
	}
	return key, found
}
