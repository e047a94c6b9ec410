package locks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/lockdiag/lockdiag/locks"
)

type shard struct {
	mu    locks.Mutex // was sync.Mutex
	items map[string]int
}

func newShard(i int) *shard {
	s := &shard{items: map[string]int{}}
	s.mu.SetName(fmt.Sprintf("inventory_shard_%d", i))
	return s
}

func (s *shard) add(item string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[item] += n
}

// Name a lock where its owner is built, and use it as a sync.Mutex.
func ExampleMutex_SetName() {
	s := newShard(127)
	s.add("apple", 3)

	for _, st := range locks.Read(nil) {
		if st.Name == "inventory_shard_127" {
			fmt.Println(st.Type, st.Acquisitions, st.Held)
			break
		}
	}
	runtime.KeepAlive(s)
	// Output: mutex 1 false
}

// A monitor polls Read, reusing its slice, and looks for locks held too
// long: it names the holder goroutine, whose stack a goroutine dump shows.
func ExampleRead() {
	var states []locks.State
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for range 3 {
		<-ticker.C
		states = locks.Read(states[:0])
		for i := range states {
			st := &states[i]
			if st.Held && time.Since(st.HeldSince) > 100*time.Millisecond {
				fmt.Printf("%s held by goroutine %d since %v, %d waiting; waits p99 %v\n",
					st.Name, st.Holder, st.HeldSince, st.Waiters, st.Wait.Quantile(0.99))
				frames := runtime.CallersFrames(st.HolderStack())
				for {
					f, more := frames.Next()
					if f.Function != "" {
						fmt.Printf("\tlocked at %s %s:%d\n", f.Function, f.File, f.Line)
					}
					if !more {
						break
					}
				}
			}
		}
	}
}

// The state of a lock encodes to JSON with the schema's names; durations are
// in seconds.
func ExampleState_json() {
	var mu locks.RWMutex
	mu.SetName("config")
	mu.RLock()
	mu.RUnlock()
	for _, st := range locks.Read(nil) {
		if st.Name == "config" {
			st.Wait, st.Hold = locks.Histogram{}, locks.Histogram{} // shorter output
			st.Named = time.Time{}                                  // the same output every time
			b, err := json.Marshal(&st)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println(string(b))
			break
		}
	}
	runtime.KeepAlive(&mu)
	// Output: {"lock.id":"config","lock.type":"rwmutex","named":"0001-01-01T00:00:00Z","acquisitions":1,"contended":0,"waiters":0,"readers":0,"held":false,"lock.wait.duration":{"count":0,"sum":0,"max":0,"p50":0,"p99":0,"scale":3,"zero_threshold":5.960464477539063e-8,"zero_count":0,"offset":0,"bucket_counts":[]},"lock.held.duration":{"count":0,"sum":0,"max":0,"p50":0,"p99":0,"scale":3,"zero_threshold":5.960464477539063e-8,"zero_count":0,"offset":0,"bucket_counts":[]}}
}

// Turn the lock-order check on (in a test, say) and read what it found. This
// prints "potential deadlock: accounts then ledger, and ledger then accounts".
func ExampleSetOrderCheck() {
	if err := locks.SetOrderCheck(true); err != nil {
		fmt.Fprintln(os.Stderr, err) // unsupported platform: run without it
		return
	}
	defer locks.SetOrderCheck(false)

	var a, b locks.Mutex
	a.SetName("accounts")
	b.SetName("ledger")
	a.Lock()
	b.Lock() // accounts, then ledger
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock() // ledger, then accounts: reported here, before it could wait
	a.Unlock()
	b.Unlock()

	inversions, _ := locks.Inversions(nil)
	for _, inv := range inversions {
		if inv.A == "accounts" {
			fmt.Printf("potential deadlock: %s then %s, and %s then %s\n", inv.A, inv.B, inv.B, inv.A)
		}
	}
}
