// Command named shows what naming a service's hot locks (package locks)
// adds to lockdiag's report. An inventory split into 16 shards, each behind
// its own lock, runs twice: with sync.Mutex shards, then with locks.Mutex
// shards named "inventory_shard_0" to "inventory_shard_15". The same things
// happen in both runs: one shard is hot (half the orders go to it), a
// rebalancer moves stock between two shards taking their locks in both
// orders (a deadlock waiting to happen), and, near the end, an auditor takes
// one shard's lock and holds it across a slow call while every worker
// piles up behind it. At the end of each run a snapshot is taken; the
// example then prints what the named run's report says that the sync run's
// could not.
//
//	go run ./examples/named
//
// It runs two versions for 8s each (-phase), then exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/diag/auto"
	"github.com/lockdiag/lockdiag/examples/internal/demo"
	"github.com/lockdiag/lockdiag/lockreport"
	"github.com/lockdiag/lockdiag/locks"
)

const (
	numShards  = 16
	hotShard   = 5  // half of the orders
	auditShard = 11 // the auditor's
)

// The sync version.

type plainShard struct {
	mu    sync.Mutex
	stock map[int]int
	_     [32]byte // keep the shards' locks on separate cache lines
}

type plainInventory struct{ shards [numShards]plainShard }

func newPlainInventory() *plainInventory {
	inv := &plainInventory{}
	for i := range inv.shards {
		inv.shards[i].stock = map[int]int{}
	}
	return inv
}

// reserve takes one item of sku: the lock site every order goes through.
func (inv *plainInventory) reserve(sku int) {
	sh := &inv.shards[sku%numShards]
	sh.mu.Lock()
	sh.stock[sku]--
	demo.Spin(20 * time.Microsecond) // the bookkeeping of an order
	sh.mu.Unlock()
}

// rebalance moves stock from shard a to shard b, locking a then b.
func (inv *plainInventory) rebalance(a, b int) {
	inv.shards[a].mu.Lock()
	inv.shards[b].mu.Lock()
	inv.shards[a].stock[a]--
	inv.shards[b].stock[b]++
	inv.shards[b].mu.Unlock()
	inv.shards[a].mu.Unlock()
}

// audit holds a shard's lock across a slow call until ctx ends: the
// stuck holder.
func (inv *plainInventory) audit(ctx context.Context, i int) {
	inv.shards[i].mu.Lock()
	defer inv.shards[i].mu.Unlock()
	slowCall(ctx)
}

// The named version: the same code with locks.Mutex, each lock named.

type namedShard struct {
	mu    locks.Mutex // was sync.Mutex
	stock map[int]int
	_     [32]byte
}

type namedInventory struct{ shards [numShards]namedShard }

func newNamedInventory() *namedInventory {
	inv := &namedInventory{}
	for i := range inv.shards {
		inv.shards[i].stock = map[int]int{}
		inv.shards[i].mu.SetName(fmt.Sprintf("inventory_shard_%d", i))
	}
	return inv
}

func (inv *namedInventory) reserve(sku int) {
	sh := &inv.shards[sku%numShards]
	sh.mu.Lock()
	sh.stock[sku]--
	demo.Spin(20 * time.Microsecond)
	sh.mu.Unlock()
}

func (inv *namedInventory) rebalance(a, b int) {
	inv.shards[a].mu.Lock()
	inv.shards[b].mu.Lock()
	inv.shards[a].stock[a]--
	inv.shards[b].stock[b]++
	inv.shards[b].mu.Unlock()
	inv.shards[a].mu.Unlock()
}

func (inv *namedInventory) audit(ctx context.Context, i int) {
	inv.shards[i].mu.Lock()
	defer inv.shards[i].mu.Unlock()
	slowCall(ctx)
}

// slowCall stands for a remote call that hangs until ctx ends.
func slowCall(ctx context.Context) { <-ctx.Done() }

// inventory is what a phase drives.
type inventory interface {
	reserve(sku int)
	rebalance(a, b int)
	audit(ctx context.Context, shard int)
}

// orderSKU picks the sku of worker w's i-th order: every other one in the
// hot shard, the rest spread over all shards.
func orderSKU(w, i int) int {
	if i%2 == 0 {
		return hotShard + numShards*(i%64)
	}
	return (w*7919 + i*31) % (numShards * 64)
}

// background runs the rebalancer (once each way, a second into the
// phase) and the auditor (stuck from 3.5s before the phase ends).
func background(inv inventory, d time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		if !sleep(ctx, time.Second) {
			return
		}
		inv.rebalance(3, 7)
		inv.rebalance(7, 3) // the other order: no deadlock now, one waiting to happen
		if !sleep(ctx, auditAt(d)-time.Second) {
			return
		}
		inv.audit(ctx, auditShard)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func main() {
	d := flag.Duration("phase", 8*time.Second, "how long each version runs (at least 5s)")
	workers := flag.Int("workers", 16, "goroutines placing orders")
	flag.Parse()
	if *d < 5*time.Second {
		log.Fatal("named: -phase must be at least 5s: the auditor's lock is stuck for the last 3.5s, and lockdiag calls a lock stuck after 2s")
	}
	m := auto.Monitor()
	demo.Intro("named", fmt.Sprintf("runs two versions for %v each (-phase), then exits", *d), auto.Addr())

	plain := newPlainInventory()
	a, err := demo.Run(m, demo.Phase{
		Name:       "16 shards behind sync.Mutex",
		Funcs:      []string{"(*plainInventory).reserve", "(*plainInventory).rebalance", "(*plainInventory).audit"},
		Workers:    *workers,
		Op:         func(w, i int) { plain.reserve(orderSKU(w, i)) },
		Background: background(plain, *d),
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	a.Print()

	// The lock-order check costs on every named Lock: on for this run
	// (LOCKDIAG_LOCK_ORDER=on does the same from the environment).
	if err := locks.SetOrderCheck(true); err != nil {
		fmt.Printf("named: the lock-order check is unavailable here: %v\n", err)
	}
	named := newNamedInventory()
	b, err := demo.Run(m, demo.Phase{
		Name:       "the same 16 shards behind named locks.Mutex",
		Funcs:      []string{"(*namedInventory).reserve", "(*namedInventory).rebalance", "(*namedInventory).audit"},
		Workers:    *workers,
		Op:         func(w, i int) { named.reserve(orderSKU(w, i)) },
		Background: background(named, *d),
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	b.Print()
	locks.SetOrderCheck(false)

	gains(m, a, b)
	demo.Done("named", m, a, b)
}

// gains prints what the named run's report says that the sync run's
// could not.
func gains(m *diag.Monitor, a, b demo.Result) {
	plain, named := a.Report, b.Report
	fmt.Println("\n== what naming the locks added")
	fmt.Printf("   headline with sync.Mutex:   %s\n", plain.Headline)
	fmt.Printf("   headline with named locks:  %s\n", named.Headline)

	fmt.Println("\n   the stuck shard, caught by itself (stuck_waiters > 0, one of the default rules):")
	if s, ok := stuckSnapshot(m, a.Start, b.Start); ok {
		fmt.Printf("     sync.Mutex:  yes: snapshot %s, %s\n", s.ID, s.Headline)
	} else {
		fmt.Println("     sync.Mutex:  no: every shard is locked at one call site, where the hot shard's waiters kept being served,")
		fmt.Println("                  so the site never looked stuck")
	}
	if s, ok := stuckSnapshot(m, b.Start, time.Now()); ok {
		fmt.Printf("     named:       yes: stuck_waiters = %v breached %v after the auditor took the lock, and snapshot %s was taken by itself\n",
			s.Trigger.Breach.Value, s.Time.Sub(b.Start.Add(auditAt(b.Elapsed))).Round(100*time.Millisecond), s.ID)
	} else if hasFinding(named, "stuck-lock") {
		fmt.Println("     named:       in the end-of-run snapshot (the rule took none: it is off, or was in its cooldown)")
	}

	fmt.Println("\n   which lock is stuck, and who holds it:")
	fmt.Printf("     sync.Mutex:  %s\n", plainHolder(plain))
	for _, nl := range named.NamedLocks {
		if !nl.Stuck {
			continue
		}
		where := "its stack is not in the dump"
		if len(nl.HolderStack) > 0 {
			where = "now in " + shortFrames(nl.HolderStack, 3)
		}
		fmt.Printf("     named:       %q, %d goroutines waiting; held by goroutine %d (exact) for %s, %s\n",
			nl.Name, nl.Waiters, nl.Holder, heldFor(nl), where)
	}

	fmt.Println("\n   which shard is hot:")
	fmt.Println("     sync.Mutex:  the 16 shards' locks share one call site: the trace counts them as one lock")
	var total time.Duration
	for _, nl := range named.NamedLocks {
		total += nl.Wait.Sum
	}
	ranked := append([]lockreport.NamedLock(nil), named.NamedLocks...)
	for i := range ranked { // by wait, the most first
		for j := i + 1; j < len(ranked); j++ {
			if ranked[j].Wait.Sum > ranked[i].Wait.Sum {
				ranked[i], ranked[j] = ranked[j], ranked[i]
			}
		}
	}
	for i, nl := range ranked {
		if i == 3 || total == 0 || nl.Wait.Sum == 0 {
			break
		}
		fmt.Printf("     named:       %-19s %5.1f%% of the shards' wait; %d of %d acquisitions waited; p99 wait %v, p99 hold %v\n",
			nl.Name, 100*float64(nl.Wait.Sum)/float64(total), nl.Contended, nl.Acquisitions,
			nl.Wait.P99.Round(10*time.Microsecond), nl.Hold.P99.Round(time.Microsecond))
	}

	fmt.Println("\n   a deadlock waiting to happen (rebalance took shards 3 and 7 in both orders):")
	fmt.Println("     sync.Mutex:  nothing, until the day both orders run at once and two goroutines hang for good")
	if len(named.Inversions) == 0 {
		fmt.Println("     named:       no inversion (the lock-order check is unavailable on this platform)")
	}
	for _, inv := range named.Inversions {
		fmt.Printf("     named:       lock order inversion between %q and %q, found before it could hang:\n", inv.A, inv.B)
		fmt.Printf("                  %s then %s by goroutine %d at %s\n", inv.A, inv.B, inv.GoroutineAB, shortFrames(inv.StackAB, 2))
		fmt.Printf("                  %s then %s by goroutine %d at %s\n", inv.B, inv.A, inv.GoroutineBA, shortFrames(inv.StackBA, 2))
	}

	fmt.Println("\n   lock identity in the trace:")
	fmt.Printf("     sync.Mutex:  %s\n", caveat(plain))
	for _, s := range named.Sites {
		if strings.Contains(s.Func, "namedInventory") && s.Named {
			fmt.Printf("     named:       the site %s is marked named: the report's NAMED LOCKS section tells its 16 locks apart\n", shortFrames([]lockreport.Frame{{Func: s.Func, File: s.File, Line: s.Line}}, 1))
			break
		}
	}
}

// stuckSnapshot returns the first snapshot a stuck_waiters breach took
// between from and to.
func stuckSnapshot(m *diag.Monitor, from, to time.Time) (diag.SnapshotInfo, bool) {
	list := m.Snapshots()
	for i := len(list) - 1; i >= 0; i-- { // oldest first
		s := list[i]
		if b := s.Trigger.Breach; b != nil && b.Signal == "stuck_waiters" && s.Time.After(from) && s.Time.Before(to) {
			return s, true
		}
	}
	return diag.SnapshotInfo{}, false
}

// auditAt is when, into a phase of length d, the auditor takes its lock.
func auditAt(d time.Duration) time.Duration { return d - 3500*time.Millisecond }

func hasFinding(rep *lockreport.Report, kind string) bool {
	for _, f := range rep.Findings {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// plainHolder is what the sync run's report says of the stuck lock's
// holder: the goroutine dump's guess, with its confidence.
func plainHolder(rep *lockreport.Report) string {
	if rep.Locks != nil {
		for _, l := range rep.Locks.Locks {
			if !strings.Contains(l.Func, "plainInventory") {
				continue
			}
			if len(l.Holders) == 0 {
				return fmt.Sprintf("%s, %d goroutines waiting; no holder found in the goroutine dump", l.Lock, l.Waiters)
			}
			h := l.Holders[0]
			return fmt.Sprintf("%s, %d goroutines waiting; likely held by goroutine %d in %s (%s confidence, from the goroutine dump); for how long, the dump cannot say",
				l.Lock, l.Waiters, h.Goroutine, h.Where, h.Confidence)
		}
	}
	return "the goroutine dump names no holder"
}

func heldFor(nl lockreport.NamedLock) string {
	if nl.HeldForExact {
		return nl.HeldFor.Round(time.Millisecond).String()
	}
	return "at least " + nl.HeldFor.Round(time.Millisecond).String()
}

func caveat(rep *lockreport.Report) string {
	for _, c := range rep.Caveats {
		if strings.Contains(c, "count as one") {
			return c
		}
	}
	return "none about lock identity: every contended site is of named locks"
}

// shortFrames is "main.(*namedInventory).audit (main.go:118) < ...".
func shortFrames(fs []lockreport.Frame, n int) string {
	var parts []string
	for _, f := range fs {
		if len(parts) == n {
			break
		}
		fn := f.Func
		if i := strings.LastIndexByte(fn, '/'); i >= 0 {
			fn = fn[i+1:]
		}
		file := f.File
		if i := strings.LastIndexByte(file, '/'); i >= 0 {
			file = file[i+1:]
		}
		parts = append(parts, fmt.Sprintf("%s (%s:%d)", fn, file, f.Line))
	}
	return strings.Join(parts, " < ")
}
