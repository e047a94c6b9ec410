// Package diag watches a Go program for lock contention, notices incidents
// by itself and captures them.
//
// A [Monitor] samples cheap signals every [Config.Interval], evaluates
// lock-wait rules over them, and takes snapshots: on demand
// ([Monitor.Snapshot]) or automatically when a rule is breached. Most
// programs get one through the blank import of diag/auto; this package is
// for programs that want to wire it themselves:
//
//	m, err := diag.New(diag.Config{Logger: slog.Default()})
//	if err != nil {
//		return err
//	}
//	if err := m.Start(); err != nil {
//		return err
//	}
//	defer m.Stop()
//
// and serve it with httpdiag.Register.
//
// # Signals
//
// Every Interval (100ms): mutex_wait, the seconds of lock wait per second
// from /sync/mutex/wait/total:seconds (about the number of goroutines
// blocked on sync.Mutex, sync.RWMutex and runtime locks; counted when a
// waiter wakes, so it is blind to a lock still held); sched_latency_p99;
// goroutines, goroutines_waiting, goroutines_runnable. Every second:
// lock_waiters, the goroutines parked in Mutex/RWMutex acquire right now,
// from a goroutine profile (it sees a stuck lock); and on Linux
// futex_waiters, run_delay and ctx_switches from /proc/self/task. See
// [Signals].
//
// # Named locks
//
// The named locks of package locks (a Mutex or RWMutex given a name with
// SetName) are read every Interval (locks.Read, into buffers the monitor
// keeps; less often if that would take more than [Config.ScanCPU]). Their
// identity, holder and hold time are exact, and so is their part of
// stuck_waiters: a named lock with waiters whose current hold has lasted
// [Config.StuckAfter], or that nobody acquired for that long, is stuck;
// the goroutine scan leaves the goroutines parked on named locks to this
// path. [Status] lists them (NamedLocks), subscribers get them about once
// a second ([EventNamedLocks]), and every snapshot carries them
// (named-locks.json) into its report, which names a stuck named lock, its
// holder's goroutine id and stack. With package locks' lock-order check on
// (LOCKDIAG_LOCK_ORDER=on), each new lock-order inversion is logged once,
// published ([EventInversion]), listed in Status and made a finding of
// every later snapshot.
//
// # Rules
//
// Rules are lock-wait SLOs in a small language ([DefaultRules] documents
// it): "SIGNAL > THRESHOLD [for DURATION]" or "SIGNAL > Nx baseline [min
// FLOOR] [for DURATION]", separated by ';'. A rule warms up before it can
// fire, clears with hysteresis, and takes one snapshot per episode, subject
// to a per-rule cooldown and a global budget per hour. Breaches,
// recoveries and snapshots are delivered to subscribers
// ([Monitor.Subscribe]) and to the Logger.
//
// # Snapshots
//
// A snapshot is a bundle (package bundle: a zip; [SnapshotInfo.Files]
// lists its files): the execution trace of the window before the trigger
// (from the flight recorder, package flightrec), mutex and block profile
// deltas over the same window, goroutine dumps, a wall-clock profile after
// an automatic trigger, the threads from /proc, the signal timeline,
// meta.json and the analysis (package lockreport), which
// [Monitor.Report] returns. One snapshot is taken at a time; requests that
// arrive meanwhile share it. Snapshots are kept in a bounded ring in memory
// and in a bounded directory on disk; a failing disk keeps the memory copy.
// [Monitor.Bundle] opens a stored one.
//
// # Cost
//
// A sampling tick costs about a microsecond; the goroutine scan behind
// lock_waiters about 1.5µs per goroutine once a second (skipped above
// [Config.GoroutineGuard]); the /proc scan about 10-15µs per thread once a
// second; a mutex profile read every 5s about a millisecond. The flight
// recorder costs in proportion to the trace events the program makes:
// nothing measurable for a program that rarely parks, a few percent for one
// that parks goroutines hundreds of thousands of times a second. A
// snapshot costs a trace write, profile reads, a goroutine dump and the
// analysis (about 30 MB/s of trace on one core, bounded by
// [Config.AnalysisBudget]). BENCHMARKS.md has the measurements.
//
// # Safety
//
// Nothing starts at New. Stop waits for every goroutine and restores the
// mutex profile fraction that Start changed. If the program already runs
// a flight recorder, the monitor runs without a trace and every report
// says so. Panics in the monitor's own goroutines are recovered and
// logged. Monitor's methods are safe for concurrent use.
package diag
