// Package rules parses lock-wait SLO rules and evaluates them over sampled
// signals, deciding when lockdiag takes a diagnostic snapshot.
//
// # Language
//
// Rules come from the LOCKDIAG_SLO variable or a Config field:
//
//	RULES := RULE { ';' RULE }
//	RULE  := SIGNAL OP THRESHOLD [ 'for' DURATION ]
//	       | SIGNAL OP FACTOR 'x' 'baseline' [ 'min' VALUE ] [ 'for' DURATION ]
//	OP    := '>' | '>='
//
// SIGNAL is the name of a signal, such as mutex_wait. THRESHOLD and VALUE
// are numbers (0.5, 20, 1e3) or Go durations, which mean seconds
// (sched_latency_p99 > 5ms is sched_latency_p99 > 0.005); they must not
// be negative. FACTOR is a number of at least 1 followed by x (4x, 2.5x).
// DURATION is a Go duration (100ms, 2s, 1m30s) and must not be negative.
// Whitespace is free-form and empty rules are allowed, so "" means no
// rules. Keywords are lower case. For example:
//
//	mutex_wait > 4x baseline min 1 for 100ms; lock_waiters >= 50 for 5s
//
// A threshold rule compares the signal with the threshold. A baseline
// rule compares it with FACTOR times the signal's own moving baseline,
// but at least VALUE (the floor keeps a near-zero baseline from making
// noise an incident). With "for", the condition must hold for DURATION
// before the rule breaches; without it the first value above breaches.
//
// # Engine
//
// An [Engine] gets a value of each rule's signal at every sample through
// [Engine.Observe] and returns [Event]s. A rule goes through the phases
// warming_up, ok, pending (condition true, "for" running), breached, and
// clearing (below the clear level, [Config.Clear] running), back to ok.
// A Breach event starts an episode and says whether to take a snapshot:
// at most one per episode, none during the rule's [Config.Cooldown] after
// its previous snapshot, and at most [Config.Budget] per
// [Config.BudgetWindow] across all rules. A Recovered event ends the
// episode. The engine keeps no clock and starts no goroutines.
package rules

// DefaultRules are the rules used when none are configured.
//
//   - mutex_wait > 4x baseline min 1 for 100ms: mutex_wait is seconds of
//     lock wait per second, about the average number of goroutines
//     blocked on sync.Mutex, sync.RWMutex and runtime locks, sampled every
//     100ms. A healthy, lightly contended service sits at 0 to 0.1; a
//     real spike is tens. The floor of 1 (a goroutine blocked all the
//     time) is far above that noise, and 4x baseline keeps a service that
//     lives with some contention from firing at its normal level. The
//     runtime records 1 in 8 waits, scaled by 8, when the waiter wakes,
//     so the signal comes in lumps: one 12.5ms wait that is recorded
//     reads as 1.0 in its 100ms sample. "for 100ms" asks for two samples
//     in a row above the threshold, which filters single lumps and still
//     breaches at most about 240ms after a spike starts (up to 100ms
//     until a sample sees it, plus the runtime's delay of up to about
//     40ms, plus one more sample).
//   - lock_waiters > 4x baseline min 16 for 2s: lock_waiters counts the
//     goroutines parked in Mutex or RWMutex acquire at the moment of the
//     sample, every 1s. It sees a lock that is held and stuck, which
//     mutex_wait cannot see because a wait is only counted when it ends.
//     A few waiters at an instant are normal; more than 16 in three
//     samples in a row (2s) means that a lock holder is not letting go.
//
// Replayed 100ms samples measured on a 2-core VM: a lightly loaded
// service (16 goroutines, max 0.31 in 30s) never breaches; a spike of 32
// goroutines on a 1ms critical section breaches within 200ms of its
// onset; a service that allocates inside a lock shared by 64 goroutines
// (mean 1.5, bursts of 20 to 85 for one or two samples at each GC)
// breached twice in 30s, which cooldown and budget turn into at most one
// snapshot a minute and ten an hour. Not caught: a lock held for less than
// 2s, whose waiters show in mutex_wait only as one sample at its release.
const DefaultRules = "mutex_wait > 4x baseline min 1 for 100ms; lock_waiters > 4x baseline min 16 for 2s"
