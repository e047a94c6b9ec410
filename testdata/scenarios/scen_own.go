package main

// Locks in the program's own code: wrapper types, a saturated lock,
// contention that ended, a sleep in an HTTP handler, a ticker-driven holder.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

func init() {
	register(&scenario{name: "wrappers", run: runWrappers,
		what: "16 main.handleOrder goroutines go through the program's own wrappers (store.lock/unlock, a helper with a deferred unlock, generic Guarded[T].With); the critical section fsyncs in main.persistOrder"})
	register(&scenario{name: "saturated", run: runSaturated,
		what: "32 main.countHit goroutines; each hold does ~200µs of CPU (sha256) under one Mutex: the lock is held nearly all the time"})
	register(&scenario{name: "ended", run: runEnded, window: 10 * time.Second, maxBytes: 8 << 20,
		what: "heavy contention in main.oldHotPath for 3s, then an uncontended main.newHotPath for 5s, then the snapshot (its 10s window reaches back to the contention)"})
	register(&scenario{name: "http-sleep", run: runHTTPSleep,
		what: "main.handlePrice, an HTTP handler on loopback, holds mu and time.Sleeps 20ms; 16 clients (main.priceClient) hit it"})
	register(&scenario{name: "ticker", run: runTicker,
		what: "main.refreshRates, driven by a 50ms ticker, holds rates.mu ~41ms of every 50ms across an HTTP call to a slow loopback upstream; 16 main.quote waiters"})
}

// ---- wrappers ----

// store is a lock wrapper: its methods only call Lock and Unlock.
type store struct {
	mu sync.Mutex
}

//go:noinline
func (s *store) lock() { s.mu.Lock() }

//go:noinline
func (s *store) unlock() { s.mu.Unlock() }

// withLock runs f with the lock held; the unlock is deferred.
//
//go:noinline
func (s *store) withLock(f func()) {
	s.lock()
	defer s.unlock()
	f()
}

// Guarded is a value behind a lock.
type Guarded[T any] struct {
	s store
	v T
}

//go:noinline
func (g *Guarded[T]) With(f func(*T)) {
	g.s.withLock(func() { f(&g.v) })
}

type orderBook struct {
	orders map[int]int
	log    *os.File
}

// applyOrder updates the book (CPU).
//
//go:noinline
func applyOrder(b *orderBook, id, work int) {
	burnSHA(work)
	b.orders[id%1024]++
}

// persistOrder appends the order to the journal and fsyncs it.
//
//go:noinline
func persistOrder(b *orderBook, id int) error {
	if _, err := fmt.Fprintf(b.log, "order %d\n", id); err != nil {
		return err
	}
	return b.log.Sync()
}

//go:noinline
func handleOrder(g *Guarded[orderBook], id, work int, times *durations) {
	burnSHA(work) // parse the request
	g.With(func(b *orderBook) {
		t0 := time.Now()
		applyOrder(b, id, work)
		_ = persistOrder(b, id)
		times.add(time.Since(t0))
	})
}

func runWrappers(h *H) error {
	dir, err := os.MkdirTemp("", "scenario-wrappers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "orders.log"))
	if err != nil {
		return err
	}
	defer f.Close()
	g := &Guarded[orderBook]{v: orderBook{orders: map[int]int{}, log: f}}
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(50 * time.Microsecond)
	st := newStopper()
	var workers ids
	var holds durations
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for n := 0; !st.stopped(); n++ {
				handleOrder(g, n, work, &holds)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (held nearly all the time)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.store (in main.Guarded[main.orderBook])", Field: "mu", Module: "main", Site: "main.handleOrder",
		Wrappers: []string{"main.(*store).lock", "main.(*store).unlock", "main.(*store).withLock", "main.(*Guarded[...]).With", "main.(*Guarded[...]).With.func1"}}
	e.Caller = "main.handleOrder"
	e.Waiters = &Waiters{Function: "main.handleOrder", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "main.handleOrder.func1", Caller: "main.handleOrder", Did: "fsync-syscall",
		Inside: "os.(*File).Sync (fsync) in main.persistOrder, after ~50µs of CPU in main.applyOrder, in the closure main.handleOrder.func1 passed to Guarded.With",
		Hold:   "per hold (measured): " + holds.summary(), GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{
		"Waiter stack: sync.(*Mutex).Lock < main.(*store).lock < main.(*store).withLock < main.(*Guarded[...]).With < main.handleOrder.",
		"Unlock stack: sync.(*Mutex).Unlock < main.(*store).unlock < main.(*store).withLock (deferred) < main.(*Guarded[...]).With < main.handleOrder.",
		"Every wrapper is go:noinline so that it is a real frame; the lock's site a report should give is main.handleOrder, the critical section main.handleOrder.func1 -> main.persistOrder.",
	}
	return nil
}

// ---- saturated ----

type hitCounter struct {
	mu   sync.Mutex
	hits map[string]int
	sum  [32]byte
}

//go:noinline
func countHit(c *hitCounter, key string, work int) {
	c.mu.Lock()
	c.sum = burnSHA(work) // ~200µs of CPU under the lock
	c.hits[key]++
	c.mu.Unlock()
}

func runSaturated(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(200 * time.Microsecond)
	outside := calibrate(20 * time.Microsecond)
	c := &hitCounter{hits: map[string]int{}}
	st := newStopper()
	var workers ids
	var holds durations
	h.markOnset()
	for i := 0; i < 32; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for n := 0; !st.stopped(); n++ {
				burnSHA(outside)
				if n%64 == 0 {
					// Sample the hold time from outside the lock's path.
					t0 := time.Now()
					burnSHA(work)
					holds.add(time.Since(t0))
				}
				countHit(c, "/home", work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "saturated-lock"
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.hitCounter", Field: "mu", Module: "main", Site: "main.countHit"}
	e.Caller = "main.countHit"
	e.Waiters = &Waiters{Function: "main.countHit", Count: 32, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "main.countHit", Caller: "main.countHit", Did: "cpu",
		Inside:       "main.burnSHA (sha256 rounds) in main.countHit: running or runnable (preempted), never blocked",
		Hold:         "~200µs of CPU per hold (the same work timed outside the lock: " + holds.summary() + "); more in wall time when the holder is preempted; the lock is held nearly 100% of the window",
		GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{"GOMAXPROCS is 2: a holder that is preempted keeps the lock while it waits for a P, so wall-clock holds exceed the CPU time."}
	return nil
}

// ---- ended ----

type counters struct {
	mu  sync.Mutex
	n   map[string]int
	sum [32]byte
}

//go:noinline
func oldHotPath(c *counters, work int) {
	c.mu.Lock()
	c.sum = burnSHA(work)
	c.n["hits"]++
	c.mu.Unlock()
}

// newHotPath is the fix: each worker keeps its own counter.
//
//go:noinline
func newHotPath(local *map[string]int, work int) {
	burnSHA(work)
	(*local)["hits"]++
}

func runEnded(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(300 * time.Microsecond)
	c := &counters{n: map[string]int{}}
	var fixed sync.WaitGroup
	var switched = make(chan struct{})
	var workers ids
	st := newStopper()
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for {
				select {
				case <-switched:
					fixed.Done()
					local := map[string]int{}
					for !st.stopped() {
						newHotPath(&local, work)
						time.Sleep(time.Millisecond)
					}
					return
				default:
				}
				oldHotPath(c, work)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	fixed.Add(16)
	close(switched)
	fixed.Wait()
	h.markEnd()
	time.Sleep(5 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "contention-ended"
	e.AlsoTrue = []string{"saturated-lock (during the 3s of contention)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.counters", Field: "mu", Module: "main", Site: "main.oldHotPath"}
	e.Caller = "main.oldHotPath"
	e.Waiters = &Waiters{Function: "main.oldHotPath", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "main.oldHotPath", Caller: "main.oldHotPath", Did: "cpu",
		Inside: "main.burnSHA in main.oldHotPath", Hold: "~300µs of CPU per hold", GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{"After the switch the same 16 goroutines run main.newHotPath (no shared lock) and sleep 1ms per iteration; nothing contends for the last 5s before the snapshot."}
	return nil
}

// ---- http-sleep ----

type priceBook struct {
	mu     sync.Mutex
	prices map[string]int
}

// handlePrice holds the lock across a 20ms sleep (a simulated rate limit).
//
//go:noinline
func handlePrice(p *priceBook, seen *ids, w http.ResponseWriter, r *http.Request) {
	seen.add(goid())
	p.mu.Lock()
	time.Sleep(20 * time.Millisecond)
	v := p.prices[r.URL.Query().Get("sku")]
	p.mu.Unlock()
	fmt.Fprintf(w, "%d\n", v)
}

//go:noinline
func priceClient(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func runHTTPSleep(h *H) error {
	p := &priceBook{prices: map[string]int{"a": 100}}
	var handlers ids
	mux := http.NewServeMux()
	mux.HandleFunc("GET /price", func(w http.ResponseWriter, r *http.Request) { handlePrice(p, &handlers, w, r) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	url := "http://" + ln.Addr().String() + "/price?sku=a"
	if err := h.startMonitor(); err != nil {
		return err
	}
	st := newStopper()
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.goLoop(func() { _ = priceClient(client, url) })
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (held nearly all the time: one 20ms sleep after another)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.priceBook", Field: "mu", Module: "main", Site: "main.handlePrice"}
	e.Caller = "main.handlePrice"
	hs := handlers.list()
	e.Waiters = &Waiters{Function: "main.handlePrice", Count: 16, GoroutineIDs: uniq(hs)}
	e.Holder = &Holder{Function: "main.handlePrice", Caller: "main.handlePrice", Did: "sleep",
		Inside: "time.Sleep in main.handlePrice (the program's own handler; net/http frames are only below it)", Hold: "20ms per request",
		GoroutineIDs: uniq(hs), Rotating: true}
	e.Sleeps = "main.handlePrice sleeps 20ms holding mu: that is the incident"
	e.Notes = []string{
		"The waiters are net/http's per-connection goroutines: main.handlePrice < main.runHTTPSleep.func1 < net/http.HandlerFunc.ServeHTTP < (*ServeMux).ServeHTTP < serverHandler.ServeHTTP < (*conn).serve. A report must say the sleep is in main.handlePrice, not in net/http.",
		"goroutine_ids are the server goroutines that ran main.handlePrice (one per keep-alive connection).",
	}
	return nil
}

func uniq(a []int64) []int64 {
	var out []int64
	for i, v := range a {
		if i == 0 || v != a[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// ---- ticker ----

type rateTable struct {
	mu    sync.Mutex
	rates map[string]float64
}

// slowUpstream is the rates service: it answers after 40ms.
//
//go:noinline
func slowUpstream(w http.ResponseWriter, r *http.Request) {
	time.Sleep(40 * time.Millisecond)
	io.WriteString(w, "EURUSD 1.08\n")
}

// fetchRates calls the upstream.
//
//go:noinline
func fetchRates(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// refreshRates holds the table's lock across the upstream call, every tick.
//
//go:noinline
func refreshRates(t *rateTable, c *http.Client, url string, st *stopper, times *durations, id chan<- int64) {
	id <- goid()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !st.stopped() {
		<-tick.C
		t.mu.Lock()
		t0 := time.Now()
		if s, err := fetchRates(c, url); err == nil {
			t.rates["EURUSD"] = float64(len(s))
		}
		times.add(time.Since(t0))
		t.mu.Unlock()
	}
}

//go:noinline
func quote(t *rateTable, pair string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rates[pair]
}

func runTicker(h *H) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rates", slowUpstream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go (&http.Server{Handler: mux}).Serve(ln)
	client := &http.Client{}
	url := "http://" + ln.Addr().String() + "/rates"
	t := &rateTable{rates: map[string]float64{}}
	if err := h.startMonitor(); err != nil {
		return err
	}
	st := newStopper()
	var workers ids
	var holds durations
	id := make(chan int64, 1)
	h.markOnset()
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		refreshRates(t, client, url, st, &holds, id)
	}()
	rid := <-id
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for !st.stopped() {
				quote(t, "EURUSD")
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"periodic holder: the lock is held ~80% of every 50ms tick, free for the rest (a fixed-phase sampler can alias with it)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.rateTable", Field: "mu", Module: "main", Site: "main.quote"}
	e.Caller = "main.quote"
	e.Waiters = &Waiters{Function: "main.quote", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "main.refreshRates", Caller: "main.refreshRates", Did: "http-call",
		Inside: "net/http.(*Client).Get in main.fetchRates: the goroutine parks in select in net/http.(*persistConn).roundTrip while the upstream (main.slowUpstream, 40ms) answers",
		Hold:   "per tick (measured): " + holds.summary() + ", every 50ms", GoroutineIDs: []int64{rid}}
	e.Sleeps = "the upstream handler main.slowUpstream (other goroutines, same process, loopback HTTP) sleeps 40ms: the upstream's latency; the holder does not sleep"
	return nil
}
