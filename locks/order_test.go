package locks

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func orderOn(t *testing.T) {
	t.Helper()
	needGoid(t)
	if err := SetOrderCheck(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { SetOrderCheck(false) })
}

// inversionCount returns how many inversions were reported so far.
func inversionCount() int {
	invs, _ := Inversions(nil)
	return len(invs)
}

// inversionOf returns the inversion between the locks named a and b reported
// after the first since inversions, if any.
func inversionOf(a, b string, since int) (Inversion, bool) {
	invs, _ := Inversions(nil)
	for _, inv := range invs[since:] {
		if inv.A == a && inv.B == b || inv.A == b && inv.B == a {
			return inv, true
		}
	}
	return Inversion{}, false
}

// lockAThenB and lockBThenA are the two sides of a lock-order inversion,
// stepped by the test through channels. lockAThenB leaves A locked: the test
// unlocks it to break the deadlock.
func lockAThenB(a, b *Mutex, hasA chan<- struct{}, goB <-chan struct{}) {
	a.Lock()
	close(hasA)
	<-goB
	b.Lock()
	b.Unlock()
}

func lockBThenA(a, b *Mutex, hasB chan<- struct{}, goA <-chan struct{}) {
	b.Lock()
	close(hasB)
	<-goA
	a.Lock()
	a.Unlock()
	b.Unlock()
}

// TestOrderInversionBeforeDeadlock sets up a real deadlock: one goroutine
// holds A and waits for B, the other holds B and then locks A. The inversion
// must be reported before the second goroutine waits for A; the test then
// breaks the deadlock by unlocking A itself (sync allows it).
func TestOrderInversionBeforeDeadlock(t *testing.T) {
	orderOn(t)
	since := inversionCount()
	var a, b Mutex
	a.SetName("order_a")
	b.SetName("order_b")

	hasA, hasB := make(chan struct{}), make(chan struct{})
	goB, goA := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { lockAThenB(&a, &b, hasA, goB) })
	<-hasA
	wg.Go(func() { lockBThenA(&a, &b, hasB, goA) })
	<-hasB
	close(goB)
	waitFor(t, "lockAThenB to wait for B", func() bool { return find(t, "order_b").Waiters == 1 })
	if _, ok := inversionOf("order_a", "order_b", since); ok {
		t.Fatal("inversion reported with a single lock order seen")
	}
	close(goA)
	waitFor(t, "lockBThenA to wait for A", func() bool { return find(t, "order_a").Waiters == 1 })

	// Deadlocked: each goroutine holds the lock the other waits for. The
	// inversion must already be reported.
	inv, ok := inversionOf("order_a", "order_b", since)
	a.Unlock() // break the deadlock
	wg.Wait()
	if !ok {
		t.Fatal("no inversion reported while the two goroutines were deadlocked")
	}
	if inv.A != "order_a" || inv.B != "order_b" {
		t.Errorf("inversion %s then %s, want order_a then order_b (the order seen first)", inv.A, inv.B)
	}
	if names := funcNames(inv.StackAB); len(names) == 0 || !strings.HasSuffix(names[0], "locks.lockAThenB") {
		t.Errorf("StackAB starts %v, want lockAThenB", names)
	}
	if names := funcNames(inv.StackBA); len(names) == 0 || !strings.HasSuffix(names[0], "locks.lockBThenA") {
		t.Errorf("StackBA starts %v, want lockBThenA", names)
	}
	if inv.GoroutineAB == 0 || inv.GoroutineBA == 0 || inv.GoroutineAB == inv.GoroutineBA || inv.Time.IsZero() {
		t.Errorf("goroutines %d, %d, time %v", inv.GoroutineAB, inv.GoroutineBA, inv.Time)
	}

	// Reported once.
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()
	invs, _ := Inversions(nil)
	n := 0
	for _, inv := range invs[since:] {
		if inv.A == "order_a" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the inversion was reported %d times, want once", n)
	}
}

func TestOrderConsistentNotReported(t *testing.T) {
	orderOn(t)
	var a, b, c Mutex
	a.SetName("consistent_a")
	b.SetName("consistent_b")
	c.SetName("consistent_c")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			a.Lock()
			b.Lock()
			c.Lock()
			c.Unlock()
			b.Unlock()
			a.Unlock()
			b.Lock()
			c.Lock()
			c.Unlock()
			b.Unlock()
		})
	}
	wg.Wait()
	// A TryLock cannot wait, so locking A with TryLock while holding C is
	// not an inversion.
	c.Lock()
	if a.TryLock() {
		a.Unlock()
	}
	c.Unlock()
	invs, _ := Inversions(nil)
	for _, inv := range invs {
		if strings.HasPrefix(inv.A, "consistent_") {
			t.Errorf("inversion reported for a consistent order: %s then %s", inv.A, inv.B)
		}
	}
}

// TestOrderRWMutex: read locks take part in the order too.
func TestOrderRWMutex(t *testing.T) {
	orderOn(t)
	since := inversionCount()
	var a Mutex
	var b RWMutex
	a.SetName("rworder_a")
	b.SetName("rworder_b")
	a.Lock()
	b.RLock()
	b.RUnlock()
	a.Unlock()
	b.RLock()
	a.Lock()
	a.Unlock()
	b.RUnlock()
	if _, ok := inversionOf("rworder_a", "rworder_b", since); !ok {
		t.Error("no inversion reported for Mutex then RLock against RLock then Mutex")
	}
}

func TestOrderOffByDefault(t *testing.T) {
	if os.Getenv(envOrder) != "" {
		t.Skip(envOrder, " is set")
	}
	probeRuntime()
	orderFromEnv()
	if order.on.Load() {
		t.Fatal("the lock-order check is on by default")
	}
}

// TestOrderFromEnv runs this test binary again with LOCKDIAG_LOCK_ORDER=on.
func TestOrderFromEnv(t *testing.T) {
	if os.Getenv("LOCKS_TEST_CHILD") == "1" {
		var m Mutex
		m.SetName("env") // reads the environment, once
		if !order.on.Load() && goidOffset != 0 {
			t.Fatalf("%s=%q did not turn the check on", envOrder, os.Getenv(envOrder))
		}
		return
	}
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("cannot run a subprocess")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrderFromEnv$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOCKS_TEST_CHILD=1", envOrder+"=on")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
