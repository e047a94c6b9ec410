package lockreport

import (
	"path"
	"strconv"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// Report is what [Analyze] found in a trace window and in the profiles and
// scans that came with it. Its JSON form (json.Marshal) is report.json of a
// lockdiag snapshot; [Report.WriteText] writes the text form. Durations are
// in nanoseconds in JSON. Lists are sorted with the worst first and are
// bounded.
type Report struct {
	// Headline is one sentence naming the culprit, or saying that nothing
	// contended.
	Headline string `json:"headline"`

	// Partial is set when only part of the trace was analyzed: the time
	// budget ran out or the trace is cut short or corrupt. PartialReason
	// says which, and how far the analysis got.
	Partial       bool   `json:"partial,omitempty"`
	PartialReason string `json:"partial_reason,omitempty"`

	// TraceUnavailable says why there is no trace (from
	// [Options.TraceUnavailable]); TraceError why the trace that
	// was given could not be read at all. In both cases the report is
	// built from the profiles alone.
	TraceUnavailable string `json:"trace_unavailable,omitempty"`
	TraceError       string `json:"trace_error,omitempty"`

	// Window describes the trace window; nil without a trace.
	Window *Window `json:"window,omitempty"`

	// Findings are the problems found, in plain words with evidence,
	// the most important first.
	Findings []Finding `json:"findings"`

	// LockWait is the total time goroutines waited on sync.Mutex and
	// sync.RWMutex in the window, and LockWaits the number of waits.
	LockWait  time.Duration `json:"lock_wait"`
	LockWaits int           `json:"lock_waits"`

	// Sites are the lock call sites (Mutex.Lock, RWMutex.RLock,
	// RWMutex.Lock) with the most total wait, at most [Options.Top]. SitesTotal is how many contended lock sites
	// there were in all.
	Sites      []Site `json:"sites"`
	SitesTotal int    `json:"sites_total"`

	// SyncSites are the other synchronization waits by call site:
	// WaitGroup.Wait, Cond.Wait, chan send, chan receive and select.
	SyncSites []Site `json:"sync_sites,omitempty"`

	// OtherWaits sums the waits that are neither locks nor the
	// synchronization above (sleep, network, syscall, GC, ...), by reason.
	OtherWaits []ReasonTotal `json:"other_waits,omitempty"`

	// Waits are the longest individual lock waits (then the longest other
	// synchronization waits), each with its waiter and the goroutine that
	// woke it. Every wait in the window is counted in Sites; only these
	// are kept one by one.
	Waits []Wait `json:"waits,omitempty"`

	// CgoCalls are the cgo calls of the window by the program's function
	// that made them, most time first: a lock taken in C is waited for
	// inside them, where no Go profile sees it.
	CgoCalls []CgoSite `json:"cgo_calls,omitempty"`

	// Profiles is the join with the mutex and block profile deltas.
	Profiles *ProfileSection `json:"profiles,omitempty"`

	// Threads lists, for each OS thread seen in the trace, the goroutine
	// that ran on it last and what that goroutine was doing at the end of
	// the window.
	Threads []ThreadActivity `json:"threads,omitempty"`

	// Parked are the places where goroutines were parked on locks when
	// the window ended ([Options.Parked]), most waiters first; nil when
	// there was no goroutine scan.
	Parked []ParkedSite `json:"parked"`

	// OSThreads is the OS view of the threads when the window ended
	// ([Options.Threads]), joined with the trace's view of them.
	OSThreads *OSThreads `json:"os_threads,omitempty"`

	// Locks is what the goroutine dump ([Options.Goroutines]) says of
	// the locks goroutines were parked on: their likely holders, the
	// deadlocks and the wait chains.
	Locks *Locks `json:"locks,omitempty"`

	// NamedLocks are the named locks of package locks when the window
	// ended ([Options.NamedLocks]): exact identity, holder and hold time,
	// stuck ones first, then by waiters and by wait; nil if none was given.
	NamedLocks []NamedLock `json:"named_locks,omitempty"`

	// Inversions are the lock-order inversions between named locks that
	// the lock-order check found ([Options.Inversions]): potential
	// deadlocks, found before they happen.
	Inversions []LockInversion `json:"lock_order_inversions,omitempty"`

	// Caveats say what the data at hand cannot show.
	Caveats []string `json:"caveats,omitempty"`

	// MainModule is the module taken as the program's own code, and
	// MainModuleSource how it was found ("the build info", "package main
	// in the stacks", ...); empty when nothing says.
	MainModule       string `json:"main_module,omitempty"`
	MainModuleSource string `json:"main_module_source,omitempty"`

	// LockdiagWaits and LockdiagWait count the waits of lockdiag's own
	// goroutines (its monitor, recorder and snapshot collection), which
	// are left out of every table.
	LockdiagWaits int           `json:"lockdiag_waits,omitempty"`
	LockdiagWait  time.Duration `json:"lockdiag_wait,omitempty"`
}

// Window describes the analyzed trace window.
type Window struct {
	// Start and End are wall-clock times, from the trace's clock
	// snapshot; zero when the trace has none (Go before 1.25).
	Start time.Time `json:"start,omitempty"`
	End   time.Time `json:"end,omitempty"`
	// StartNs and EndNs are the trace clock (monotonic nanoseconds) of the
	// first and last event analyzed.
	StartNs  int64         `json:"start_ns"`
	EndNs    int64         `json:"end_ns"`
	Duration time.Duration `json:"duration"`
	// Bytes is how much of the trace was read, Events how many events
	// were analyzed, Generations how many trace generations (about one
	// second each) they span.
	Bytes       int64 `json:"bytes"`
	Events      int64 `json:"events"`
	Generations int   `json:"generations"`
}

// Finding is one problem, in plain words, with the evidence for it.
type Finding struct {
	// Kind is one of "held-across-blocking", "cpu-starved", "saturated-lock",
	// "long-critical-section", "writer-starvation", "reader-convoy",
	// "contention-ended", "cgo-lock", "runtime-lock", "long-wait",
	// "hot-lock", "stuck-lock", "deadlock", "lock-order-inversion".
	Kind     string   `json:"kind"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
	// Site is the lock site the finding is about ("pkg.Func
	// (file.go:88)"), if any; for a named lock (package locks), its name
	// ("inventory_shard_7"), or for a lock-order inversion both names
	// ("accounts, ledger").
	Site string `json:"site,omitempty"`
	// Source says what the finding rests on: "trace", "threads" (the OS
	// thread scan), "scan" (the goroutines parked when the window
	// ended), "mutex profile", "block profile", "named locks" (the
	// locks' own records, [Options.NamedLocks] and [Options.Inversions]).
	Source string `json:"source,omitempty"`
}

// Frame is one stack frame.
type Frame struct {
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
}

// Site is a call site where goroutines waited: the first frame of the
// waiters' stacks outside the runtime and the sync package, and past the
// functions whose work is to call Lock (lock wrappers, see Via). Its
// numbers come from the trace.
type Site struct {
	// Kind is how they waited: "Mutex.Lock", "RWMutex.RLock",
	// "RWMutex.Lock", "WaitGroup.Wait", "Cond.Wait", "chan send",
	// "chan receive" or "select".
	Kind string `json:"kind"`
	// Func, File and Line are the call site. Func is "?" when the waiters
	// were blocked before the window began and the trace gave no stack.
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`

	// Waits is the number of waits; AtLeast how many of them began before
	// the window or were still going at its end (their durations are
	// lower bounds). Waiters is the number of distinct goroutines.
	Waits   int `json:"waits"`
	AtLeast int `json:"at_least,omitempty"`
	Waiters int `json:"waiters"`

	Total time.Duration `json:"total"`
	Max   time.Duration `json:"max"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
	// Share is this site's part of all lock wait (of all synchronization
	// wait for SyncSites), 0 to 1.
	Share float64 `json:"share"`

	// Stack is a representative waiter stack, leaf first, shortened
	// from the Lock call to the program's own frame.
	Stack []Frame `json:"stack"`

	// Via are the lock wrappers walked past, innermost first
	// ("logrus.(*mutexWrap).Lock"). Module is Func's module when it is
	// neither the standard library nor the program's
	// ("github.com/sirupsen/logrus"). Caller is the program's own
	// function on the waiters' stacks ("main.handleRequest"); it is Func
	// itself when the program takes the lock directly.
	Via    []string `json:"via,omitempty"`
	Module string   `json:"module,omitempty"`
	Caller string   `json:"caller,omitempty"`
	// Entries are the other places where the waiters took the same
	// lock through the same wrapper, most wait first.
	Entries []SiteEntry `json:"entries,omitempty"`

	// First and Last are when the first wait here began and the last
	// ended, as offsets from the window's start; PerSecond counts the
	// waits by the second of the window they began in. WaitingAtEnd is
	// how many goroutines still waited when the window ended.
	First time.Duration `json:"first"`
	Last  time.Duration `json:"last"`
	// LastServed is when the last wait here that was served (its
	// goroutine woken with the lock) ended, as an offset from the
	// window's start; zero if none was.
	LastServed   time.Duration `json:"last_served,omitempty"`
	PerSecond    []int         `json:"per_second,omitempty"`
	WaitingAtEnd int           `json:"waiting_at_end,omitempty"`
	// Contended is the share of the window during which at least one
	// goroutine waited here; Held the share covered by the holds the
	// trace showed end to end (a lower bound: holds that began without a
	// wait are not seen).
	Contended float64 `json:"contended,omitempty"`
	Held      float64 `json:"held,omitempty"`

	// Holders are the critical sections (for locks) or the wakers (for
	// other kinds) that made the goroutines wait here, most wait first.
	Holders []Holder `json:"holders"`

	// BlockProfile is this site's entry in the block profile delta, when
	// one matched.
	BlockProfile *ProfileSite `json:"block_profile,omitempty"`

	// Named says the waiters here waited for named locks (package locks):
	// [Report.NamedLocks] tells those locks apart and names their holders
	// exactly.
	Named bool `json:"named,omitempty"`
}

// Holder is a critical section (or a waker) that ended waits at a site.
type Holder struct {
	// Op is the call that woke the waiters: "Mutex.Unlock",
	// "RWMutex.Unlock", "RWMutex.RUnlock", "Cond.Broadcast", "chan send",
	// ... It is "" for the pseudo-holder that stands for waits still going
	// at the end of the window (Func is then "(not released in the
	// window)") and for timer or runtime wake-ups.
	Op string `json:"op"`
	// Func, File, Line: the first frame of the waker's stack outside the
	// runtime and sync. For a lock, Func owns the critical section.
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Wait is the waiting time blamed on this holder, Share its part of
	// the site's blamed wait. For locks, every waiter's time between two
	// wake-ups at the site is blamed on the critical section that ended
	// it; for other kinds, a wait is credited to whoever ended it.
	Wait  time.Duration `json:"wait"`
	Share float64       `json:"share"`
	// Wakeups is how many waits it ended, Goroutines how many distinct
	// goroutines did.
	Wakeups    int `json:"wakeups"`
	Goroutines int `json:"goroutines"`
	// Stack is a representative stack of the wake-up call, leaf first.
	Stack []Frame `json:"stack,omitempty"`
	// Via are the unlock wrappers and with-lock helpers walked past to
	// Func; when the critical section is a function passed to such a
	// helper, Func is that function (a closure: "main.handleOrder.func1").
	// Module and Caller are as for a Site.
	Via    []string `json:"via,omitempty"`
	Module string   `json:"module,omitempty"`
	Caller string   `json:"caller,omitempty"`
	// Section is the function whose call spans the critical section when
	// the Lock and the Unlock are in different functions (a transaction:
	// Lock in Begin, Unlock in Commit, both under Update).
	Section string `json:"section,omitempty"`
	// Holds are the holds of this critical section that the trace showed
	// end to end, and what the holder did in them.
	Holds *Holds `json:"holds,omitempty"`
	// BlockedInside is set when this holder blocked (network, syscall,
	// chan, select, sleep, ...) inside its critical section while others
	// waited.
	BlockedInside *BlockedInside `json:"blocked_inside,omitempty"`
	// MutexProfile is the mutex profile entry of this Unlock site, when
	// one matched.
	MutexProfile *ProfileSite `json:"mutex_profile,omitempty"`
}

// BlockedInside is evidence that a lock holder blocked inside its
// critical section: the holder goroutine blocked in a stack that contains
// the function that later issued the Unlock, after it last acquired a
// contended lock and while goroutines waited at the site.
type BlockedInside struct {
	// Reason is the most common blocking reason ("network", "select",
	// "syscall", "sleep", "chan receive", ...), Via a short description
	// of the call, e.g. "net/http" when the stack has net/http frames.
	Reason string `json:"reason"`
	Via    string `json:"via,omitempty"`
	// Times is how many of the holder's wake-ups followed such a block,
	// Blocked the holder's total time blocked there, Wait the waiters'
	// time blamed on those critical sections, MaxQueued the most
	// goroutines waiting at once at such a wake-up.
	Times     int           `json:"times"`
	Blocked   time.Duration `json:"blocked"`
	Wait      time.Duration `json:"wait"`
	MaxQueued int           `json:"max_queued"`
	// Stack is the holder's stack at one such block, leaf first.
	Stack []Frame `json:"stack"`
	// In is the function in the critical section that made the blocking
	// call, and Call the call ("main.(*ackSink).Write",
	// "net.(*conn).Read").
	In   string `json:"in,omitempty"`
	Call string `json:"call,omitempty"`
}

// CgoSite sums the cgo calls made from one place.
type CgoSite struct {
	// Func is the program's function that made the calls, Stub the cgo
	// stub ("main._Cfunc_native_lookup").
	Func string `json:"func"`
	Stub string `json:"stub,omitempty"`
	// Calls, Goroutines, Total and Max are from the trace; Ongoing is how
	// many calls were still going when the window ended (their time is
	// counted to the end).
	Calls      int           `json:"calls"`
	Goroutines int           `json:"goroutines"`
	Total      time.Duration `json:"total"`
	Max        time.Duration `json:"max"`
	Ongoing    int           `json:"ongoing,omitempty"`
	Stack      []Frame       `json:"stack,omitempty"`
}

// SiteEntry is one more place where a wrapped lock was taken.
type SiteEntry struct {
	Func  string        `json:"func"`
	File  string        `json:"file"`
	Line  int           `json:"line"`
	Waits int           `json:"waits"`
	Total time.Duration `json:"total"`
}

// Holds sums the holds of one critical section that the trace showed
// from the acquisition (a woken waiter) to the release (its Unlock that
// woke another).
type Holds struct {
	Count int           `json:"count"`
	Total time.Duration `json:"total"`
	P50   time.Duration `json:"p50"`
	Max   time.Duration `json:"max"`
	// Running, Runnable, Syscall and Blocked are the shares of the hold
	// time the holder spent on a CPU, waiting for one, in a system call
	// (or a cgo call) and blocked (parked).
	Running  float64 `json:"running"`
	Runnable float64 `json:"runnable"`
	Syscall  float64 `json:"syscall"`
	Blocked  float64 `json:"blocked"`
	// In is the function the holder was seen running in when it was
	// preempted inside, and Samples how many times it was seen.
	In      string `json:"in,omitempty"`
	Samples int    `json:"samples,omitempty"`
}

// ReasonTotal sums waits of one reason.
type ReasonTotal struct {
	Reason  string        `json:"reason"`
	Waits   int           `json:"waits"`
	AtLeast int           `json:"at_least,omitempty"`
	Total   time.Duration `json:"total"`
	Max     time.Duration `json:"max"`
}

// Wait is one goroutine block interval.
type Wait struct {
	Kind string `json:"kind"`
	// Site is the waiter's call site, "file.go:88 (pkg.Func)".
	Site      string `json:"site"`
	Goroutine int64  `json:"goroutine"`
	// Start is the offset from the window's start; AtLeast is set when
	// the wait began before the window or was still going at its end.
	Start    time.Duration `json:"start"`
	Duration time.Duration `json:"duration"`
	AtLeast  bool          `json:"at_least,omitempty"`
	// Parks is how many times the goroutine parked during this wait (a
	// woken Mutex waiter that loses the race parks again).
	Parks int     `json:"parks,omitempty"`
	Stack []Frame `json:"stack"`
	// Unblocker is the goroutine that woke the waiter (-1 for none: a
	// timer, the runtime, or the wait was still going at the end), and
	// UnblockerStack the stack of its wake-up call.
	Unblocker      int64   `json:"unblocker"`
	UnblockerStack []Frame `json:"unblocker_stack,omitempty"`
	// UnblockerAt is the unblocker's critical section (its Unlock's
	// caller past the unlock wrappers), for lock waits.
	UnblockerAt *Frame `json:"unblocker_at,omitempty"`
}

// ProfileSection is the mutex and block profile part of the report.
type ProfileSection struct {
	// MutexFraction and BlockRate are the profile rates in effect
	// (runtime.SetMutexProfileFraction, runtime.SetBlockProfileRate).
	MutexFraction int `json:"mutex_fraction"`
	BlockRate     int `json:"block_rate"`
	// MutexFractions are the mutex profile fractions in force over the
	// window, oldest first, when the fraction changed within it (the
	// runtime scales each sample by the fraction in force when it records
	// it, so the counts mix scales); MutexFraction is then the latest.
	MutexFractions []int `json:"mutex_fractions,omitempty"`
	// Holders are the top Unlock sites of the mutex profile: the waiting
	// time others spent on locks, charged to where the lock was released.
	Holders []ProfileSite `json:"holders,omitempty"`
	// Waiters are the top wait sites of the block profile.
	Waiters []ProfileSite `json:"waiters,omitempty"`
	// RuntimeLocks are mutex profile samples on runtime-internal locks,
	// by the first caller outside the runtime.
	RuntimeLocks []ProfileSite `json:"runtime_locks,omitempty"`
	// MutexTotal and BlockTotal are the profiles' total delays.
	MutexTotal time.Duration `json:"mutex_total"`
	BlockTotal time.Duration `json:"block_total"`
	// RuntimeTotal is the part of MutexTotal on runtime-internal locks:
	// the sum of all RuntimeLocks, including those cut from the list.
	RuntimeTotal time.Duration `json:"runtime_total,omitempty"`
	// Missing says what is not there and why.
	Missing []string `json:"missing,omitempty"`
}

// ProfileSite is a call site's total in a profile delta.
type ProfileSite struct {
	// Op is the leaf call: "Mutex.Unlock", "RWMutex.RUnlock",
	// "Mutex.Lock", "chan receive", "runtime.unlock", ...
	Op   string `json:"op"`
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Count and Delay are the contentions and delay, already scaled by
	// the runtime for sampling.
	Count int64         `json:"count"`
	Delay time.Duration `json:"delay"`
	// Samples is how many samples a mutex profile row's Count stands on,
	// when that is known (the fraction is known and did not change within
	// the window); else 0.
	Samples int64 `json:"samples,omitempty"`
	// Share is Delay's part of its list's total: MutexTotal for Holders,
	// BlockTotal for Waiters, RuntimeTotal for RuntimeLocks.
	Share float64 `json:"share"`
	// InTrace is set when the trace shows the same site.
	InTrace bool    `json:"in_trace,omitempty"`
	Stack   []Frame `json:"stack,omitempty"`
	// Note says why this total differs from the trace's, when it differs
	// by more than 1.25× either way or rests on fewer than 20 samples.
	Note string `json:"note,omitempty"`
}

// ThreadActivity is what an OS thread was last seen doing.
//
// On Linux the thread IDs in a Go trace are the kernel's thread IDs (the
// runtime writes m.procid, set from gettid), so they can be matched with
// /proc/self/task/<tid>. On other systems they are whatever the runtime
// uses to name the thread.
type ThreadActivity struct {
	Thread int64 `json:"thread"`
	// Goroutine is the last goroutine that ran on the thread, and State
	// and Stack what that goroutine was doing at the end of the window
	// (its last known state and stack).
	Goroutine int64   `json:"goroutine"`
	State     string  `json:"state"`
	Stack     []Frame `json:"stack,omitempty"`
	// LastRun is when, as an offset from the window's start, the
	// goroutine last started running on the thread.
	LastRun time.Duration `json:"last_run"`
	// Since is when the goroutine entered State (a system or cgo call,
	// a wait), as an offset from the window's start; AtLeast is set when
	// that was before the window.
	Since   time.Duration `json:"since,omitempty"`
	AtLeast bool          `json:"at_least,omitempty"`
}

// ParkedSite is a place in the program where goroutines were parked on a
// lock at one moment, from a goroutine scan.
type ParkedSite struct {
	// Kind is "Mutex.Lock", "RWMutex.RLock" or "RWMutex.Lock".
	Kind string `json:"kind"`
	// Func, File and Line name the caller of the lock method.
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Waiters is how many goroutines were parked there.
	Waiters int `json:"waiters"`
	// NoProgress is how long the site has made no progress when a
	// monitor watched it: goroutines were parked there at every scan and
	// the lock wait they would have added by being served did not come.
	// Zero when the site progressed or was not watched that long.
	NoProgress time.Duration `json:"no_progress,omitempty"`
	// Named says the goroutines wait for named locks (package locks),
	// which a monitor follows lock by lock ([Options.NamedLocks]) rather
	// than by site: NoProgress is not set for them.
	Named bool `json:"named,omitempty"`
}

// Where returns "pkg.Func (file.go:88)".
func (p ParkedSite) Where() string {
	return stacks.Short(p.Func) + " (" + path.Base(p.File) + ":" + strconv.Itoa(p.Line) + ")"
}

// Threads is the OS view of a process's threads at one moment (Linux:
// /proc/self/task), an input of [Analyze].
type Threads struct {
	Time    time.Time `json:"time"`
	Threads []Thread  `json:"threads"`
	// FutexWaiters is the number of threads blocked on a lock word
	// (classes "runtime-lock" and "pthread-mutex").
	FutexWaiters int `json:"futex_waiters"`
	// RatesValid says whether RunDelay, CtxSwitches and the threads'
	// rates are known: they need an earlier scan IntervalSeconds before.
	RatesValid      bool    `json:"rates_valid"`
	IntervalSeconds float64 `json:"interval_seconds,omitempty"`
	// RunDelay is seconds per second that threads waited for a CPU,
	// summed over threads; CtxSwitches context switches per second.
	RunDelay    float64 `json:"run_delay"`
	CtxSwitches float64 `json:"ctx_switches"`
	// Vanished counts threads that exited while being read.
	Vanished int `json:"vanished,omitempty"`
	// Notes say what limited the scan.
	Notes []string `json:"notes,omitempty"`
}

// Thread is one OS thread at the moment of a scan.
type Thread struct {
	TID  int    `json:"tid"`
	Name string `json:"name"`
	// State is the scheduler's one-letter state (R, S, D, ...).
	State string `json:"state"`
	// Class says what the thread does: "running", "runtime-lock",
	// "pthread-mutex", "idle", "netpoller", "sleeping", "syscall" or
	// "other" (the text report explains each).
	Class string `json:"class"`
	// Syscall names the system call the thread is blocked in, if any.
	Syscall string `json:"syscall,omitempty"`
	// FutexAddr is the futex word a thread blocked in a futex wait waits
	// on (for a pthread mutex, the mutex's address), FutexVal the value
	// it expected, FutexWaiters how many threads wait on the same word.
	FutexAddr    uint64 `json:"futex_addr,omitempty"`
	FutexVal     uint32 `json:"futex_val,omitempty"`
	FutexWaiters int    `json:"futex_waiters,omitempty"`
	// RunDelay is seconds per second the thread waited for a CPU;
	// Voluntary and Involuntary its context switches per second. Valid
	// when RatesValid.
	RatesValid  bool    `json:"rates_valid,omitempty"`
	RunDelay    float64 `json:"run_delay,omitempty"`
	Voluntary   float64 `json:"voluntary_per_sec,omitempty"`
	Involuntary float64 `json:"involuntary_per_sec,omitempty"`
	// Err says what could not be read for this thread.
	Err string `json:"error,omitempty"`
}

// OSThreads is the report's section on the OS threads.
type OSThreads struct {
	Threads
	// OnLockWord are the threads blocked on a lock word (runtime-internal
	// or cgo), with what the trace last saw running on them.
	OnLockWord []ThreadOnLock `json:"on_lock_word,omitempty"`
	// TraceMatched is how many of the threads the trace window knows by
	// their thread id.
	TraceMatched int `json:"trace_matched"`
	// Reclassified is how many threads /proc took for idle Ms (a futex
	// wait on the value 0) that the trace shows in a cgo call: they wait
	// in C, and are counted as pthread-mutex.
	Reclassified int `json:"reclassified,omitempty"`
}

// ThreadOnLock is an OS thread blocked on a lock word.
type ThreadOnLock struct {
	TID   int    `json:"tid"`
	Class string `json:"class"`
	Futex uint64 `json:"futex_addr"`
	// Goroutine, State and Stack come from the trace: the goroutine that
	// ran on this thread last, and what it was doing.
	Goroutine int64   `json:"goroutine,omitempty"`
	State     string  `json:"state,omitempty"`
	Stack     []Frame `json:"stack,omitempty"`
}

// Locks is what a goroutine dump taken when the window ended says of the
// locks goroutines were parked on. The runtime records no lock owner: the
// holders are inferred from the goroutines' frames (the lock's address or
// the object it is in, in a frame of the holder's), each with how sure
// the inference is and why.
type Locks struct {
	// Source says what the dump could show: "debug=2" (ids, states and
	// arguments: holders by goroutine, deadlocks) or "debug=1" (stacks
	// only: holders by function, no deadlock can be proven).
	Source    string      `json:"source"`
	Locks     []LockState `json:"locks"`
	Deadlocks []LockCycle `json:"deadlocks,omitempty"`
	Chains    []LockCycle `json:"chains,omitempty"`
}

// LockState is one lock with goroutines parked on it.
type LockState struct {
	// Lock names it: "the Mutex at 0xc000010058 (in *bank.Account
	// 0xc000010040, +0x18)", or by its call site when the dump does not
	// show its address.
	Lock string `json:"lock"`
	Kind string `json:"kind"`
	// Func, File and Line are the first waiter's call site.
	Func string `json:"func"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Waiters is how many goroutines wait; WaiterIDs the first of them.
	Waiters   int     `json:"waiters"`
	WaiterIDs []int64 `json:"waiter_ids,omitempty"`
	// Labels groups the waiters by their pprof labels (an HTTP route, an
	// RPC method), when the goroutines carry any.
	Labels []LabelCount `json:"labels,omitempty"`
	// Holders are the likely holders, best first; NoHolder says why none
	// was found.
	Holders  []LockHolder `json:"holders,omitempty"`
	NoHolder string       `json:"no_holder,omitempty"`
	// Named says the waiters wait for a named lock (package locks): no
	// holder is guessed for it, [Report.NamedLocks] has the exact one.
	Named bool `json:"named,omitempty"`
}

// LockHolder is a goroutine that likely holds a lock.
type LockHolder struct {
	// Goroutine is its id (0 in a debug=1 dump, where Count says how many
	// goroutines share the stack).
	Goroutine int64 `json:"goroutine,omitempty"`
	Count     int   `json:"count,omitempty"`
	// State is what it does: "sleep", "IO wait", "chan receive",
	// "running", "sync.Mutex.Lock", ...; WaitMinutes how long it has, as
	// the runtime prints it (whole minutes, off by up to a GC interval).
	State       string `json:"state,omitempty"`
	WaitMinutes int    `json:"wait_minutes,omitempty"`
	// Mode is what it holds: "lock", "write", "read" or "writer slot".
	Mode string `json:"mode,omitempty"`
	// Where is the frame that ties it to the lock; Stack its stack.
	Where string  `json:"where"`
	Stack []Frame `json:"stack,omitempty"`
	// Confidence is "high", "medium" or "low"; Reason says why.
	Confidence string `json:"confidence"`
	Reason     string `json:"reason"`
}

// LockCycle is a deadlock (a cycle of goroutines, each waiting for a lock
// the next holds) or a wait chain (a holder that waits for another lock,
// followed to the goroutine at its root), told in words.
type LockCycle struct {
	Summary    string  `json:"summary"`
	Goroutines []int64 `json:"goroutines"`
	// Sites are where each of them waits (the call site of its lock).
	Sites      []Frame `json:"sites,omitempty"`
	Confidence string  `json:"confidence"`
	// Root is, for a chain, the goroutine at its end: what it does and
	// where.
	Root *LockHolder `json:"root,omitempty"`
}

// LabelCount is how many waiters carry one set of pprof labels.
type LabelCount struct {
	Labels  string `json:"labels"`
	Waiters int    `json:"waiters"`
}

// NamedLock is a named lock of package locks (github.com/lockdiag/lockdiag/locks)
// at one moment: an input of [Analyze] ([Options.NamedLocks]) and a row of
// the report's named locks. Unlike what the trace and the goroutine dump
// show, its identity, holder and hold time are exact: the lock recorded
// them. Its JSON form uses the schema's names (lock.id, lock.type,
// lock.wait.duration, lock.held.duration); durations are in nanoseconds,
// as everywhere in the report.
type NamedLock struct {
	// Name is the lock's id (locks.Mutex.SetName); Type is "mutex" or
	// "rwmutex".
	Name string `json:"lock.id"`
	Type string `json:"lock.type"`
	// Age is how long ago the lock was named: the span of Acquisitions,
	// Contended, Wait and Hold.
	Age time.Duration `json:"age"`

	// Waiters is how many goroutines waited to acquire it, Readers how
	// many read holds an RWMutex had.
	Waiters int `json:"waiters"`
	Readers int `json:"readers,omitempty"`
	// Held says it was held (an RWMutex: for writing), by goroutine
	// Holder (0 when goroutine ids are unavailable), for HeldFor: exactly
	// when HeldForExact, else at least (the hold was not timed, and
	// HeldFor runs from when a reader of the lock first saw it).
	Held         bool          `json:"held"`
	Holder       int64         `json:"holder_goroutine,omitempty"`
	HeldFor      time.Duration `json:"held_for,omitempty"`
	HeldForExact bool          `json:"held_for_exact,omitempty"`
	// AcquiredAt is the holder's stack when it acquired the current hold,
	// from the caller of Lock, when the lock sampled it (contended
	// acquisitions, at most one a millisecond).
	AcquiredAt []Frame `json:"acquired_at,omitempty"`

	// Acquisitions and Contended count the acquisitions since the lock
	// was named, and those that waited.
	Acquisitions uint64 `json:"acquisitions"`
	Contended    uint64 `json:"contended"`
	// Wait and Hold summarize the wait and hold durations since the lock
	// was named (holds are sampled: see package locks).
	Wait Durations `json:"lock.wait.duration"`
	Hold Durations `json:"lock.held.duration"`

	// NoProgress is how long goroutines had waited for the lock with no
	// acquisition at all, as a monitor watched it (0: not watched that
	// long, or the lock moved).
	NoProgress time.Duration `json:"no_progress,omitempty"`
	// Stuck says a monitor judged the lock stuck: it has waiters, and its
	// current hold has lasted its bound (diag's Config.StuckAfter), or no
	// goroutine acquired it for that long.
	Stuck bool `json:"stuck,omitempty"`

	// HolderState and HolderStack are what the goroutine dump
	// ([Options.Goroutines]) shows of the holder: its state ("sleep", "IO
	// wait", "running", ...) and its stack when the window ended. Set by
	// [Analyze] when the dump has the holder's id.
	HolderState string  `json:"holder_state,omitempty"`
	HolderStack []Frame `json:"holder_stack,omitempty"`
}

// Durations summarizes a distribution of durations.
type Durations struct {
	Count uint64        `json:"count"`
	Sum   time.Duration `json:"sum"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

// LockInversion is a potential deadlock between two named locks, found by
// package locks' lock-order check: goroutine GoroutineAB locked B while it
// held A, and goroutine GoroutineBA locked A while it held B. Run at the
// same time, each could wait for the other forever.
type LockInversion struct {
	// A and B are the locks' names; A-then-B is the order seen first.
	A string `json:"a"`
	B string `json:"b"`
	// The stacks start at the call of Lock, each the first time its order
	// was seen.
	GoroutineAB int64   `json:"goroutine_ab"`
	StackAB     []Frame `json:"stack_ab"`
	GoroutineBA int64   `json:"goroutine_ba"`
	StackBA     []Frame `json:"stack_ba"`
	// Time is when the second order was seen (before it waited).
	Time time.Time `json:"time"`
}
