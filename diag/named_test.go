package diag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/bundle"

	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/lockreport"
	"github.com/lockdiag/lockdiag/locks"
)

func parkOnLocksMutex(mu *locks.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	mu.Lock()
	mu.Unlock()
}

func parkOnLocksRLock(rw *locks.RWMutex, wg *sync.WaitGroup) {
	defer wg.Done()
	rw.RLock()
	rw.RUnlock()
}

// TestScanLocksPackage: the waiter scan sees goroutines parked in package
// locks' Lock at their caller's site, and marks those of named locks.
func TestScanLocksPackage(t *testing.T) {
	var plain, named locks.Mutex
	var rw locks.RWMutex
	named.SetName("diag_test_scan")
	rw.SetName("diag_test_scan_rw")
	plain.Lock()
	named.Lock()
	rw.Lock()
	var wg sync.WaitGroup
	for _, mu := range []*locks.Mutex{&plain, &named, &named} {
		wg.Add(1)
		go parkOnLocksMutex(mu, &wg)
	}
	wg.Add(1)
	go parkOnLocksRLock(&rw, &wg)
	defer func() {
		plain.Unlock()
		named.Unlock()
		rw.Unlock()
		wg.Wait()
	}()
	w := newWaiterScanner()
	var sites []lockreport.ParkedSite
	find := func(fn string, isNamed bool) *lockreport.ParkedSite {
		for i := range sites {
			if strings.HasSuffix(sites[i].Func, fn) && sites[i].Named == isNamed {
				return &sites[i]
			}
		}
		return nil
	}
	testkit.WaitFor(t, 10*time.Second, "4 goroutines parked", func() bool {
		_, sites = w.scan()
		a, b, c := find("parkOnLocksMutex", false), find("parkOnLocksMutex", true), find("parkOnLocksRLock", true)
		return a != nil && a.Waiters == 1 && b != nil && b.Waiters == 2 && c != nil && c.Waiters == 1
	})
	if s := find("parkOnLocksRLock", true); s.Kind != "RWMutex.RLock" {
		t.Errorf("reader's kind = %q, want RWMutex.RLock", s.Kind)
	}
	for _, s := range sites {
		if strings.Contains(s.Func, "lockdiag/locks.") {
			t.Errorf("site %+v is a frame of package locks", s)
		}
	}
}

// goroutineID returns the calling goroutine's id as runtime.Stack prints it.
func goroutineID() int64 {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	id, _ := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// namedLockHolder locks mu, sends its goroutine id and keeps the lock
// until release is closed.
func namedLockHolder(mu *locks.Mutex, id chan<- int64, release <-chan struct{}) {
	mu.Lock()
	id <- goroutineID()
	<-release
	mu.Unlock()
}

// lockShard is the one call site of the shards' locks.
func lockShard(mu *locks.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	mu.Lock()
	mu.Unlock()
}

// holdNamed names a lock, has namedLockHolder take it and n goroutines wait
// for it in lockShard; it returns the lock, the holder's id and the
// release, which waits for all of them.
func holdNamed(t *testing.T, name string, n int) (*locks.Mutex, int64, func()) {
	t.Helper()
	mu := new(locks.Mutex)
	mu.SetName(name)
	ids := make(chan int64)
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		namedLockHolder(mu, ids, release)
	}()
	id := <-ids
	for range n {
		wg.Add(1)
		go lockShard(mu, &wg)
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			close(release)
			wg.Wait()
		})
	}
	t.Cleanup(done)
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d waiters on %s", n, name), func() bool {
		st := readNamedState(name)
		return st != nil && st.Waiters == n
	})
	return mu, id, done
}

// readNamedState reads the state of the named lock called name, the one named
// last.
func readNamedState(name string) *locks.State {
	var found *locks.State
	for _, st := range locks.Read(nil) {
		if st.Name == name {
			found = &st
		}
	}
	return found
}

func statusNamed(st Status, name string) *lockreport.NamedLock {
	for i := range st.NamedLocks {
		if st.NamedLocks[i].Name == name {
			return &st.NamedLocks[i]
		}
	}
	return nil
}

func reportNamed(rep *lockreport.Report, name string) *lockreport.NamedLock {
	for i := range rep.NamedLocks {
		if rep.NamedLocks[i].Name == name {
			return &rep.NamedLocks[i]
		}
	}
	return nil
}

func hasFunc(fs []lockreport.Frame, suffix string) bool {
	for _, f := range fs {
		if strings.HasSuffix(f.Func, suffix) {
			return true
		}
	}
	return false
}

// TestNamedStuckLock: a named lock whose holder does not let go breaches
// stuck_waiters with exactly its waiters (the site tracker does not count
// them again), and the snapshot's headline names the lock, the holder's
// goroutine id and its stack.
func TestNamedStuckLock(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rules = "stuck_waiters > 0"
	cfg.StuckAfter = 300 * time.Millisecond
	cfg.WallProfile = -1
	m := startMonitor(t, cfg)
	sub := m.Subscribe(4096)
	defer sub.Close()

	mu, holder, release := holdNamed(t, "diag_test_stuck", 4)
	defer runtime.KeepAlive(mu)
	ev := nextEvent(t, sub, 15*time.Second, EventBreach)
	if ev.Breach.Signal != "stuck_waiters" || ev.Breach.Value != 4 {
		t.Errorf("breach = %+v, want stuck_waiters = 4", ev.Breach)
	}
	snap := nextEvent(t, sub, 30*time.Second, EventSnapshot, EventSnapshotFailed)
	if snap.Type != EventSnapshot {
		t.Fatalf("snapshot failed: %s", snap.Reason)
	}
	h := snap.Snapshot.Headline
	for _, want := range []string{`stuck lock: the named Mutex "diag_test_stuck"`, "goroutine " + strconv.FormatInt(holder, 10), "namedLockHolder", "4 goroutines wait"} {
		if !strings.Contains(h, want) {
			t.Errorf("headline %q does not say %q", h, want)
		}
	}
	rep, err := m.Report(snap.Snapshot.ID)
	if err != nil {
		t.Fatal(err)
	}
	nl := reportNamed(rep, "diag_test_stuck")
	if nl == nil || !nl.Stuck || nl.Holder != holder || nl.Waiters != 4 || !hasFunc(nl.HolderStack, ".namedLockHolder") || nl.HeldFor < cfg.StuckAfter {
		t.Errorf("report's named lock = %+v, want stuck, held by goroutine %d in namedLockHolder", nl, holder)
	}
	if f := rep.Findings[0]; f.Kind != "stuck-lock" || !strings.Contains(strings.Join(f.Evidence, "\n"), "namedLockHolder") {
		t.Errorf("first finding = %+v", f)
	}
	for _, c := range rep.Caveats {
		if strings.Contains(c, "count as one") && !strings.Contains(c, "Named locks") {
			t.Errorf("caveat %q; sites %+v", c, rep.Sites)
		}
	}
	// The bundle holds the named locks, and re-analysis reads them.
	b, err := m.Bundle(snap.Snapshot.ID)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := b.Options()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(opts.NamedLocks, func(nl lockreport.NamedLock) bool { return nl.Name == "diag_test_stuck" && nl.Stuck }) {
		t.Errorf("%s: %+v", bundle.NamedLocksFile, opts.NamedLocks)
	}

	// The status shows the lock, stuck, by its holder; the scan leaves its
	// waiters to the named path: stuck_waiters is 4, not 8, however many
	// scans come.
	st0 := m.Status()
	testkit.WaitFor(t, 10*time.Second, "ten more goroutine scans", func() bool { return m.Status().Scans >= st0.Scans+10 })
	st := m.Status()
	if v := st.Now.Values[StuckWaiters]; v != 4 {
		t.Errorf("stuck_waiters = %v, want 4 (the site tracker must leave named waiters alone)", v)
	}
	sn := statusNamed(st, "diag_test_stuck")
	if sn == nil || !sn.Stuck || sn.Holder != holder || sn.Waiters != 4 {
		t.Errorf("status named lock = %+v", sn)
	}
	for _, ws := range st.WaitSites {
		if strings.HasSuffix(ws.Func, ".lockShard") && (!ws.Named || ws.NoProgress != 0) {
			t.Errorf("wait site %+v: want named, judged by the named path", ws)
		}
	}
	var text strings.Builder
	st.WriteText(&text)
	for _, want := range []string{"NAMED LOCKS", "diag_test_stuck", "4 STUCK", "by g" + strconv.FormatInt(holder, 10)} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status text has no %q:\n%s", want, text.String())
		}
	}
	if os.Getenv("NAMED_TEST_SHOW") != "" {
		var rt bytes.Buffer
		rep.WriteText(&rt)
		t.Logf("status:\n%s\nreport:\n%s", text.String(), rt.String())
	}
	release()
	testkit.WaitFor(t, 10*time.Second, "stuck_waiters back to 0", func() bool {
		s, _ := m.Latest()
		return s.Values[StuckWaiters] == 0
	})
}

// TestNamedLocksAtOneSite: two named locks locked at one call site are told
// apart, with their own holders and waiters, in the status and the report.
func TestNamedLocksAtOneSite(t *testing.T) {
	cfg := testConfig(t)
	cfg.StuckAfter = 200 * time.Millisecond
	m := startMonitor(t, cfg)
	a, holderA, _ := holdNamed(t, "diag_test_shard_a", 2)
	b, holderB, _ := holdNamed(t, "diag_test_shard_b", 3)
	defer runtime.KeepAlive(a)
	defer runtime.KeepAlive(b)

	var st Status
	testkit.WaitFor(t, 10*time.Second, "both shards stuck in the status", func() bool {
		st = m.Status()
		x, y := statusNamed(st, "diag_test_shard_a"), statusNamed(st, "diag_test_shard_b")
		return x != nil && y != nil && x.Stuck && y.Stuck
	})
	x, y := statusNamed(st, "diag_test_shard_a"), statusNamed(st, "diag_test_shard_b")
	if x.Holder != holderA || x.Waiters != 2 || y.Holder != holderB || y.Waiters != 3 {
		t.Errorf("status: a = %+v, b = %+v; want a held by %d with 2 waiters, b by %d with 3", x, y, holderA, holderB)
	}
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Report(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := reportNamed(rep, "diag_test_shard_a"), reportNamed(rep, "diag_test_shard_b")
	if ra == nil || rb == nil || ra.Holder != holderA || rb.Holder != holderB || ra.Waiters != 2 || rb.Waiters != 3 {
		t.Fatalf("report: a = %+v, b = %+v", ra, rb)
	}
	kinds := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Kind == "stuck-lock" {
			kinds[f.Site] = true
		}
	}
	if !kinds["diag_test_shard_a"] || !kinds["diag_test_shard_b"] {
		t.Errorf("stuck-lock findings for %v, want both shards", kinds)
	}
	// The dump sees one site with 5 waiters, and guesses no holder for it.
	if rep.Locks != nil {
		for _, l := range rep.Locks.Locks {
			if strings.HasSuffix(l.Func, ".lockShard") && (!l.Named || len(l.Holders) > 0) {
				t.Errorf("dump lock %+v: want named, no guessed holder", l)
			}
		}
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{"diag_test_shard_a", "diag_test_shard_b", "by g" + strconv.FormatInt(holderA, 10), "by g" + strconv.FormatInt(holderB, 10)} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report text has no %q:\n%s", want, text.String())
		}
	}
}

// invOrderAB and invOrderBA take two named locks in opposite orders, one
// after the other: no deadlock, but one waiting to happen.
func invOrderAB(a, b *locks.Mutex) {
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
}

func invOrderBA(a, b *locks.Mutex) {
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()
}

// TestNamedInversion: with the lock-order check on, an inversion is
// published, shown in the status and made a finding of the snapshot,
// without any goroutine ever waiting.
func TestNamedInversion(t *testing.T) {
	if err := locks.SetOrderCheck(true); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { locks.SetOrderCheck(false) })
	m := startMonitor(t, testConfig(t))
	sub := m.Subscribe(4096)
	defer sub.Close()

	var a, b locks.Mutex
	a.SetName("diag_test_inv_accounts")
	b.SetName("diag_test_inv_ledger")
	done := make(chan struct{})
	go func() {
		invOrderAB(&a, &b)
		close(done)
	}()
	<-done
	invOrderBA(&a, &b)

	var inv *lockreport.LockInversion
	for inv == nil {
		ev := nextEvent(t, sub, 10*time.Second, EventInversion)
		if ev.Inversion.A == "diag_test_inv_accounts" {
			inv = ev.Inversion
		}
	}
	if inv.B != "diag_test_inv_ledger" || !hasFunc(inv.StackAB, ".invOrderAB") || !hasFunc(inv.StackBA, ".invOrderBA") {
		t.Errorf("inversion = %+v", inv)
	}
	st := m.Status()
	if !slices.ContainsFunc(st.Inversions, func(x lockreport.LockInversion) bool { return x.A == inv.A && x.B == inv.B }) {
		t.Errorf("status inversions = %+v", st.Inversions)
	}
	var text strings.Builder
	st.WriteText(&text)
	if !strings.Contains(text.String(), "LOCK ORDER INVERSIONS") || !strings.Contains(text.String(), "invOrderBA") {
		t.Errorf("status text:\n%s", text.String())
	}
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Report(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Findings {
		if f.Kind == "lock-order-inversion" && strings.Contains(f.Summary, "diag_test_inv_accounts") {
			found = true
			ev := strings.Join(f.Evidence, "\n")
			if !strings.Contains(f.Summary, "potential deadlock") && !strings.Contains(f.Summary, "Potential deadlock") ||
				!strings.Contains(ev, "invOrderAB") || !strings.Contains(ev, "invOrderBA") {
				t.Errorf("finding %+v", f)
			}
		}
	}
	if !found {
		t.Errorf("no lock-order-inversion finding: %+v", rep.Findings)
	}
	runtime.KeepAlive(&a)
	runtime.KeepAlive(&b)
}

// TestReadNamedAllocs: the sampler's read of the named locks allocates
// nothing once its buffers have grown.
func TestReadNamedAllocs(t *testing.T) {
	m, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	m.resetSampler()
	defer m.threads.close()
	var mus [16]locks.Mutex
	for i := range mus {
		mus[i].SetName(fmt.Sprintf("diag_test_allocs_%d", i))
		mus[i].Lock()
		mus[i].Unlock()
	}
	now := time.Now()
	read := func() {
		m.namedRd.next = time.Time{}
		m.readNamed(now)
	}
	read()
	read()
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Errorf("readNamed allocates %v times per read", n)
	}
	runtime.KeepAlive(&mus)
}
