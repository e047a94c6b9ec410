// Package locks provides [Mutex] and [RWMutex], drop-in replacements for
// [sync.Mutex] and [sync.RWMutex] that, once named, record what a diagnosis
// of lock contention needs and what a Go execution trace or mutex profile
// cannot give: which lock it is, who holds it now, how long it is held, and
// how long its waiters wait.
//
// # Usage
//
// Change the type and name the lock where its owner is built:
//
//	type shard struct {
//		mu    locks.Mutex // was sync.Mutex
//		items map[string]int
//	}
//
//	s := &shard{items: map[string]int{}}
//	s.mu.SetName("inventory_shard_127")
//
// The zero value works and is unnamed: it records nothing and costs what
// sync's locks cost. A named lock records, until it is garbage collected:
//
//   - the wait of contended acquisitions (from the failed fast path to
//     acquisition), in a histogram: every one on a slow lock, 1 in 8 on a
//     lock whose waits are short (each standing for the ones not timed, so
//     that the count is exact);
//   - hold durations (acquisition to release), sampled, in a histogram;
//   - the goroutine holding it now, by id, so that its stack can be found in
//     a goroutine dump ([runtime.Stack] prints "goroutine 18 [...]"), when the
//     hold began, and, for a sampled contended acquisition, the holder's
//     stack at Lock;
//   - how many goroutines wait for it now, and for RWMutex how many readers
//     hold it;
//   - its acquisitions and contended acquisitions.
//
// [Read] returns that state for every named lock in the process, without
// allocating when given room; a monitor polls it. The histograms use fixed
// log-scale buckets (9 % wide; see [Histogram]) and the metric and attribute
// names of the schema (MetricWaitDuration, AttrID, ...), which package
// oteldiag exports to OpenTelemetry.
//
// # Why SetName
//
// A lock is named by a method rather than by a constructor or a field because
// locks live as values inside their owners' structs, like sync's: a
// constructor would turn every such field into a pointer and every struct
// literal into an initialization, and a Name field would be read (and could
// be changed) on every Lock. SetName is one line, once, before first use; it
// allocates the lock's state and registers it, so unnamed locks carry only a
// nil pointer.
//
// # The registry
//
// The registry of named locks is the package's one piece of process-wide
// state, and it has to be: locks are spread through a program's data, inside
// values of every type, and a monitor must find all of them without the
// program handing them over. It holds weak pointers ([weak.Pointer]), so
// naming a lock never keeps it alive: when its owner is collected, the
// registry forgets it. Besides it, the package keeps only facts found once
// (where the runtime keeps goroutine ids) and, while the lock-order check is
// on, that check's findings.
//
// # Lock order
//
// [SetOrderCheck] (or LOCKDIAG_LOCK_ORDER=on in the environment) turns on a
// check, off by default, that reports a potential deadlock the first time two
// named locks are taken in both orders, A then B in one place and B then A
// in another, with both stacks, before the second order waits; see
// [Inversions].
//
// # Goroutine ids
//
// The holder is named by its goroutine id. The runtime does not export it, so
// the package reads it from the runtime's per-goroutine struct: a few lines
// of assembly on amd64 and arm64 find that struct, and the offset of the id
// in it is found and checked, when the first lock is named, against the ids
// that [runtime.Stack] prints for several goroutines. On other architectures,
// with gccgo, or if that check fails, holders are not identified (Holder is 0
// and Held still works), read holds are not timed, and the lock-order check
// is unavailable.
//
// # Cost
//
// Measured on a 2-core AMD EPYC (Zen 4) VM shared with other work, Go 1.26,
// with this package's benchmarks run in turns (8 runs of 300ms each,
// medians):
//
//   - Unnamed locks cost what sync's cost but for a function call: sync's
//     Lock and Unlock inline into the caller, these do not (their named
//     paths make them too big), 0.5 to 1 ns per call uncontended.
//   - Named Mutex, uncontended Lock+Unlock: 10.7 and 12.8 ns in two test
//     binaries, against 4.5 to 4.9 ns for sync.Mutex (2.3 and 2.6 times);
//     the figure moves with the binary more than with the code (the code
//     before holds were timed 1 in 256 measured 8.8 ns in one binary and
//     13.7 in another). Lock adds one atomic store (the holder's goroutine id and
//     the acquisition number share one word, which lives in the Mutex next
//     to sync.Mutex's own word, so that it is on the cache line the Lock
//     just took) and a goroutine-id read (a call to three instructions of
//     assembly); Unlock adds one load of that word, whose bits say whether
//     there is anything to record (whether a Mutex is held is read from
//     sync.Mutex's lock bit; its layout is checked when the first lock is
//     named; if the check fails, Unlock clears the holder).
//   - Named RWMutex: Lock+Unlock 16.9 ns against 9.8 ns (Unlock clears the
//     holder). RLock+RUnlock 12.0 ns against 4.5 ns: each adds an atomic
//     add on counters that are sharded by the address of the goroutine's
//     stack, so that readers on different processors do not share a cache
//     line; with readers on both processors and 1 write in 100, 16.3 ns
//     against 8.3 ns per operation.
//   - Contended: a Mutex acquisition that waits writes nothing shared
//     while it waits. Its waiters are those sync.Mutex counts in its own
//     state word (the goroutines parked in it), and the wait is numbered
//     in the holder word by the waiter once it holds the lock, in the same
//     store that names it. (Counting waiters and waits in a word of the
//     lock's own, with an atomic add before each wait and one after the
//     Unlock, made every contended acquisition take that word's cache line
//     from the other processors: it cost a fifth to a third of sync's
//     throughput in the benchmark below.) An RWMutex still counts its
//     waiters that way, since sync.RWMutex has no count of readers
//     waiting. A wait is timed (two clock reads, about 25 ns each here,
//     one of them while holding the lock, and a histogram record after
//     the release) for 1 in 8 waits while the lock's waits are short
//     (those that begin while the wait number in the holder word is a
//     multiple of 8), and for every wait while the lock is slow (its last
//     timed wait lasted 10 µs or more, 10 µs or more after the one
//     before); a timed wait stands for the untimed ones since the last
//     timed one, so Wait.Count and Contended are exact but for the waits
//     since the last timed one. An untimed wait leaves Unlock on its fast
//     path. BenchmarkContended with a critical section of a few
//     nanoseconds (cs=short), each run in a process of its own, sync,
//     unnamed and named in turns, 16 rounds, each lock at the start of a
//     128-byte block of its own, medians: 44.6 and 54.6 ns per operation
//     with 8 and 64 goroutines, against 39.7 and 44.5 ns for sync.Mutex;
//     the medians of each round's ratio are 0.92 and 0.82 of its
//     throughput (0.92 and 0.93 for an unnamed Mutex, which runs sync's
//     code: the measurement's own floor). (Before the benchmark gave each
//     lock a block of its own: 0.84 and 0.78; before waits stopped
//     counting themselves: 0.82 and 0.64; with every wait timed, 0.5 to
//     0.65.) What is left is in every critical section: the holder word's
//     store and Unlock's read of it. The store is most of it: the same
//     lock without it ran at 0.89 to 0.92 of sync.Mutex with 64
//     goroutines, and no way of storing it (atomic, plain, on a cache line
//     of its own, only when the holder changes) did better than 0.8. Where
//     the critical section does real work, it disappears: with one that
//     yields (cs=yield) a named Mutex ran at 254 and 371 ns against 228 and
//     360 ns (±20 % from run to run). Read waits (RLock)
//     are always timed.
//   - Hold durations are timed for 1 in 256 acquisitions, and for a
//     contended acquisition when no hold of that lock was timed in the last
//     100 µs (so that slow, contended locks have most holds timed, and hot
//     ones pay for at most one timed hold per 100 µs beyond the 1 in 256).
//     Each timed hold counts for itself and for the untimed holds since the
//     previous timed one: the hold histogram's Count is exact but for the
//     holds since the last timed one, and its Sum and buckets are estimates.
//     Timing a hold costs two clock reads (about 30 ns each here). An
//     RWMutex times one read hold at a time; a read hold due for timing
//     while another is timed is not timed, and its weight goes to the next
//     one that is. [State.HeldSince] is exact for a timed hold; for others
//     it is when Read first saw the hold.
//   - Holder stacks ([runtime.Callers], about 1 µs) are recorded on
//     contended acquisitions, at most once per millisecond per lock.
//   - Memory: about 6 KiB per named lock, mostly its two histograms.
//   - [Read]: about 0.4 µs per named lock.
//   - The lock-order check costs a sharded mutex per Lock and Unlock and a
//     map lookup per lock held at the time; it is meant for tests, staging
//     or a while in production.
package locks
