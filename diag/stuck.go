package diag

import (
	"math/rand/v2"
	"time"

	"github.com/lockdiag/lockdiag/lockreport"
)

// The goroutine scans behind lock_waiters and stuck_waiters cost about a
// microsecond per goroutine (runtime.GoroutineProfile): 1 ms at 1k
// goroutines, 100 ms at 100k. scanSchedule decides when to pay it, under a
// CPU budget, so that the scans never go blind at any goroutine count and
// never alias with a program's own periodic work:
//
//   - regular scans every max(Config.LockWaitersInterval, cost/budget),
//     each gap drawn at random between 0.7 and 1.3 of it, and each scan
//     run at a random moment between two ticks (offset), off the tick's
//     grid: a holder driven by a ticker cannot stay in phase with them;
//   - early scans when a cheap hint says one is worth it: goroutines_waiting
//     (from runtime/metrics, every tick) has risen by hintWaiters since the
//     last scan and stayed up for hintTicks ticks (goroutines piling up
//     somewhere), or a site seen with waiters needs a confirming scan;
//   - early scans spend from a bucket of CPU time that refills at the
//     budget's rate, so hints cannot push the scans past the budget.
type scanSchedule struct {
	interval time.Duration // least gap between regular scans
	budget   float64       // share of one CPU the scans may use
	rng      *rand.Rand

	cost   time.Duration // the last scan's cost, smoothed
	tokens time.Duration // CPU that early scans may still spend
	last   time.Time     // of the last scan
	next   time.Time     // of the next regular scan
	filled time.Time     // when tokens were last refilled

	waitingAtScan float64   // goroutines_waiting at the last scan
	recentWaiting []float64 // goroutines_waiting at the last ticks
}

const (
	// hintWaiters is how many more goroutines must be waiting (on
	// anything) than at the last scan for an early scan: a deadlock of
	// two goroutines with a few waiters is enough (at 100k goroutines
	// the regular scans are 15 s apart). Hints in a busy process only
	// spend the bucket sooner; they cannot exceed the budget.
	hintWaiters = 4
	// hintTicks is how many ticks in a row they must stay.
	hintTicks = 3
	// minEarlyGap is the least gap before an early scan.
	minEarlyGap = 200 * time.Millisecond
	// tokenHorizon bounds the bucket of early scans: at most this much
	// of the budget is saved up, and at least enough for a few scans.
	tokenHorizon = 30 * time.Second
	// maxDebtScans is how many scans a confirmation may borrow.
	maxDebtScans = 4
)

func newScanSchedule(interval time.Duration, budget float64, seed uint64) *scanSchedule {
	return &scanSchedule{
		interval: interval,
		budget:   budget,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// due reports whether to scan at now. waiting is goroutines_waiting now
// (NaN if unknown); confirm is the earliest time a confirming scan of a
// suspected stuck site is useful (zero if none).
func (s *scanSchedule) due(now time.Time, waiting float64, confirm time.Time) bool {
	s.refill(now)
	if s.last.IsZero() || !now.Before(s.next) {
		return true
	}
	if now.Sub(s.last) < minEarlyGap {
		return false
	}
	// A scan that confirms a suspected stuck site may borrow from the
	// bucket, up to a few scans: the regular scans then wait until the
	// debt is paid, so the average stays within the budget.
	if !confirm.IsZero() && !now.Before(confirm) && s.tokens >= -maxDebtScans*s.cost {
		return true
	}
	if s.tokens < s.cost {
		return false
	}
	if waiting == waiting { // not NaN
		s.recentWaiting = append(s.recentWaiting, waiting)
		if len(s.recentWaiting) > hintTicks {
			s.recentWaiting = s.recentWaiting[len(s.recentWaiting)-hintTicks:]
		}
		if len(s.recentWaiting) == hintTicks {
			low := s.recentWaiting[0]
			for _, w := range s.recentWaiting[1:] {
				low = min(low, w)
			}
			if low-s.waitingAtScan >= hintWaiters {
				return true
			}
		}
	}
	return false
}

// offset is how long after a tick a due scan runs: uniform over the
// tick's interval, so that the scans fall on no fixed grid.
func (s *scanSchedule) offset(interval time.Duration) time.Duration {
	return time.Duration(s.rng.Int64N(int64(max(interval, 1))))
}

func (s *scanSchedule) refill(now time.Time) {
	if !s.filled.IsZero() && now.After(s.filled) {
		s.tokens += time.Duration(s.budget * float64(now.Sub(s.filled)))
		s.tokens = min(s.tokens, max(4*s.cost, time.Duration(s.budget*float64(tokenHorizon))))
	}
	s.filled = now
}

// done records a scan at now that cost cost, and plans the next regular
// one.
func (s *scanSchedule) done(now time.Time, cost time.Duration, waiting float64) {
	early := !s.last.IsZero() && now.Before(s.next)
	if s.cost == 0 {
		// The first scan: the bucket starts full, so that an incident
		// soon after start gets its early scans.
		s.cost = cost
		s.tokens = max(4*s.cost, time.Duration(s.budget*float64(tokenHorizon)))
	} else {
		s.cost = (3*s.cost + cost) / 4
	}
	if early {
		s.tokens -= cost
	}
	s.last = now
	s.waitingAtScan = waiting
	s.recentWaiting = s.recentWaiting[:0]
	gap := max(s.interval, time.Duration(float64(s.cost)/s.budget))
	if s.tokens < 0 {
		// Pay back what confirmations borrowed before the next
		// regular scan.
		gap += time.Duration(float64(-s.tokens) / s.budget)
	}
	s.next = now.Add(time.Duration(float64(gap) * (0.7 + 0.6*s.rng.Float64())))
}

// stuckTracker decides which lock sites make no progress: a site is stuck
// when goroutines are parked there in every scan for at least bound, and
// the runtime's cumulative lock wait (/sync/mutex/wait/total:seconds,
// which counts a wait when it ends) grew by less than those waiters would
// have added had they been served (Little's law: n waiters served
// continuously add about n seconds of wait per second), after what the
// other sites' waiters may have added. A site seen with few waiters needs
// more scans before it counts as stuck: one goroutine caught at a busy
// lock a few times in a row is luck, not a stuck lock. Goroutines parked on
// named locks (package locks) are left to the named path, which knows their
// lock and its holder exactly (named.go).
//
// A goroutine parked on a sync lock leaves only by taking it, so a site
// whose waiters fall from one scan to the next made progress: its run
// starts again from that scan. This is the check that does not depend on
// the runtime's count, which samples the goroutines' state changes (1 in 8,
// counted 8 times) and can miss nearly all the waits of goroutines whose
// changes repeat in a cycle: 8 readers of an RWMutex whose writer comes
// every 5ms waited 5 to 7 s per second by their own clocks, the count grew
// by 0.005 to 1.5 s per second, and the site was called stuck
// (examples/rwmutex; TestBusyLocksAreNotStuck). A stuck lock's waiters
// only grow in number.
//
// A reader found in an RWMutex's RLock may also have been woken already and
// wait for a CPU, holding the read lock (the writer's Unlock hands it over;
// its stack changes only when it runs), and a scan cannot tell. Goroutines
// runnable or running when the scan begins (less the scanning one) bound
// how many such there are: an RLock site is judged on its waiters beyond
// that bound. With 8 readers on 2 CPUs and a writer every 5ms
// (TestBusyLocksAreNotStuck, under -race), the scans found 7 readers in
// RLock every time, most of them woken, and the site was called stuck.
// Other sites are not bounded so: their woken waiters do not hold the
// lock, and two goroutines deadlocked in a busy process must still count.
//
// So before a site is first called stuck, confirm (the goroutine dump,
// which says each goroutine's state) counts the goroutines at the site
// that are blocked, not woken and waiting for a CPU: unless at least half
// of the site's waiters are, the site is busy, not stuck, and its run
// starts again. 16 goroutines on 32 shard locks at one call site, on 2
// CPUs, had 15 in Lock at every scan, most of them runnable
// (examples/sharded). A dump costs about a microsecond per goroutine, so a
// site is confirmed at most once per confirmEvery; in between, a site found
// busy stays so.
type stuckTracker struct {
	bound time.Duration
	runs  map[siteKey]*stuckRun
	// confirm, if set, returns the goroutines at each lock site now by
	// the goroutine dump, blocked and in all; false if it cannot say.
	confirm func() (map[siteKey]siteCount, bool)
	// witness, if set, returns how many goroutines blocked at each lock
	// site were woken in the last recent (progress.go); false if it
	// cannot say.
	witness func(recent time.Duration) (map[siteKey]int, bool)
	// busyUntil: a site that confirm or witness found busy is not called
	// stuck before then.
	busyUntil map[siteKey]time.Time
}

// confirmEvery is the least time between two confirmations of one site.
const confirmEvery = 10 * time.Second

// siteCount is what the goroutine dump shows at a lock site: the
// goroutines blocked in the lock (their state is its wait reason), and
// all those whose stacks are in its wait path, woken ones included.
type siteCount struct{ blocked, all int }

// stuckRun is a site's unbroken run of scans with waiters.
type stuckRun struct {
	site      lockreport.ParkedSite
	since     time.Time // first scan of the run
	sinceWait float64   // cumulative lock wait seconds then
	scans     int
	minCount  int
	otherSum  float64 // other sites' waiters, summed over the run's scans
	stuck     bool
}

func newStuckTracker(bound time.Duration) *stuckTracker {
	return &stuckTracker{bound: bound, runs: make(map[siteKey]*stuckRun), busyUntil: make(map[siteKey]time.Time)}
}

// scansNeeded is how many scans a run of at least n waiters needs.
func scansNeeded(n int) int {
	switch {
	case n >= 4:
		return 2
	case n >= 2:
		return 3
	}
	return 5
}

// update takes a scan's sites at now, with cumWait the cumulative lock
// wait in seconds and ready the goroutines runnable or running when the
// scan began, the scanning one included (either NaN if unknown). It
// returns the goroutines parked at stuck sites and the sites with how long
// they have made no progress.
func (t *stuckTracker) update(now time.Time, sites []lockreport.ParkedSite, cumWait, ready float64) (stuck int, out []lockreport.ParkedSite) {
	total := 0
	for _, s := range sites {
		total += s.Waiters
	}
	var dumped map[siteKey]siteCount // by confirm, read once per scan
	seen := make(map[siteKey]bool, len(sites))
	for _, s := range sites {
		if s.Named {
			// A named lock is judged by its own state (named.go), exactly;
			// its waiters still count among the others' above.
			continue
		}
		blocked := s.Waiters
		if s.Kind == "RWMutex.RLock" && ready == ready { // not NaN
			blocked -= max(int(ready)-1, 0)
		}
		if blocked <= 0 {
			continue // they may all hold the read lock and wait for a CPU
		}
		k := siteKey{kind: s.Kind, fn: s.Func, file: s.File, line: s.Line}
		seen[k] = true
		r := t.runs[k]
		if r == nil || s.Waiters < r.site.Waiters {
			// New, or some waiters got the lock since the last scan.
			r = &stuckRun{since: now, sinceWait: cumWait, minCount: blocked}
			t.runs[k] = r
		}
		r.site = s
		r.scans++
		r.minCount = min(r.minCount, blocked)
		r.otherSum += float64(total - s.Waiters)
		was := r.stuck
		r.stuck = t.judge(r, now, cumWait)
		if r.stuck && !was && !t.confirmed(k, s.Waiters, now, now.Sub(r.since), &dumped) {
			// Busy, not stuck: a new run from this scan.
			r = &stuckRun{site: s, since: now, sinceWait: cumWait, minCount: blocked, scans: 1}
			t.runs[k] = r
		}
	}
	for k := range t.runs {
		if !seen[k] {
			delete(t.runs, k)
		}
	}
	for k, until := range t.busyUntil {
		if !now.Before(until) {
			delete(t.busyUntil, k) // sites that went away would stay
		}
	}
	out = make([]lockreport.ParkedSite, 0, len(sites))
	for _, s := range sites {
		r := t.runs[siteKey{kind: s.Kind, fn: s.Func, file: s.File, line: s.Line}]
		if r != nil && !s.Named && r.stuck {
			s.NoProgress = now.Sub(r.since)
			stuck += s.Waiters
		}
		out = append(out, s)
	}
	return stuck, out
}

// confirmed reports whether the site k, with n waiters by the scan for
// the last run, may be called stuck: most of its waiters are blocked by
// the goroutine dump, or there is no dump to ask, or the dump shows no
// goroutine at the site at all (its frames did not match the scan's: trust
// the scan); and the witness, if it can say, saw fewer than half as many
// goroutines woken from the site during the run. dumped caches the dump's
// counts for the scan.
func (t *stuckTracker) confirmed(k siteKey, n int, now time.Time, run time.Duration, dumped *map[siteKey]siteCount) bool {
	if t.confirm == nil {
		return true
	}
	if until, ok := t.busyUntil[k]; ok {
		if now.Before(until) {
			return false
		}
		delete(t.busyUntil, k)
	}
	if *dumped == nil {
		counts, ok := t.confirm()
		if !ok {
			return true
		}
		*dumped = counts
	}
	c := (*dumped)[k]
	if c.all > 0 && 2*c.blocked < n {
		t.busyUntil[k] = now.Add(confirmEvery)
		return false
	}
	if t.witness != nil {
		if woken, ok := t.witness(run); ok && 2*woken[k] >= n {
			t.busyUntil[k] = now.Add(confirmEvery)
			return false
		}
	}
	return true
}

func (t *stuckTracker) judge(r *stuckRun, now time.Time, cumWait float64) bool {
	span := now.Sub(r.since)
	if span < t.bound || r.scans < scansNeeded(r.minCount) {
		return false
	}
	if cumWait != cumWait || r.sinceWait != r.sinceWait { // NaN: no counter, trust the scans
		return true
	}
	secs := span.Seconds()
	others := r.otherSum / float64(r.scans) * secs
	return cumWait-r.sinceWait < others+0.5*float64(r.minCount)*secs
}

// confirmAt returns when a scan would next move a suspected site toward a
// verdict, or zero when no site is suspected.
func (t *stuckTracker) confirmAt() time.Time {
	var at time.Time
	for _, r := range t.runs {
		if r.stuck {
			continue
		}
		// Spread the scans a run needs over the bound.
		step := t.bound / time.Duration(scansNeeded(r.minCount)-1)
		next := r.since.Add(step * time.Duration(r.scans))
		if at.IsZero() || next.Before(at) {
			at = next
		}
	}
	return at
}
