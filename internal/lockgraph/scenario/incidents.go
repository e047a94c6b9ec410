package scenario

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"
)

func init() {
	register("mutex-sleep", true, mutexSleep)
	register("rwmutex-writer-io", true, rwmutexWriterIO)
	register("rwmutex-reader-sleep", true, rwmutexReaderSleep)
	register("deadlock2", false, deadlock2)
	register("deadlock3", false, deadlock3)
	register("chain", true, chain)
	register("self-deadlock", false, selfDeadlock)
	register("rlock-recursive", false, rlockRecursive)
	register("same-site", true, sameSite)
	register("embedded", true, embedded)
	register("no-holder", true, noHolder)
	register("running-holder", true, runningHolder)
	register("lost-receiver", true, lostReceiver)
	register("crowd", true, crowd)
	register("once", true, once)
	register("bystander", true, bystander)
	register("once-value", true, onceValue)
	register("rlock-upgrade", false, rlockUpgrade)
	register("shared-object", true, sharedObject)
}

func addr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

const (
	stateMutex  = "sync.Mutex.Lock"
	stateRLock  = "sync.RWMutex.RLock"
	stateWLock  = "sync.RWMutex.Lock"
	stateSleep  = "sleep"
	stateSelect = "select"
	stateRecv   = "chan receive"
)

// ---- mutex-sleep: a Mutex held by a goroutine that sleeps ----

// Store holds its lock across a sleep in flush.
type Store struct {
	name string
	gen  int64
	mu   sync.Mutex
	data map[string]string
}

//go:noinline
func (s *Store) flush(held chan<- struct{}, stop *atomic.Bool) {
	s.mu.Lock()
	held <- struct{}{}
	sleepUntil(stop)
	s.gen++
	s.mu.Unlock()
}

//go:noinline
func (s *Store) Get(k string) string {
	s.mu.Lock()
	v := s.data[k]
	s.mu.Unlock()
	return v
}

func mutexSleep(r *Run) error {
	s := &Store{name: "orders", data: map[string]string{}}
	r.setAddr("object", addr(s))
	r.setAddr("lock", addr(&s.mu))
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { s.flush(held, &stop) })
	<-held
	for i := 1; i <= 3; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { s.Get("k") })
		r.expect(role, stateMutex)
	}
	r.expect("holder", stateSleep)
	r.onRelease(func() { stop.Store(true) })
	return nil
}

// ---- rwmutex-writer-io: readers and a writer behind a writer that reads from the network ----

// Registry holds its write lock across a network read in reload.
type Registry struct {
	version int64
	mu      sync.RWMutex
	entries map[string]string
}

//go:noinline
func (g *Registry) reload(conn net.Conn, held chan<- struct{}) error {
	g.mu.Lock()
	held <- struct{}{}
	var buf [1]byte
	_, err := conn.Read(buf[:])
	g.version++
	g.mu.Unlock()
	return err
}

//go:noinline
func (g *Registry) Lookup(k string) string {
	g.mu.RLock()
	v := g.entries[k]
	g.mu.RUnlock()
	return v
}

//go:noinline
func (g *Registry) Register(k, v string) {
	g.mu.Lock()
	g.entries[k] = v
	g.mu.Unlock()
}

func rwmutexWriterIO(r *Run) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-accepted
		return err
	}
	server, ok := <-accepted
	ln.Close()
	if !ok {
		client.Close()
		return fmt.Errorf("accept failed")
	}
	g := &Registry{entries: map[string]string{}}
	r.setAddr("object", addr(g))
	r.setAddr("lock", addr(&g.mu))
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { g.reload(client, held) })
	<-held
	for i := 1; i <= 3; i++ {
		role := fmt.Sprintf("reader%d", i)
		r.goRole(role, func() { g.Lookup("k") })
		r.expect(role, stateRLock)
	}
	// A second writer waits for the writer that holds the lock: its wait
	// reason is sync.Mutex.Lock (RWMutex.Lock takes the writer Mutex first).
	r.goRole("writer", func() { g.Register("k", "v") })
	r.expect("writer", stateMutex)
	r.expect("holder", "IO wait")
	r.onRelease(func() {
		server.Write([]byte{1})
		server.Close()
	})
	r.onRelease(func() { client.Close() })
	return nil
}

// ---- rwmutex-reader-sleep: a writer behind a sleeping reader, a reader behind that writer ----

// Index holds a read lock across a sleep in scan.
type Index struct {
	docs []string
	mu   sync.RWMutex
}

//go:noinline
func (x *Index) scan(held chan<- struct{}, stop *atomic.Bool) int {
	x.mu.RLock()
	held <- struct{}{}
	sleepUntil(stop)
	n := len(x.docs)
	x.mu.RUnlock()
	return n
}

//go:noinline
func (x *Index) Add(doc string) {
	x.mu.Lock()
	x.docs = append(x.docs, doc)
	x.mu.Unlock()
}

//go:noinline
func (x *Index) Find(doc string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for i, d := range x.docs {
		if d == doc {
			return i
		}
	}
	return -1
}

func rwmutexReaderSleep(r *Run) error {
	x := &Index{}
	r.setAddr("object", addr(x))
	r.setAddr("lock", addr(&x.mu))
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { x.scan(held, &stop) })
	<-held
	r.onRelease(func() { stop.Store(true) })
	r.goRole("writer", func() { x.Add("a") })
	r.expect("writer", stateWLock)
	// The reader must come after the writer is pending, or it would get
	// the read lock.
	if err := r.waitStates(tenSeconds); err != nil {
		return err
	}
	r.goRole("reader", func() { x.Find("a") })
	r.expect("reader", stateRLock)
	r.expect("holder", stateSleep)
	return nil
}

// ---- deadlock2: two goroutines lock two accounts in opposite orders ----

// Account is locked by transfer, source first.
type Account struct {
	id      int64
	balance int64
	owner   string
	mu      sync.Mutex
}

//go:noinline
func transfer(from, to *Account, amount int64, both *sync.WaitGroup) {
	from.mu.Lock()
	both.Done()
	both.Wait()
	to.mu.Lock()
	from.balance -= amount
	to.balance += amount
	to.mu.Unlock()
	from.mu.Unlock()
}

func deadlock2(r *Run) error {
	a := &Account{id: 1, owner: "alice", balance: 100}
	b := &Account{id: 2, owner: "bob", balance: 100}
	r.setAddr("a", addr(a))
	r.setAddr("b", addr(b))
	r.setAddr("a.mu", addr(&a.mu))
	r.setAddr("b.mu", addr(&b.mu))
	var both sync.WaitGroup
	both.Add(2)
	r.goRole("g1", func() { transfer(a, b, 10, &both) })
	r.goRole("g2", func() { transfer(b, a, 20, &both) })
	r.expect("g1", stateMutex)
	r.expect("g2", stateMutex)
	return nil
}

// ---- deadlock3: three goroutines in a ring ----

// Node is locked by forward, then its successor.
type Node struct {
	name string
	next *Node
	mu   sync.Mutex
}

//go:noinline
func (n *Node) forward(all *sync.WaitGroup) {
	n.mu.Lock()
	all.Done()
	all.Wait()
	n.next.mu.Lock()
	n.next.mu.Unlock()
	n.mu.Unlock()
}

func deadlock3(r *Run) error {
	n1, n2, n3 := &Node{name: "n1"}, &Node{name: "n2"}, &Node{name: "n3"}
	n1.next, n2.next, n3.next = n2, n3, n1
	var all sync.WaitGroup
	all.Add(3)
	for i, n := range []*Node{n1, n2, n3} {
		role := fmt.Sprintf("g%d", i+1)
		r.setAddr(fmt.Sprintf("n%d", i+1), addr(n))
		r.setAddr(fmt.Sprintf("n%d.mu", i+1), addr(&n.mu))
		r.goRole(role, func() { n.forward(&all) })
		r.expect(role, stateMutex)
	}
	return nil
}

// ---- chain: pushers wait for a drainer that waits for a compactor that selects ----

// Queue's drain holds its lock while it saves into the DB.
type Queue struct {
	items []int
	mu    sync.Mutex
	db    *DB
}

// DB's compact holds its lock while it waits in a select.
type DB struct {
	pages int
	mu    sync.Mutex
}

//go:noinline
func (q *Queue) push(v int) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
}

//go:noinline
func (q *Queue) drain(held chan<- struct{}) {
	q.mu.Lock()
	held <- struct{}{}
	q.db.save(len(q.items))
	q.items = q.items[:0]
	q.mu.Unlock()
}

//go:noinline
func (db *DB) save(n int) {
	db.mu.Lock()
	db.pages += n
	db.mu.Unlock()
}

//go:noinline
func (db *DB) compact(held chan<- struct{}, stop <-chan struct{}) {
	db.mu.Lock()
	held <- struct{}{}
	select {
	case <-stop:
	}
	db.pages /= 2
	db.mu.Unlock()
}

func chain(r *Run) error {
	db := &DB{}
	q := &Queue{db: db}
	r.setAddr("q", addr(q))
	r.setAddr("q.mu", addr(&q.mu))
	r.setAddr("db", addr(db))
	r.setAddr("db.mu", addr(&db.mu))
	stop := make(chan struct{})
	held := make(chan struct{}, 1)
	r.goRole("root", func() { db.compact(held, stop) })
	<-held
	r.onRelease(func() { close(stop) })
	r.goRole("middle", func() { q.drain(held) })
	<-held
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("pusher%d", i)
		r.goRole(role, func() { q.push(i) })
		r.expect(role, stateMutex)
	}
	r.expect("middle", stateMutex)
	// A select with one case compiles to a channel receive.
	r.expect("root", stateSelect, stateRecv)
	return nil
}

// ---- self-deadlock: a method locks, then calls a method that locks again ----

// Config's Reload calls apply with the lock held; apply locks it again.
type Config struct {
	path string
	mu   sync.Mutex
	vals map[string]string
}

//go:noinline
func (c *Config) Reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply("k", "v")
}

//go:noinline
func (c *Config) apply(k, v string) {
	c.mu.Lock()
	c.vals[k] = v
	c.mu.Unlock()
}

func selfDeadlock(r *Run) error {
	c := &Config{path: "/etc/app.conf", vals: map[string]string{}}
	r.setAddr("object", addr(c))
	r.setAddr("lock", addr(&c.mu))
	r.goRole("g", func() { c.Reload() })
	r.expect("g", stateMutex)
	return nil
}

// ---- rlock-recursive: a reader read-locks again while a writer is pending ----

// Tree's Walk holds a read lock and calls Len, which read-locks again.
type Tree struct {
	size int
	mu   sync.RWMutex
}

//go:noinline
func (t *Tree) Walk(held chan<- struct{}, writerPending <-chan struct{}) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	held <- struct{}{}
	<-writerPending
	return t.Len()
}

//go:noinline
func (t *Tree) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.size
}

//go:noinline
func (t *Tree) Insert() {
	t.mu.Lock()
	t.size++
	t.mu.Unlock()
}

func rlockRecursive(r *Run) error {
	t := &Tree{}
	r.setAddr("object", addr(t))
	r.setAddr("lock", addr(&t.mu))
	held := make(chan struct{}, 1)
	pending := make(chan struct{})
	r.goRole("walker", func() { t.Walk(held, pending) })
	<-held
	r.goRole("writer", func() { t.Insert() })
	r.expect("writer", stateWLock)
	if err := r.waitStates(tenSeconds); err != nil {
		return err
	}
	close(pending)
	r.expect("walker", stateRLock)
	return nil
}

// ---- same-site: two Mutexes locked at one call site, each with its holder ----

// Shard's incr is the one call site; rebalance holds a shard's lock
// while it waits on a channel.
type Shard struct {
	hits int64
	mu   sync.Mutex
}

//go:noinline
func (s *Shard) incr() {
	s.mu.Lock()
	s.hits++
	s.mu.Unlock()
}

//go:noinline
func (s *Shard) rebalance(held chan<- struct{}, stop <-chan struct{}) {
	s.mu.Lock()
	held <- struct{}{}
	<-stop
	s.hits = 0
	s.mu.Unlock()
}

func sameSite(r *Run) error {
	shards := []*Shard{{}, {}}
	stop := make(chan struct{})
	r.onRelease(func() { close(stop) })
	held := make(chan struct{}, 1)
	for i, s := range shards {
		r.setAddr(fmt.Sprintf("shard%d", i), addr(s))
		r.setAddr(fmt.Sprintf("lock%d", i), addr(&s.mu))
		holder := fmt.Sprintf("holder%d", i)
		r.goRole(holder, func() { s.rebalance(held, stop) })
		<-held
		r.expect(holder, stateRecv)
	}
	for i, s := range shards {
		for _, w := range []string{"a", "b"} {
			role := fmt.Sprintf("waiter%d%s", i, w)
			r.goRole(role, func() { s.incr() })
			r.expect(role, stateMutex)
		}
	}
	return nil
}

// ---- embedded: the lock is in a struct embedded in another ----

// Inner has the lock; Outer embeds it after other fields, so the lock is
// at a non-zero offset of the Outer and of the Inner.
type Inner struct {
	hits [3]int64
	mu   sync.Mutex
}

// Outer embeds Inner.
type Outer struct {
	name string
	id   int64
	Inner
}

//go:noinline
func (in *Inner) bump() {
	in.mu.Lock()
	in.hits[0]++
	in.mu.Unlock()
}

//go:noinline
func (o *Outer) rebuild(held chan<- struct{}, stop *atomic.Bool) {
	o.mu.Lock()
	held <- struct{}{}
	sleepUntil(stop)
	o.id++
	o.mu.Unlock()
}

func embedded(r *Run) error {
	o := &Outer{name: "outer"}
	r.setAddr("outer", addr(o))
	r.setAddr("inner", addr(&o.Inner))
	r.setAddr("lock", addr(&o.mu))
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { o.rebuild(held, &stop) })
	<-held
	r.onRelease(func() { stop.Store(true) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { o.Inner.bump() })
		r.expect(role, stateMutex)
	}
	r.expect("holder", stateSleep)
	return nil
}

// ---- no-holder: the lock was taken by a goroutine that returned ----

// Ledger's leak locks and returns without unlocking.
type Ledger struct {
	n  int64
	mu sync.Mutex
}

//go:noinline
func (l *Ledger) leak() { l.mu.Lock() }

//go:noinline
func (l *Ledger) Append() {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
}

func noHolder(r *Run) error {
	// Neighbours of the same type, each referenced by an idle goroutine:
	// none of them holds the lock.
	ledgers := make([]*Ledger, 5)
	for i := range ledgers {
		ledgers[i] = &Ledger{}
	}
	stop := make(chan struct{})
	r.onRelease(func() { close(stop) })
	for i, l := range ledgers {
		if i == 2 {
			continue
		}
		role := fmt.Sprintf("idle%d", i)
		r.goRole(role, func() { l.idle(stop) })
		r.expect(role, stateRecv)
	}
	l := ledgers[2]
	r.setAddr("object", addr(l))
	r.setAddr("lock", addr(&l.mu))
	done := make(chan struct{})
	go func() { l.leak(); close(done) }()
	<-done
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { l.Append() })
		r.expect(role, stateMutex)
	}
	r.onRelease(func() { l.mu.Unlock() })
	return nil
}

//go:noinline
func (l *Ledger) idle(stop <-chan struct{}) {
	<-stop
	l.n++
}

// ---- running-holder: the holder spins on the CPU ----

// Stats's recompute holds the lock while it computes.
type Stats struct {
	sum float64
	mu  sync.Mutex
}

//go:noinline
func (s *Stats) recompute(held chan<- struct{}, stop *atomic.Bool) {
	s.mu.Lock()
	held <- struct{}{}
	for i := 0; !stop.Load(); i++ {
		s.sum += float64(i % 7)
	}
	s.mu.Unlock()
}

//go:noinline
func (s *Stats) Add(v float64) {
	s.mu.Lock()
	s.sum += v
	s.mu.Unlock()
}

func runningHolder(r *Run) error {
	s := &Stats{}
	r.setAddr("object", addr(s))
	r.setAddr("lock", addr(&s.mu))
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { s.recompute(held, &stop) })
	<-held
	r.onRelease(func() { stop.Store(true) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { s.Add(1) })
		r.expect(role, stateMutex)
	}
	return nil
}

// ---- lost-receiver: the holder's frame does not keep its receiver ----

// Cache's migrate keeps only a pointer to the lock, so its receiver's
// spill slot is dead and the dump prints it with "?".
type Cache struct {
	hits int64
	mu   sync.RWMutex
	m    map[string]int
}

//go:noinline
func (c *Cache) migrate(held chan<- struct{}, stop <-chan struct{}) {
	mu := &c.mu
	mu.Lock()
	held <- struct{}{}
	<-stop
	mu.Unlock()
}

//go:noinline
func (c *Cache) Get(k string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

func lostReceiver(r *Run) error {
	c := &Cache{m: map[string]int{}}
	r.setAddr("object", addr(c))
	r.setAddr("lock", addr(&c.mu))
	stop := make(chan struct{})
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { c.migrate(held, stop) })
	<-held
	r.onRelease(func() { close(stop) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { c.Get("k") })
		r.expect(role, stateRLock)
	}
	r.expect("holder", stateRecv)
	return nil
}

// ---- crowd: one stuck session among many of the same type ----

// Session's serve keeps the session while it waits; one of them holds its
// lock while waiting.
type Session struct {
	id   int64
	user string
	out  []byte
	mu   sync.Mutex
}

//go:noinline
func (s *Session) serve(lock bool, held chan<- struct{}, stop <-chan struct{}) {
	if lock {
		s.mu.Lock()
		held <- struct{}{}
	}
	<-stop
	s.out = s.out[:0]
	if lock {
		s.mu.Unlock()
	}
}

//go:noinline
func (s *Session) Send(b []byte) {
	s.mu.Lock()
	s.out = append(s.out, b...)
	s.mu.Unlock()
}

func crowd(r *Run) error {
	const n, stuck = 48, 20
	stop := make(chan struct{})
	r.onRelease(func() { close(stop) })
	held := make(chan struct{}, 1)
	sessions := make([]*Session, n)
	for i := range sessions {
		sessions[i] = &Session{id: int64(i), user: "u"}
	}
	for i, s := range sessions {
		role := fmt.Sprintf("serve%d", i)
		if i == stuck {
			role = "holder"
		}
		r.goRole(role, func() { s.serve(i == stuck, held, stop) })
		if i == stuck {
			<-held
		}
		r.expect(role, stateRecv)
	}
	s := sessions[stuck]
	r.setAddr("object", addr(s))
	r.setAddr("lock", addr(&s.mu))
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { s.Send([]byte("x")) })
		r.expect(role, stateMutex)
	}
	return nil
}

// ---- once: callers of a sync.Once wait while its function blocks ----

// Client initializes itself once, in init, which waits on a channel (a
// slow dial): every Get waits in once.Do.
type Client struct {
	addr string
	once sync.Once
	conn chan struct{}
}

//go:noinline
func (c *Client) init(held chan<- struct{}, stop <-chan struct{}) {
	held <- struct{}{}
	<-stop
	c.conn = make(chan struct{})
}

//go:noinline
func (c *Client) Get(held chan<- struct{}, stop <-chan struct{}) chan struct{} {
	c.once.Do(func() { c.init(held, stop) })
	return c.conn
}

func once(r *Run) error {
	c := &Client{addr: "db:5432"}
	r.setAddr("object", addr(c))
	r.setAddr("lock", addr(&c.once))
	stop := make(chan struct{})
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { c.Get(held, stop) })
	<-held
	r.onRelease(func() { close(stop) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { c.Get(held, stop) })
		r.expect(role, stateMutex)
	}
	r.expect("holder", stateRecv)
	return nil
}

// ---- bystander: a goroutine has the locked object but does not hold the lock ----

// Feed's refresh holds the lock while it sleeps; watch only keeps the Feed
// while it waits on a channel.
type Feed struct {
	url   string
	mu    sync.Mutex
	items []string
}

//go:noinline
func (f *Feed) refresh(held chan<- struct{}, stop *atomic.Bool) {
	f.mu.Lock()
	held <- struct{}{}
	sleepUntil(stop)
	f.items = f.items[:0]
	f.mu.Unlock()
}

//go:noinline
func (f *Feed) watch(stop <-chan struct{}) {
	<-stop
	f.url = ""
}

//go:noinline
func (f *Feed) Items() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.items)
}

func bystander(r *Run) error {
	f := &Feed{url: "https://example.com/feed"}
	r.setAddr("object", addr(f))
	r.setAddr("lock", addr(&f.mu))
	stopWatch := make(chan struct{})
	r.goRole("bystander", func() { f.watch(stopWatch) })
	r.onRelease(func() { close(stopWatch) })
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { f.refresh(held, &stop) })
	<-held
	r.onRelease(func() { stop.Store(true) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { f.Items() })
		r.expect(role, stateMutex)
	}
	r.expect("bystander", stateRecv)
	r.expect("holder", stateSleep)
	return nil
}

// ---- once-value: callers of a sync.OnceValue wait while it loads ----

// Settings loads once through a sync.OnceValue: the Once lives in the
// function's closure, which no frame prints.
type Settings struct {
	name string
	load func() map[string]string
}

//go:noinline
func (s *Settings) Get(k string) string { return s.load()[k] }

//go:noinline
func loadSettings(held chan<- struct{}, stop <-chan struct{}) map[string]string {
	held <- struct{}{}
	<-stop
	return map[string]string{}
}

func onceValue(r *Run) error {
	stop := make(chan struct{})
	held := make(chan struct{}, 1)
	s := &Settings{name: "app"}
	s.load = sync.OnceValue(func() map[string]string { return loadSettings(held, stop) })
	r.setAddr("object", addr(s))
	r.goRole("holder", func() { s.Get("a") })
	<-held
	r.onRelease(func() { close(stop) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { s.Get("b") })
		r.expect(role, stateMutex)
	}
	r.expect("holder", stateRecv)
	return nil
}

// ---- rlock-upgrade: a reader calls a method that write-locks ----

// Pool's Acquire read-locks, and on a miss calls grow, which write-locks:
// the writer waits for the readers, itself among them.
type Pool struct {
	free []int
	mu   sync.RWMutex
}

//go:noinline
func (p *Pool) Acquire() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.free) == 0 {
		p.grow()
	}
	return len(p.free)
}

//go:noinline
func (p *Pool) grow() {
	p.mu.Lock()
	p.free = append(p.free, 1)
	p.mu.Unlock()
}

func rlockUpgrade(r *Run) error {
	p := &Pool{}
	r.setAddr("object", addr(p))
	r.setAddr("lock", addr(&p.mu))
	r.goRole("g", func() { p.Acquire() })
	r.expect("g", stateWLock)
	return nil
}

// ---- shared-object: many request goroutines have the server, one method holds its lock ----

// Server is passed to every request handler; its reload holds the lock.
type Server struct {
	name  string
	conns int
	mu    sync.Mutex
}

//go:noinline
func (s *Server) reload(held chan<- struct{}, stop *atomic.Bool) {
	s.mu.Lock()
	held <- struct{}{}
	sleepUntil(stop)
	s.conns = 0
	s.mu.Unlock()
}

//go:noinline
func (s *Server) Stats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

//go:noinline
func handleRequest(s *Server, id int, stop <-chan struct{}) int {
	<-stop
	if s.name == "" { // keeps s live across the wait; reads only
		id++
	}
	return id
}

func sharedObject(r *Run) error {
	s := &Server{name: "api"}
	r.setAddr("object", addr(s))
	r.setAddr("lock", addr(&s.mu))
	stopReq := make(chan struct{})
	r.onRelease(func() { close(stopReq) })
	for i := range 30 {
		role := fmt.Sprintf("request%d", i)
		r.goRole(role, func() { handleRequest(s, i, stopReq) })
		r.expect(role, stateRecv)
	}
	var stop atomic.Bool
	held := make(chan struct{}, 1)
	r.goRole("holder", func() { s.reload(held, &stop) })
	<-held
	r.onRelease(func() { stop.Store(true) })
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { s.Stats() })
		r.expect(role, stateMutex)
	}
	r.expect("holder", stateSleep)
	return nil
}
