package main

// Stuck locks, a deadlock and a wait chain: the lock never comes free while
// the snapshot is taken.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

func init() {
	register(&scenario{name: "stuck-sleep", run: runStuckSleep, window: 3 * time.Second,
		what: "main.migrate write-locks (*Store).mu and sleeps 20s; 50 readers park in main.(*Store).Get on RLock; snapshot 3s after onset"})
	register(&scenario{name: "stuck-io", run: runStuckIO, window: 3 * time.Second,
		what: "main.syncUpstream holds (*configCache).mu while reading a loopback TCP reply that never comes; 20 main.readConfig goroutines wait; snapshot 3s after onset"})
	register(&scenario{name: "deadlock", run: runDeadlock, window: 3 * time.Second,
		what: "main.transfer(a, b) and main.transfer(b, a) deadlock on two accounts' mutexes; 3 main.balance goroutines queue behind each; snapshot 3s after"})
	register(&scenario{name: "chain", run: runChain, window: 3 * time.Second,
		what: "main.rebuildIndex holds index.mu and waits for journal.mu, which main.flushJournal holds while it sleeps; 10 main.search wait on index.mu, 3 main.appendJournal on journal.mu"})
	register(&scenario{name: "stuck-20k", run: runStuck20k, window: 3 * time.Second, guard: 30000, timeout: 3 * time.Minute,
		what: "among 20,000 idle goroutines (chan receive/select, like idle connections) main.reloadRoutes holds (*Router).mu's write lock 25s; 200 main.routeRequest readers park on RLock; snapshot 3s after onset"})
}

// ---- stuck-sleep ----

// Store is a read-mostly map behind an RWMutex.
type Store struct {
	mu   sync.RWMutex
	data map[string]string
}

//go:noinline
func (s *Store) Get(k string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.data[k]
}

// migrate write-locks the store for a long migration that sleeps.
//
//go:noinline
func migrate(s *Store, d time.Duration, holder chan<- int64) {
	s.mu.Lock()
	holder <- goid()
	time.Sleep(d)
	s.data["schema"] = "v2"
	s.mu.Unlock()
}

//go:noinline
func serveReads(s *Store, st *stopper) {
	for !st.stopped() {
		_ = s.Get("schema")
		time.Sleep(2 * time.Millisecond)
	}
}

func runStuckSleep(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	s := &Store{data: map[string]string{"schema": "v1"}}
	st := newStopper()
	var readers ids
	for i := 0; i < 50; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			readers.add(goid())
			serveReads(s, st)
		}()
	}
	time.Sleep(1500 * time.Millisecond) // healthy reads first
	holder := make(chan int64)
	go migrate(s, 20*time.Second, holder)
	hid := <-holder
	h.markOnset()
	time.Sleep(3 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "stuck-lock"
	e.AlsoTrue = []string{"held-across-blocking (sleep)"}
	e.Lock = &Lock{Kind: "sync.RWMutex", Type: "main.Store", Field: "mu", Module: "main", Site: "main.(*Store).Get", Mode: "read"}
	e.Caller = "main.serveReads"
	e.Waiters = &Waiters{Function: "main.(*Store).Get", Count: 50, GoroutineIDs: readers.list()}
	e.Holder = &Holder{Function: "main.migrate", Caller: "main.migrate", Did: "sleep", Inside: "time.Sleep in main.migrate",
		Hold: "20s (still held at the snapshot, 3s in)", GoroutineIDs: []int64{hid}}
	e.Sleeps = "main.migrate sleeps 20s while holding the write lock (that is the incident)"
	return nil
}

// ---- stuck-io ----

type configCache struct {
	mu   sync.Mutex
	conn net.Conn
	cfg  map[string]string
}

// syncUpstream asks the upstream for the configuration while holding the
// lock; the upstream never answers.
//
//go:noinline
func syncUpstream(c *configCache, holder chan<- int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	holder <- goid()
	if _, err := io.WriteString(c.conn, "GET /config\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c.conn).ReadString('\n')
	if err != nil {
		return err
	}
	c.cfg["raw"] = line
	return nil
}

//go:noinline
func readConfig(c *configCache, k string) string {
	c.mu.Lock()
	v := c.cfg[k]
	c.mu.Unlock()
	return v
}

// silentPeer reads requests and never answers.
//
//go:noinline
func silentPeer(ln net.Listener) {
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, conn)
}

func runStuckIO(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go silentPeer(ln)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	c := &configCache{conn: conn, cfg: map[string]string{"region": "eu"}}
	st := newStopper()
	var waiters ids
	for i := 0; i < 20; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			waiters.add(goid())
			for !st.stopped() {
				readConfig(c, "region")
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	holder := make(chan int64)
	go syncUpstream(c, holder)
	hid := <-holder
	h.markOnset()
	time.Sleep(3 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "stuck-lock"
	e.AlsoTrue = []string{"held-across-blocking (network read)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "main.configCache", Field: "mu", Module: "main", Site: "main.readConfig"}
	e.Caller = "main.readConfig"
	e.Waiters = &Waiters{Function: "main.readConfig", Count: 20, GoroutineIDs: waiters.list()}
	e.Holder = &Holder{Function: "main.syncUpstream", Caller: "main.syncUpstream", Did: "network-read",
		Inside: "net.(*conn).Read (via bufio.(*Reader).ReadString) in main.syncUpstream, on a loopback TCP connection whose peer never answers",
		Hold:   "forever (3s in at the snapshot)", GoroutineIDs: []int64{hid}}
	return nil
}

// ---- deadlock ----

type Account struct {
	ID      int
	mu      sync.Mutex
	balance int
}

// transfer locks from, then to: two transfers in opposite directions
// deadlock. firstHeld is closed once from is locked, and transfer waits for
// other (the opposite transfer's firstHeld) before taking to, so that the
// deadlock happens every run.
//
//go:noinline
func transfer(from, to *Account, amount int, firstHeld chan<- struct{}, other <-chan struct{}, id chan<- int64) {
	from.mu.Lock()
	id <- goid()
	close(firstHeld)
	<-other
	to.mu.Lock()
	from.balance -= amount
	to.balance += amount
	to.mu.Unlock()
	from.mu.Unlock()
}

//go:noinline
func balance(a *Account, id chan<- int64) int {
	id <- goid()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.balance
}

func runDeadlock(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	a, b := &Account{ID: 1, balance: 100}, &Account{ID: 2, balance: 100}
	// Some healthy traffic first.
	st := newStopper()
	for i := 0; i < 4; i++ {
		st.goLoop(func() {
			balance(a, make(chan int64, 1))
			balance(b, make(chan int64, 1))
			time.Sleep(time.Millisecond)
		})
	}
	time.Sleep(1200 * time.Millisecond)
	st.stop()

	h1, h2 := make(chan struct{}), make(chan struct{})
	id1, id2 := make(chan int64, 1), make(chan int64, 1)
	go transfer(a, b, 10, h1, h2, id1)
	go transfer(b, a, 20, h2, h1, id2)
	g1, g2 := <-id1, <-id2
	h.markOnset()
	time.Sleep(100 * time.Millisecond)
	qa, qb := make(chan int64, 3), make(chan int64, 3)
	for i := 0; i < 3; i++ {
		go balance(a, qa)
		go balance(b, qb)
	}
	var behindA, behindB []int64
	for i := 0; i < 3; i++ {
		behindA = append(behindA, <-qa)
		behindB = append(behindB, <-qb)
	}
	sortInts(behindA)
	sortInts(behindB)
	time.Sleep(2900 * time.Millisecond)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "deadlock"
	e.AlsoTrue = []string{"stuck-lock (both accounts' mutexes)"}
	e.Locks = []*Lock{
		{Name: "a.mu (account 1)", Kind: "sync.Mutex", Type: "main.Account", Field: "mu", Module: "main", Site: "main.transfer"},
		{Name: "b.mu (account 2)", Kind: "sync.Mutex", Type: "main.Account", Field: "mu", Module: "main", Site: "main.transfer"},
	}
	e.Caller = "main.transfer"
	e.Cycle = []*CycleMember{
		{GoroutineID: g1, Function: "main.transfer", Holds: "a.mu", WaitsFor: "b.mu", Doing: "sync.(*Mutex).Lock in main.transfer (to.mu.Lock)"},
		{GoroutineID: g2, Function: "main.transfer", Holds: "b.mu", WaitsFor: "a.mu", Doing: "sync.(*Mutex).Lock in main.transfer (to.mu.Lock)"},
	}
	e.Waiters = &Waiters{Function: "main.balance", Count: 6, GoroutineIDs: append(append([]int64{}, behindA...), behindB...)}
	e.Extra = map[string]any{"behind_a_mu": behindA, "behind_b_mu": behindB}
	e.Notes = []string{"The two transfers take their first lock, close a channel and wait for the other's before taking the second lock, so that the deadlock happens on every run; the channel wait is over within microseconds, before the deadlock."}
	return nil
}

// ---- chain ----

type index struct {
	mu    sync.Mutex
	terms map[string]int
}

type journal struct {
	mu      sync.Mutex
	entries []string
}

// flushJournal holds journal.mu across a long (sleeping) flush.
//
//go:noinline
func flushJournal(j *journal, d time.Duration, id chan<- int64) {
	j.mu.Lock()
	id <- goid()
	time.Sleep(d)
	j.entries = j.entries[:0]
	j.mu.Unlock()
}

// rebuildIndex holds index.mu and then needs journal.mu.
//
//go:noinline
func rebuildIndex(ix *index, j *journal, id chan<- int64) {
	ix.mu.Lock()
	id <- goid()
	j.mu.Lock()
	for _, e := range j.entries {
		ix.terms[e]++
	}
	j.mu.Unlock()
	ix.mu.Unlock()
}

//go:noinline
func search(ix *index, term string) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.terms[term]
}

//go:noinline
func appendJournal(j *journal, e string) {
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

func runChain(h *H) error {
	if err := h.startMonitor(); err != nil {
		return err
	}
	ix := &index{terms: map[string]int{}}
	j := &journal{}
	st := newStopper()
	var searchers, appenders ids
	for i := 0; i < 10; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			searchers.add(goid())
			for !st.stopped() {
				search(ix, "lock")
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	for i := 0; i < 3; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			appenders.add(goid())
			for !st.stopped() {
				appendJournal(j, "lock")
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	fid, rid := make(chan int64, 1), make(chan int64, 1)
	go flushJournal(j, 20*time.Second, fid)
	flusher := <-fid
	h.markOnset()
	time.Sleep(200 * time.Millisecond)
	go rebuildIndex(ix, j, rid)
	rebuilder := <-rid
	time.Sleep(2800 * time.Millisecond)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "lock-chain"
	e.AlsoTrue = []string{"stuck-lock (index.mu and journal.mu)", "held-across-blocking (sleep, in main.flushJournal)"}
	e.Locks = []*Lock{
		{Name: "index.mu", Kind: "sync.Mutex", Type: "main.index", Field: "mu", Module: "main", Site: "main.search"},
		{Name: "journal.mu", Kind: "sync.Mutex", Type: "main.journal", Field: "mu", Module: "main", Site: "main.appendJournal"},
	}
	e.Caller = "main.search"
	e.Waiters = &Waiters{Function: "main.search", Count: 10, GoroutineIDs: searchers.list()}
	e.Holder = &Holder{Function: "main.rebuildIndex", Caller: "main.rebuildIndex", Did: "lock-wait",
		Inside: "sync.(*Mutex).Lock of journal.mu in main.rebuildIndex", Hold: "until journal.mu comes free (20s after onset)", GoroutineIDs: []int64{rebuilder}}
	e.Chain = []*CycleMember{
		{Function: "main.search (10 goroutines)", WaitsFor: "index.mu"},
		{GoroutineID: rebuilder, Function: "main.rebuildIndex", Holds: "index.mu", WaitsFor: "journal.mu", Doing: "sync.(*Mutex).Lock in main.rebuildIndex"},
		{GoroutineID: flusher, Function: "main.flushJournal", Holds: "journal.mu", Doing: "time.Sleep in main.flushJournal (20s)"},
	}
	e.Extra = map[string]any{"journal_waiters_function": "main.appendJournal", "journal_waiters": appenders.list()}
	e.Sleeps = "main.flushJournal sleeps 20s holding journal.mu (the root of the chain)"
	e.Notes = []string{fmt.Sprintf("index.mu is held from %.1fs after onset by main.rebuildIndex", 0.2)}
	return nil
}

// ---- stuck-20k ----

type Router struct {
	mu     sync.RWMutex
	routes map[string]string
}

//go:noinline
func (r *Router) Match(path string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.routes[path]
}

//go:noinline
func routeRequest(r *Router, st *stopper) {
	for !st.stopped() {
		r.Match("/api")
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadRoutes holds the write lock across a long (sleeping) reload.
//
//go:noinline
func reloadRoutes(r *Router, d time.Duration, id chan<- int64) {
	r.mu.Lock()
	id <- goid()
	time.Sleep(d)
	r.routes["/api"] = "v2"
	r.mu.Unlock()
}

// idleConn is an idle connection's goroutine: it waits for a request that
// does not come.
//
//go:noinline
func idleConn(req <-chan []byte, done <-chan struct{}) {
	select {
	case <-req:
	case <-done:
	}
}

//go:noinline
func idleReader(req <-chan []byte) {
	<-req
}

func runStuck20k(h *H) error {
	done := make(chan struct{})
	req := make(chan []byte)
	for i := 0; i < 20000; i++ {
		if i%2 == 0 {
			go idleConn(req, done)
		} else {
			go idleReader(req)
		}
	}
	if err := h.startMonitor(); err != nil {
		return err
	}
	r := &Router{routes: map[string]string{"/api": "v1"}}
	st := newStopper()
	var readers ids
	for i := 0; i < 200; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			readers.add(goid())
			routeRequest(r, st)
		}()
	}
	time.Sleep(2 * time.Second)
	id := make(chan int64)
	go reloadRoutes(r, 25*time.Second, id)
	hid := <-id
	h.markOnset()
	time.Sleep(3 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "stuck-lock"
	e.AlsoTrue = []string{"held-across-blocking (sleep)"}
	e.Lock = &Lock{Kind: "sync.RWMutex", Type: "main.Router", Field: "mu", Module: "main", Site: "main.(*Router).Match", Mode: "read"}
	e.Caller = "main.routeRequest"
	e.Waiters = &Waiters{Function: "main.(*Router).Match", Count: 200, GoroutineIDs: readers.list()}
	e.Holder = &Holder{Function: "main.reloadRoutes", Caller: "main.reloadRoutes", Did: "sleep", Inside: "time.Sleep in main.reloadRoutes",
		Hold: "25s (3s in at the snapshot)", GoroutineIDs: []int64{hid}}
	e.Sleeps = "main.reloadRoutes sleeps 25s holding the write lock (the incident)"
	e.Extra = map[string]any{"idle_goroutines": 20000, "idle_functions": []string{"main.idleConn (select)", "main.idleReader (chan receive)"}, "goroutine_guard": 30000}
	e.Notes = []string{"GoroutineGuard is 30000, above the ~20,200 goroutines, so the monitor collects what its guard allows; collection_not_ok lists what it skipped anyway (the full debug=2 dump stops at 1000 goroutines)."}
	return nil
}
