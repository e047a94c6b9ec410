package lockreport

import (
	"bytes"
	"context"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/locks"
)

// goid returns the calling goroutine's id, from its runtime.Stack header.
func goid() int64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	id, _ := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// namedStuckHolder locks mu, reports its goroutine id and keeps the lock
// until release is closed.
func namedStuckHolder(mu *locks.Mutex, id chan<- int64, release <-chan struct{}) {
	mu.Lock()
	id <- goid()
	<-release
	mu.Unlock()
}

func namedStuckWaiter(mu *locks.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	mu.Lock()
	mu.Unlock()
}

func goroutineDump(t *testing.T, debug int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, debug); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestNamedStuckLock: a stuck named lock leads the report by its name, with
// its holder's id and current stack from the dump, and no holder is
// guessed for it.
func TestNamedStuckLock(t *testing.T) {
	var mu locks.Mutex
	mu.SetName("report_test_stuck")
	ids := make(chan int64)
	release := make(chan struct{})
	go namedStuckHolder(&mu, ids, release)
	holder := <-ids
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go namedStuckWaiter(&mu, &wg)
	}
	defer func() {
		close(release)
		wg.Wait()
	}()
	testkit.WaitFor(t, 10*time.Second, "3 waiters", func() bool {
		for _, st := range locks.Read(nil) {
			if st.Name == "report_test_stuck" {
				return st.Waiters == 3
			}
		}
		return false
	})
	nl := NamedLock{Name: "report_test_stuck", Type: "mutex", Waiters: 3, Held: true, Holder: holder, HeldFor: 3 * time.Second,
		HeldForExact: true, Stuck: true, Acquisitions: 4, Contended: 0,
		AcquiredAt: []Frame{{Func: "github.com/lockdiag/lockdiag/lockreport.namedStuckHolder", File: "find_named_test.go", Line: 33}}}
	other := NamedLock{Name: "report_test_idle", Type: "rwmutex", Acquisitions: 10}

	for _, debug := range []int{2, 1} {
		rep, err := Analyze(context.Background(), nil, Options{NamedLocks: []NamedLock{other, nl}, Goroutines: goroutineDump(t, debug)})
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		h := rep.Headline
		for _, want := range []string{`"report_test_stuck"`, "goroutine " + strconv.FormatInt(holder, 10), "held for 3s", "namedStuckHolder", "3 goroutines wait"} {
			if !strings.Contains(h, want) {
				t.Errorf("debug=%d: headline %q does not say %q", debug, h, want)
			}
		}
		if len(rep.NamedLocks) != 2 || rep.NamedLocks[0].Name != "report_test_stuck" {
			t.Fatalf("debug=%d: named locks %+v, want the stuck one first", debug, rep.NamedLocks)
		}
		got := rep.NamedLocks[0]
		switch debug {
		case 2:
			// The holder's stack now, found in the dump by its id: it
			// waits on the channel inside namedStuckHolder.
			if got.HolderState != "chan receive" || !strings.HasSuffix(got.HolderStack[0].Func, "runtime.chanrecv1") && !containsFunc(got.HolderStack, "namedStuckHolder") {
				t.Errorf("holder in the dump: state %q, stack %+v", got.HolderState, got.HolderStack)
			}
			if !strings.Contains(h, "now in lockreport.namedStuckHolder") {
				t.Errorf("headline %q does not say where the holder is now", h)
			}
		case 1:
			// No ids in a debug=1 dump: the stack the lock sampled.
			if got.HolderStack != nil || !strings.Contains(h, "which locked it in lockreport.namedStuckHolder") {
				t.Errorf("debug=1: holder stack %+v, headline %q", got.HolderStack, h)
			}
		}
		if len(rep.Findings) == 0 || rep.Findings[0].Kind != "stuck-lock" || rep.Findings[0].Source != "named locks" {
			t.Errorf("debug=%d: findings %+v", debug, rep.Findings)
		}
		// The dump's analysis sees the waiters, and guesses no holder.
		if rep.Locks != nil {
			for _, l := range rep.Locks.Locks {
				if strings.HasSuffix(l.Func, "namedStuckWaiter") && (!l.Named || len(l.Holders) > 0 || l.NoHolder != "") {
					t.Errorf("debug=%d: dump lock %+v: want named with no guessed holder", debug, l)
				}
			}
		}
		for _, want := range []string{"NAMED LOCKS", "report_test_stuck", "report_test_idle", "STUCK"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("debug=%d: text has no %q:\n%s", debug, want, text.String())
			}
		}
		if t.Failed() {
			t.Logf("report:\n%s", text.String())
		}
	}
}

func containsFunc(fs []Frame, suffix string) bool {
	for _, f := range fs {
		if strings.HasSuffix(f.Func, suffix) {
			return true
		}
	}
	return false
}

// TestInversionFinding: an inversion is a finding, and the headline when
// nothing else happens.
func TestInversionFinding(t *testing.T) {
	inv := LockInversion{A: "accounts", B: "ledger", GoroutineAB: 7, GoroutineBA: 9, Time: time.Now(),
		StackAB: []Frame{{Func: "main.transfer", File: "/src/bank.go", Line: 30}, {Func: "main.main", File: "/src/main.go", Line: 5}},
		StackBA: []Frame{{Func: "main.audit", File: "/src/bank.go", Line: 55}}}
	rep, err := Analyze(context.Background(), nil, Options{Inversions: []LockInversion{inv}})
	if err != nil {
		t.Fatal(err)
	}
	want := `potential deadlock: lock order inversion between "accounts" and "ledger": goroutine 7 locked ledger while holding accounts in main.transfer (bank.go:30), goroutine 9 locked accounts while holding ledger in main.audit (bank.go:55)`
	if rep.Headline != want {
		t.Errorf("headline:\n got %s\nwant %s", rep.Headline, want)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != "lock-order-inversion" || len(rep.Findings[0].Evidence) < 2 ||
		!strings.Contains(rep.Findings[0].Evidence[0], "main.transfer") || !strings.Contains(rep.Findings[0].Evidence[1], "main.audit") {
		t.Errorf("findings: %+v", rep.Findings)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "LOCK ORDER INVERSIONS") {
		t.Errorf("text:\n%s", text.String())
	}
}

// namedShards are locks named by shard, taken at one call site.
type namedShards struct {
	mu [2]locks.Mutex
	n  [2]int
}

//go:noinline
func namedShardAdd(s *namedShards, i int) {
	s.mu[i].Lock()
	s.n[i]++
	end := time.Now().Add(50 * time.Microsecond)
	for time.Now().Before(end) {
		runtime.Gosched()
	}
	s.mu[i].Unlock()
}

// TestNamedLive: the trace sees waits on named locks at their caller's
// site (never package locks' frames), marks the site named, names the
// critical section by its function, and drops the caveat that locks at one
// site count as one.
func TestNamedLive(t *testing.T) {
	if testing.Short() {
		t.Skip("live contention for about half a second")
	}
	rec := startRecorder(t)

	s := &namedShards{}
	s.mu[0].SetName("report_test_shard_0")
	s.mu[1].SetName("report_test_shard_1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				shard := 0 // hot: 4 of 6 workers
				if w%3 == 0 {
					shard = 1
				}
				namedShardAdd(s, shard)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	data, err := rec.Window(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var named []NamedLock
	for _, st := range locks.Read(nil) {
		if strings.HasPrefix(st.Name, "report_test_shard_") {
			named = append(named, NamedLock{Name: st.Name, Type: st.Type, Acquisitions: st.Acquisitions, Contended: st.Contended,
				Wait: Durations{Count: st.Wait.Count, Sum: st.Wait.Sum, P50: st.Wait.Quantile(0.5), P99: st.Wait.Quantile(0.99), Max: st.Wait.Max}})
		}
	}
	runtime.KeepAlive(s) // the registry holds named locks weakly
	rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{NamedLocks: named})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s", text.String())
		}
	})
	site := findSite(rep, "Mutex.Lock", ".namedShardAdd")
	if site == nil {
		t.Fatalf("no Mutex.Lock site at namedShardAdd; sites: %+v", rep.Sites)
	}
	if !site.Named {
		t.Error("the site is not marked named")
	}
	if h := site.Holders[0]; !strings.HasSuffix(h.Func, ".namedShardAdd") || h.Op != "Mutex.Unlock" {
		t.Errorf("top holder = %s in %s, want Mutex.Unlock in namedShardAdd", h.Op, h.Func)
	}
	for _, s := range rep.Sites {
		if strings.Contains(s.Func, "lockdiag/locks.") {
			t.Errorf("site %s is a frame of package locks", s.Func)
		}
	}
	for _, c := range rep.Caveats {
		if strings.Contains(c, "count as one") {
			t.Errorf("caveat %q printed for named locks", c)
		}
	}
	if !strings.Contains(rep.Headline, `by named lock, of their wait since named: "report_test_shard_0"`) {
		t.Errorf("headline %q does not name the hot shard first", rep.Headline)
	}
}

// twoShards is two named locks in one object, locked at one site.
type twoShards struct {
	mu [2]locks.Mutex
	n  [2]int
}

//go:noinline
func (s *twoShards) reserveShard(i int, wg *sync.WaitGroup) {
	defer wg.Done()
	s.mu[i].Lock()
	s.n[i]++
	s.mu[i].Unlock()
}

// TestNamedRefutesDumpDeadlock: the dump's analysis can take a goroutine
// that waits for one shard, with the object in its frame, for the holder
// of the other shard, and then both waiters for a deadlock; the named
// locks' exact holders refute it.
func TestNamedRefutesDumpDeadlock(t *testing.T) {
	s := &twoShards{}
	s.mu[0].SetName("report_test_two_0")
	s.mu[1].SetName("report_test_two_1")
	ids := make(chan int64)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { // holds shard i; its frames do not show the object
			defer wg.Done()
			s.mu[i].Lock()
			ids <- goid()
			<-release
			s.mu[i].Unlock()
		}()
	}
	holders := []int64{<-ids, <-ids}
	for i := range 4 {
		wg.Add(1)
		go s.reserveShard(i%2, &wg)
	}
	defer func() {
		close(release)
		wg.Wait()
	}()
	testkit.WaitFor(t, 10*time.Second, "2 waiters on each shard", func() bool {
		n := 0
		for _, st := range locks.Read(nil) {
			if strings.HasPrefix(st.Name, "report_test_two_") && st.Waiters == 2 {
				n++
			}
		}
		return n == 2
	})
	var named []NamedLock
	for _, st := range locks.Read(nil) {
		if strings.HasPrefix(st.Name, "report_test_two_") {
			named = append(named, NamedLock{Name: st.Name, Type: st.Type, Waiters: st.Waiters, Held: st.Held, Holder: int64(st.Holder)})
		}
	}
	dump := goroutineDump(t, 2)
	without, _ := Analyze(context.Background(), nil, Options{Goroutines: dump})
	with, _ := Analyze(context.Background(), nil, Options{Goroutines: dump, NamedLocks: named})
	if without.Locks != nil {
		t.Logf("without the named locks: %d deadlocks inferred from the dump", len(without.Locks.Deadlocks))
	}
	if with.Locks == nil {
		t.Fatal("no locks in the dump")
	}
	for _, d := range with.Locks.Deadlocks {
		t.Errorf("deadlock kept although the named locks' holders are goroutines %v: %s", holders, d.Summary)
	}
	for _, c := range with.Locks.Chains {
		for _, g := range c.Goroutines[1:] {
			if g != holders[0] && g != holders[1] {
				t.Errorf("chain through goroutine %d, which holds no named lock: %s", g, c.Summary)
			}
		}
	}
	if strings.HasPrefix(with.Headline, "deadlock") {
		t.Errorf("headline %q", with.Headline)
	}
}
