package main

// In-memory caches whose own lock is hot: hashicorp/golang-lru/v2 (plain and
// expirable) and patrickmn/go-cache.

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	gocache "github.com/patrickmn/go-cache"
)

func init() {
	register(&scenario{name: "lru", run: runLRU,
		what: "16 main.lookupUser goroutines Get/Add on one golang-lru/v2 lru.Cache (Get takes the write lock); main.exportKeys calls Keys(), an O(n) walk of 200k entries under the read lock, every few ms"})
	register(&scenario{name: "lru-expirable", run: runLRUExpirable,
		what: "16 main.lookupUserTTL goroutines on one golang-lru/v2 expirable.LRU whose eviction callback (main.spillUser, ~200µs CPU) runs inside the cache's mutex on every Add that evicts"})
	register(&scenario{name: "gocache", run: runGoCache,
		what: "16 main.getSession readers on one patrickmn/go-cache (RWMutex); main.refreshSessions calls DeleteExpired, which walks 1M items under the write lock"})
}

type User struct {
	ID    string
	Name  string
	Roles []string
}

// loadUser builds a user as a database read would (CPU only).
//
//go:noinline
func loadUser(id string, work int) *User {
	burnSHA(work)
	return &User{ID: id, Name: "user " + id, Roles: []string{"reader"}}
}

// spillUser is the eviction callback: it encodes the evicted user for a
// second-level store.
//
//go:noinline
func spillUser(id string, u *User, work int, times *durations) {
	t0 := time.Now()
	b, _ := json.Marshal(u)
	_ = b
	burnSHA(work)
	times.add(time.Since(t0))
}

// ---- lru ----

//go:noinline
func lookupUser(c *lru.Cache[string, *User], id string, work int) *User {
	if u, ok := c.Get(id); ok {
		return u
	}
	u := loadUser(id, work)
	c.Add(id, u)
	return u
}

// exportKeys publishes the cached keys (e.g. for a warm-up file).
//
//go:noinline
func exportKeys(c *lru.Cache[string, *User], times *durations) int {
	t0 := time.Now()
	keys := c.Keys()
	times.add(time.Since(t0))
	return len(keys)
}

func runLRU(h *H) error {
	spillWork := calibrate(30 * time.Microsecond)
	var spills durations
	c, err := lru.NewWithEvict[string, *User](200_000, func(id string, u *User) { spillUser(id, u, spillWork, &spills) })
	if err != nil {
		return err
	}
	for i := 0; i < 200_000; i++ {
		id := strconv.Itoa(i)
		c.Add(id, &User{ID: id})
	}
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(20 * time.Microsecond)
	st := newStopper()
	var workers ids
	exporter := make(chan int64, 1)
	var keysTimes durations
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for !st.stopped() {
				lookupUser(c, strconv.Itoa(r.IntN(240_000)), work)
				burnSHA(work) // the rest of the request
			}
		}()
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		exporter <- goid()
		for !st.stopped() {
			exportKeys(c, &keysTimes)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	eid := <-exporter
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "long-critical-section"
	e.AlsoTrue = []string{"writers (Get takes the write lock) wait behind a reader's O(n) walk"}
	e.Lock = &Lock{Kind: "sync.RWMutex", Type: "github.com/hashicorp/golang-lru/v2.Cache[...]", Field: "lock",
		Module: module("github.com/hashicorp/golang-lru/v2"), Site: "github.com/hashicorp/golang-lru/v2.(*Cache[...]).Get", Mode: "write"}
	e.Caller = "main.lookupUser"
	e.Waiters = &Waiters{Function: "main.lookupUser", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "github.com/hashicorp/golang-lru/v2.(*Cache[...]).Keys", Caller: "main.exportKeys", Did: "cpu",
		Inside: "simplelru.(*LRU[...]).Keys: a walk of all 200k entries and a 200k-element slice, under RLock",
		Hold:   "per Keys call, lock wait included (measured): " + keysTimes.summary() + "; one call every ~3ms", GoroutineIDs: []int64{eid}}
	e.Notes = []string{
		"In golang-lru/v2 v2.0.7 the plain Cache calls its eviction callback after Unlock (lru.go Add): main.spillUser (measured " + spills.summary() + ") runs outside the lock and must not be blamed for the wait.",
		"Get takes the write lock (it updates recency), so lookups queue behind each other as well as behind Keys; Add (after a miss) is a second write-lock site of the same lock: (*Cache[...]).Add.",
		"Secondary holders: other main.lookupUser goroutines in (*Cache[...]).Get/Add, microseconds each.",
	}
	return nil
}

// ---- lru-expirable ----

//go:noinline
func lookupUserTTL(c *expirable.LRU[string, *User], id string, work int) *User {
	if u, ok := c.Get(id); ok {
		return u
	}
	u := loadUser(id, work)
	c.Add(id, u)
	return u
}

func runLRUExpirable(h *H) error {
	spillWork := calibrate(200 * time.Microsecond)
	var spills durations
	c := expirable.NewLRU[string, *User](20_000, func(id string, u *User) { spillUser(id, u, spillWork, &spills) }, 10*time.Minute)
	for i := 0; i < 20_000; i++ {
		id := strconv.Itoa(i)
		c.Add(id, &User{ID: id})
	}
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(20 * time.Microsecond)
	st := newStopper()
	var workers ids
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			r := rand.New(rand.NewPCG(uint64(i), 9))
			for !st.stopped() {
				// A quarter of the lookups miss and evict.
				lookupUserTTL(c, strconv.Itoa(r.IntN(26_000)), work)
				burnSHA(work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "long-critical-section"
	e.AlsoTrue = []string{"saturated-lock (held most of the time by the callbacks)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "github.com/hashicorp/golang-lru/v2/expirable.LRU[...]", Field: "mu",
		Module: module("github.com/hashicorp/golang-lru/v2"), Site: "github.com/hashicorp/golang-lru/v2/expirable.(*LRU[...]).Get"}
	e.Caller = "main.lookupUserTTL"
	e.Waiters = &Waiters{Function: "main.lookupUserTTL", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "github.com/hashicorp/golang-lru/v2/expirable.(*LRU[...]).Add", Caller: "main.lookupUserTTL", Did: "cpu",
		Inside: "the eviction callback main.spillUser (via main.runLRUExpirable.func1), called from expirable.(*LRU[...]).removeElement < removeOldest < Add with c.mu held (deferred Unlock)",
		Hold:   "per eviction callback (measured): " + spills.summary(), GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{
		"Waiters queue at both (*LRU[...]).Get and (*LRU[...]).Add: one lock, two sites. The unlock is deferred in both, so the Unlock frame is in the same function.",
		"Contrast with the lru scenario: the plain lru.Cache runs its callback outside the lock; expirable.LRU runs it inside.",
	}
	return nil
}

// ---- gocache ----

type Session struct {
	User    string
	Expires time.Time
}

//go:noinline
func getSession(c *gocache.Cache, id string, work int) *Session {
	burnSHA(work)
	v, ok := c.Get(id)
	if !ok {
		return nil
	}
	return v.(*Session)
}

// refreshSessions purges the expired sessions.
//
//go:noinline
func refreshSessions(c *gocache.Cache) time.Duration {
	t0 := time.Now()
	c.DeleteExpired()
	return time.Since(t0)
}

const nSessions = 1_000_000

func runGoCache(h *H) error {
	c := gocache.New(time.Hour, 0) // no janitor: main.refreshSessions purges
	// A million sessions expiring over the next two minutes: each purge
	// walks them all and deletes the ~1% that expired since the last.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < nSessions; i++ {
		id := strconv.Itoa(i)
		c.Set(id, &Session{User: id}, 2*time.Second+time.Duration(r.Int64N(int64(118*time.Second))))
	}
	c.OnEvicted(func(string, any) {})
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(20 * time.Microsecond)
	st := newStopper()
	var readers ids
	refresher := make(chan int64, 1)
	var holds durations
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			readers.add(goid())
			r := rand.New(rand.NewPCG(uint64(i), 11))
			for !st.stopped() {
				getSession(c, strconv.Itoa(r.IntN(nSessions)), work)
			}
		}()
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		refresher <- goid()
		for !st.stopped() {
			holds.add(refreshSessions(c))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	rid := <-refresher
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "long-critical-section"
	e.AlsoTrue = []string{"readers queue behind a writer (RWMutex read waits)"}
	e.Lock = &Lock{Kind: "sync.RWMutex", Type: "github.com/patrickmn/go-cache.cache", Field: "mu",
		Module: module("github.com/patrickmn/go-cache"), Site: "github.com/patrickmn/go-cache.(*cache).Get", Mode: "read"}
	e.Caller = "main.getSession"
	e.Waiters = &Waiters{Function: "main.getSession", Count: 16, GoroutineIDs: readers.list()}
	e.Holder = &Holder{Function: "github.com/patrickmn/go-cache.(*cache).DeleteExpired", Caller: "main.refreshSessions", Did: "cpu",
		Inside: "the range over c.items (1M) deleting the expired ones, under the write lock, in (*cache).DeleteExpired",
		Hold:   "per DeleteExpired call (measured, lock wait included): " + holds.summary(), GoroutineIDs: []int64{rid}}
	e.Notes = []string{
		"Cache embeds *cache, so the methods are (*cache).Get / (*cache).DeleteExpired / (*cache).Set.",
		"The OnEvicted callback runs after Unlock in DeleteExpired.",
	}
	return nil
}
