package lockgraph

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// shapeDump builds a well-formed debug=2 dump from fuzz bytes: each byte
// pair picks a goroutine template (Mutex waiter, RLock waiter, writer
// behind readers or writer, a holder in a method or function, a waiter
// whose caller is on the same object) and addresses from a small pool, so
// that locks, holders, cycles and chains form in every combination.
func shapeDump(data []byte) string {
	const base = 0xc000100000
	addr := func(b byte) uint64 { return base + uint64(b%8)*0x40 }
	q := func(b byte) string {
		if b&0x80 != 0 {
			return "?"
		}
		return ""
	}
	var sb strings.Builder
	types := []string{"Cache", "Store", "Node"}
	for i := 0; i+1 < len(data) && i < 400; i += 2 {
		a, b := data[i], data[i+1]
		obj := addr(b)
		lock := obj + uint64(a%3)*8
		typ := types[int(b>>4)%len(types)]
		fmt.Fprintf(&sb, "goroutine %d [", i/2+1)
		switch a % 7 {
		case 0, 1: // Mutex waiter
			fmt.Fprintf(&sb, "sync.Mutex.Lock]:\ninternal/sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n\t/go/src/runtime/sema.go:95 +0x25\n")
			fmt.Fprintf(&sb, "internal/sync.(*Mutex).lockSlow(%#x%s)\n\t/go/src/internal/sync/mutex.go:149 +0x15d\n", lock, q(a))
			fmt.Fprintf(&sb, "sync.(*Mutex).Lock(...)\n\t/go/src/sync/mutex.go:46\n")
			fmt.Fprintf(&sb, "main.(*%s).get(%#x%s)\n\t/app/x.go:%d +0x10\n", typ, obj, q(b), 10+a%4)
			fmt.Fprintf(&sb, "main.(*%s).outer(%#x%s)\n\t/app/x.go:5 +0x10\n", typ, addr(b>>3), q(b<<1))
		case 2: // RLock waiter
			fmt.Fprintf(&sb, "sync.RWMutex.RLock]:\nsync.runtime_SemacquireRWMutexR(0x0?, 0x0?, 0x0?)\n\t/go/src/runtime/sema.go:100 +0x25\n")
			fmt.Fprintf(&sb, "sync.(*RWMutex).RLock(...)\n\t/go/src/sync/rwmutex.go:74\n")
			fmt.Fprintf(&sb, "main.(*%s).read(%#x%s)\n\t/app/x.go:20 +0x10\n", typ, obj, q(b))
			fmt.Fprintf(&sb, "main.(*%s).walk(%#x%s)\n\t/app/x.go:21 +0x10\n", typ, addr(b>>2), q(a<<1))
		case 3: // writer behind readers
			fmt.Fprintf(&sb, "sync.RWMutex.Lock]:\nsync.runtime_SemacquireRWMutex(0x0?, 0x0?, 0x0?)\n\t/go/src/runtime/sema.go:105 +0x25\n")
			fmt.Fprintf(&sb, "sync.(*RWMutex).Lock(%#x%s)\n\t/go/src/sync/rwmutex.go:155 +0x6b\n", lock, q(a))
			fmt.Fprintf(&sb, "main.(*%s).write(%#x%s)\n\t/app/x.go:30 +0x10\n", typ, obj, q(b))
		case 4: // writer behind a writer
			fmt.Fprintf(&sb, "sync.Mutex.Lock]:\ninternal/sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)\n\t/go/src/runtime/sema.go:95 +0x25\n")
			fmt.Fprintf(&sb, "internal/sync.(*Mutex).lockSlow(%#x)\n\t/go/src/internal/sync/mutex.go:149 +0x15d\n", lock)
			fmt.Fprintf(&sb, "sync.(*RWMutex).Lock(0x0?)\n\t/go/src/sync/rwmutex.go:150 +0x32\n")
			fmt.Fprintf(&sb, "main.(*%s).write(%#x%s)\n\t/app/x.go:30 +0x10\n", typ, obj, q(b))
		case 5: // a holder in a method
			fmt.Fprintf(&sb, "sleep]:\ntime.Sleep(0x3b9aca00)\n\t/go/src/runtime/time.go:363 +0x165\n")
			fmt.Fprintf(&sb, "main.(*%s).hold(%#x%s, %#x)\n\t/app/x.go:40 +0x10\n", typ, obj, q(b), addr(a))
		default: // a goroutine in a plain function with pointers
			fmt.Fprintf(&sb, "chan receive]:\nmain.worker(%#x, {%#x%s, 0x2}, ...)\n\t/app/x.go:50 +0x10\n", obj, addr(a), q(a))
		}
		fmt.Fprintf(&sb, "created by main.main in goroutine 1\n\t/app/x.go:60 +0x10\n\n")
	}
	return sb.String()
}

// The shapes make the graphs they should: a lock-order deadlock through
// outer frames, a chain through a pending writer.
func TestShapes(t *testing.T) {
	for _, tt := range []struct {
		data              []byte
		deadlocks, chains int
	}{
		{[]byte{0, 0x11, 0, 0x0a}, 1, 0},
		{[]byte{2, 3, 3, 3, 2, 3, 5, 3}, 0, 1},
	} {
		d, err := gdump.Parse(strings.NewReader(shapeDump(tt.data)))
		if err != nil {
			t.Fatal(err)
		}
		r := Analyze(d, Options{})
		if len(r.Deadlocks) != tt.deadlocks || len(r.Chains) != tt.chains {
			t.Errorf("%x: deadlocks %v, chains %v", tt.data, r.Deadlocks, r.Chains)
		}
	}
}

// FuzzAnalyzeShapes checks Analyze's invariants on well-formed dumps of
// every shape: holders and waiters point at goroutines of the dump, each
// deadlock is a closed cycle of waits, each chain links holder to holder.
func FuzzAnalyzeShapes(f *testing.F) {
	f.Add([]byte{0, 0x11, 0, 0x0a})               // a lock-order deadlock
	f.Add([]byte{0, 1, 0, 9, 5, 1, 5, 9})         // two Mutex waits and holders
	f.Add([]byte{0, 0x11, 0, 0x19, 5, 0x11})      // Node waiters
	f.Add([]byte{2, 3, 3, 3, 2, 3, 5, 3})         // RLock behind a pending writer
	f.Add([]byte{4, 2, 2, 2, 5, 2})               // writer behind writer, readers
	f.Add([]byte{0, 1, 1, 2, 0, 2, 1, 1, 6, 1})   // cycles through plain functions
	f.Add([]byte{0x80, 0x81, 0x82, 0x83, 3, 0x8}) // inaccurate words
	f.Fuzz(func(t *testing.T, data []byte) {
		dump := shapeDump(data)
		d, err := gdump.Parse(strings.NewReader(dump))
		if err != nil && len(d.Goroutines) > 0 {
			t.Fatalf("shapeDump wrote a bad dump: %v\n%s", err, dump)
		}
		r := Analyze(d, Options{Hints: []Hint{{Holder: "main.worker"}}})
		in := make(map[*gdump.Goroutine]bool)
		for _, g := range d.Goroutines {
			in[g] = true
		}
		for _, l := range r.Locks {
			_ = l.String()
			if len(l.Waiters) == 0 {
				t.Fatalf("lock %s without waiters", l)
			}
			if (len(l.Holders) == 0) != (l.NoHolder != "") {
				t.Fatalf("lock %s: %d holders, no-holder %q", l, len(l.Holders), l.NoHolder)
			}
			for _, w := range l.Waiters {
				if !in[w.G] || w.Site >= len(w.G.Frames) {
					t.Fatalf("waiter %+v", w)
				}
				for _, hi := range w.For {
					if hi < 0 || hi >= len(l.Holders) {
						t.Fatalf("waiter %d: For %v of %d holders", w.G.ID, w.For, len(l.Holders))
					}
				}
			}
			for _, h := range l.Holders {
				if !in[h.G] || h.Frame >= len(h.G.Frames) || h.Reason == "" || h.Confidence == 0 {
					t.Fatalf("holder %+v", h)
				}
				_ = h.String()
			}
		}
		for _, x := range r.Deadlocks {
			for i, s := range x.Steps {
				next := x.Steps[(i+1)%len(x.Steps)]
				if next.Holds != s.Waits || next.Holder == nil || next.Holder.G != next.G {
					t.Fatalf("deadlock step %d does not close: %s", i, x)
				}
			}
			if !strings.Contains(x.String(), fmt.Sprintf("goroutine %d", x.Steps[0].G.ID)) {
				t.Fatalf("deadlock text: %s", x)
			}
		}
		for _, c := range r.Chains {
			if len(c.Steps) < 2 || c.Steps[0].Holds != c.Lock {
				t.Fatalf("chain %s", c)
			}
			for i := 1; i < len(c.Steps); i++ {
				if c.Steps[i].Holds != c.Steps[i-1].Waits {
					t.Fatalf("chain step %d does not link: %s", i, c)
				}
			}
			_ = c.String()
		}
	})
}
