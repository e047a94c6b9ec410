// Package incidents are the incident classes lockdiag must catch by
// itself, and the healthy shapes it must leave alone, as workloads a test
// runs in a process of its own. The program's functions are named and not
// inlined (incidentGet, incidentMigrate, ...), so that reports can be
// checked for them; they live outside lockdiag's own packages, whose
// goroutines reports leave out.
package incidents

import (
	"crypto/sha256"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Names lists the workloads.
func Names() []string {
	out := make([]string, 0, len(incidents))
	for n := range incidents {
		out = append(out, n)
	}
	return out
}

// Run runs the named workload, calling onset when the incident begins; it
// returns false for an unknown name and otherwise runs until the process
// ends.
func Run(name string, onset func()) bool {
	run, ok := incidents[name]
	if !ok {
		return false
	}
	run(onset)
	select {}
}

// incidents are what a child runs, by name (LOCKDIAG_TEST_INCIDENT). Each
// prints "onset" when the incident begins, and runs until it is killed.
var incidents = map[string]func(onset func()){
	// A lock stuck 6s after start, during the rules' warm-up: 50 readers
	// pile up behind a migration that holds the write lock for 20s.
	"warmup-stuck": func(onset func()) {
		var s store
		readers(&s, 50)
		time.Sleep(6 * time.Second)
		onset()
		incidentMigrate(&s, 20*time.Second)
	},
	// Contention from the first second: a refresher holds the lock across
	// a slow call while 40 requests queue.
	"startup": func(onset func()) {
		var mu sync.Mutex
		onset()
		for range 40 {
			go func() {
				for {
					incidentHandle(&mu)
				}
			}()
		}
		for {
			incidentRefresh(&mu)
		}
	},
	// A write lock held 25s with 200 readers parked, beside 20,000 idle
	// connection goroutines.
	"stuck-20k": func(onset func()) {
		idle(20_000)
		var s store
		time.Sleep(3 * time.Second)
		go func() {
			time.Sleep(100 * time.Millisecond)
			readers(&s, 200)
		}()
		onset()
		incidentMigrate(&s, 25*time.Second)
	},
	// A holder driven by a 50ms ticker holds the lock 41ms of every 50ms
	// across a slow call; 16 goroutines wait.
	"ticker": func(onset func()) {
		var mu sync.Mutex
		for range 16 {
			go func() {
				for {
					incidentHandle(&mu)
				}
			}()
		}
		onset()
		t := time.NewTicker(50 * time.Millisecond)
		for range t.C {
			incidentTick(&mu)
		}
	},
	// A lock-order deadlock 2s after start, with a few goroutines queued
	// behind each of the two locks.
	"deadlock": func(onset func()) {
		a, b := &account{}, &account{}
		time.Sleep(2 * time.Second)
		onset()
		go incidentTransfer(a, b)
		go incidentTransfer(b, a)
		time.Sleep(10 * time.Millisecond)
		for range 3 {
			go incidentBalance(a)
			go incidentBalance(b)
		}
		select {}
	},

	// The healthy controls.
	"cpu": func(onset func()) {
		onset()
		for range runtime.GOMAXPROCS(0) {
			go func() {
				for {
					burn(1000)
				}
			}()
		}
		select {}
	},
	// An I/O-bound HTTP service on loopback: 16 callers, each request
	// waiting 5ms on its backend (about 3k requests a second), the
	// client's pool sized for its callers as a service configures it.
	// (Callers in a tight loop with no wait keep the CPU saturated, and
	// with the default pool of 2 idle connections per host they open and
	// close connections all the time; either way their goroutines pile up
	// on the Transport's own lock: real contention, not a healthy
	// control.)
	"io": func(onset func()) {
		onset()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(5 * time.Millisecond)
			io.WriteString(w, "ok")
		}))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		for range 16 {
			go func() {
				for {
					if resp, err := client.Get("http://" + ln.Addr().String()); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		select {}
	},
	"light": func(onset func()) {
		onset()
		var mu sync.Mutex
		n := 0
		for range 8 {
			go func() {
				for {
					burn(50)
					mu.Lock()
					n++
					mu.Unlock()
					time.Sleep(time.Millisecond)
				}
			}()
		}
		select {}
	},
	// Readers of an RWMutex behind a writer on a 5ms ticker (the shape of
	// examples/rwmutex): the readers park at every write, and a scan often
	// finds most of them parked, but the lock is handed on all the time.
	// The runtime's wait count misses most of their waits: not a stuck
	// lock.
	"rwbusy": func(onset func()) {
		onset()
		var s store
		for range 8 {
			go func() {
				for {
					healthyRead(&s)
				}
			}()
		}
		tick := time.NewTicker(5 * time.Millisecond)
		for range tick.C {
			healthyWrite(&s)
		}
	},
	// 16 goroutines on 32 shard locks taken at one call site (the
	// shape of examples/sharded), on however few CPUs:
	// at any scan most of them are in Lock, woken and waiting for a CPU
	// more than blocked, but the locks are handed on all the time.
	"shardbusy": func(onset func()) {
		onset()
		var shards [32]struct {
			mu sync.Mutex
			m  map[string]int
		}
		for i := range shards {
			shards[i].m = make(map[string]int)
		}
		keys := make([]string, 4096)
		for i := range keys {
			keys[i] = "user-" + strconv.Itoa(i)
		}
		// First 6s on one of the locks (a hot lock, as the example's
		// first phase: the monitor arms its recorder and adapts the
		// mutex profile), then on all 32.
		seed := maphash.MakeSeed()
		var sharded atomic.Bool
		for w := range 16 {
			go func() {
				for i := 0; ; i++ {
					k := keys[(w*7919+i)%len(keys)]
					sh := &shards[0]
					if sharded.Load() {
						sh = &shards[maphash.String(seed, k)%32]
					}
					healthyShard(&sh.mu, sh.m, k)
				}
			}()
		}
		time.Sleep(6 * time.Second)
		sharded.Store(true)
		select {}
	},
	"idle20k": func(onset func()) {
		onset()
		idle(20_000)
		select {}
	},
	"alloc": func(onset func()) {
		onset()
		debug.SetGCPercent(10)
		for range runtime.GOMAXPROCS(0) {
			go func() {
				var keep [][]byte
				for i := 0; ; i++ {
					keep = append(keep, make([]byte, 4096))
					if len(keep) > 2000 {
						keep = keep[:0]
					}
				}
			}()
		}
		select {}
	},
}

type store struct{ mu sync.RWMutex }

type account struct {
	mu  sync.Mutex
	bal int
}

func readers(s *store, n int) {
	for range n {
		go func() {
			for {
				incidentGet(s)
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
}

func idle(n int) {
	block := make(chan struct{})
	for range n {
		go func() { <-block }()
	}
}

func burn(n int) {
	sum := sha256.Sum256(nil)
	for range n {
		sum = sha256.Sum256(sum[:])
	}
}

//go:noinline
func incidentGet(s *store) {
	s.mu.RLock()
	s.mu.RUnlock()
}

//go:noinline
func healthyRead(s *store) {
	s.mu.RLock()
	burn(8)
	s.mu.RUnlock()
}

//go:noinline
func healthyShard(mu *sync.Mutex, m map[string]int, k string) {
	mu.Lock()
	m[k]++
	for end := time.Now().Add(time.Microsecond); time.Now().Before(end); {
	}
	mu.Unlock()
}

//go:noinline
func healthyWrite(s *store) {
	s.mu.Lock()
	burn(1)
	s.mu.Unlock()
}

//go:noinline
func incidentMigrate(s *store, d time.Duration) {
	s.mu.Lock()
	time.Sleep(d)
	s.mu.Unlock()
}

//go:noinline
func incidentHandle(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

//go:noinline
func incidentRefresh(mu *sync.Mutex) {
	mu.Lock()
	time.Sleep(40 * time.Millisecond) // the slow backend call
	mu.Unlock()
	time.Sleep(time.Millisecond)
}

//go:noinline
func incidentTick(mu *sync.Mutex) {
	mu.Lock()
	time.Sleep(41 * time.Millisecond)
	mu.Unlock()
}

//go:noinline
func incidentTransfer(from, to *account) {
	from.mu.Lock()
	time.Sleep(50 * time.Millisecond)
	to.mu.Lock()
	from.bal--
	to.bal++
	to.mu.Unlock()
	from.mu.Unlock()
}

//go:noinline
func incidentBalance(a *account) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bal
}
