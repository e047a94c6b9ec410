// Package lockgraph reads a goroutine dump (parsed by internal/gdump) for
// goroutines parked on sync.Mutex, sync.RWMutex and sync.Once, groups them
// by lock, names the goroutines that most likely hold each lock, and finds
// deadlocks (cycles of goroutines each waiting for a lock the next one
// holds, self-deadlocks included) and chains (a holder that itself waits
// for another lock, down to a root that sleeps, reads the network, or
// spins).
//
// # How a lock is identified
//
// A Mutex waiter's dump shows the Mutex's address: the argument of
// (*Mutex).lockSlow, always printed accurately. A writer behind another
// writer shows the RWMutex's address the same way (its writer Mutex is its
// first field). RLock waiters and writers behind readers show no usable
// address in normal builds (the semaphore arguments are stale, the methods
// are inlined or their argument is dead; -race builds print it); their
// call site's receiver, when the runtime printed it without "?", is the
// object the lock is in. The offset of the lock in objects of that type is
// learned from writers behind a writer with a receiver, when there are
// any. With neither, the lock is known only by its call site, and two
// locks locked at one site cannot be told apart. The frame vocabulary of
// each Go version is in vocab.go; what dumps show in each case, measured
// with Go 1.26 and 1.27, is in FACTS.md.
//
// # How a holder is found
//
// The runtime does not record lock owners. A holder is inferred from what
// its frames show:
//   - High: a frame has the lock's address, or the object the lock is in
//     (the waiters' receiver, or the nearest object below the lock when it
//     is the receiver of a method of the waiters' type). Objects of the
//     waiters' type too far below the lock are ruled out: objects of one
//     type in a dump are never closer together than their size. A goroutine
//     with the object as a method's receiver outranks one that only passes
//     it as an argument; when several goroutines stay tied alike to an
//     exclusive lock, each loses a level (at most 8 are listed).
//   - Medium: a frame has an object a little below the lock (it may
//     enclose it: an embedded struct); or the goroutine runs the function
//     of the sync.Once its waiters wait for; or it is in a method of the
//     waiters' receiver type whose receiver the dump lost; or it runs a
//     function named in [Options.Hints] (the unlocker the trace or the
//     mutex profile saw for that site). A hinted goroutine also ranks
//     first among equals.
//   - Low: debug=1 dumps, which have no ids and no arguments: stacks in a
//     method of the waiters' type.
//
// An RWMutex writer waiting for readers holds the writer slot: readers
// that arrive after it queue behind it, so it is their holder (high) and
// the readers already inside are its holders. A waiter whose caller is a
// method on the same object may already hold the lock it waits for: a
// self-deadlock, a read lock upgraded to a write lock, or a recursive read
// lock behind a pending writer.
//
// Go 1.27's goroutineleak profile at debug=2 marks goroutines blocked on
// locks that nothing reachable can unlock "(leaked)"; a cycle of leaked
// goroutines is reported with high confidence.
//
// # Limits
//
// A goroutine that keeps the locked object without holding the lock looks
// like a holder (both are listed; a hint tells them apart). A holder that
// keeps only a pointer to the lock in a local variable, not in an
// argument, shows nothing; neither does a lock left locked by a goroutine
// that returned ("no holder found" says so). The object a lock is in is
// inferred from proximity, and a lock allocated just above an unrelated
// object the waiters have (in a closure, say) is attributed to it. Wait
// minutes in the headers are stamped by the garbage collector with the
// start of the previous GC: they can be off by a GC interval either way.
//
// # Cost
//
// Linear in the dump: one pass to classify goroutines, one over the
// argument words near the locks found; 0.5-1 µs per goroutine on a
// 20,000-goroutine server dump, after 1.4-2.5 µs per goroutine of parsing
// (BenchmarkDump, on a shared 2-vCPU VM).
package lockgraph

import (
	"github.com/lockdiag/lockdiag/internal/gdump"
)

// Confidence says how sure an inference is.
type Confidence uint8

const (
	Low Confidence = iota + 1
	Medium
	High
)

func (c Confidence) String() string {
	switch c {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return "none"
}

// LockKind is the type of a lock.
type LockKind uint8

const (
	Mutex LockKind = iota + 1
	RWMutex
	// Once is the Mutex of a sync.Once: its waiters call Do while another
	// goroutine runs the function.
	Once
)

func (k LockKind) String() string {
	switch k {
	case RWMutex:
		return "RWMutex"
	case Once:
		return "sync.Once"
	}
	return "Mutex"
}

// WaitKind is how a goroutine waits for a lock.
type WaitKind uint8

const (
	// WaitLock is Mutex.Lock.
	WaitLock WaitKind = iota + 1
	// WaitRLock is RWMutex.RLock: a writer holds the lock or waits for it.
	WaitRLock
	// WaitWriteBehindWriter is RWMutex.Lock waiting for another writer
	// (the runtime's wait reason is "sync.Mutex.Lock").
	WaitWriteBehindWriter
	// WaitWriteBehindReaders is RWMutex.Lock waiting for the readers
	// inside to leave; the writer already holds the writer slot.
	WaitWriteBehindReaders
)

func (k WaitKind) String() string {
	switch k {
	case WaitLock:
		return "Mutex.Lock"
	case WaitRLock:
		return "RWMutex.RLock"
	case WaitWriteBehindWriter:
		return "RWMutex.Lock (behind a writer)"
	case WaitWriteBehindReaders:
		return "RWMutex.Lock (behind readers)"
	}
	return "?"
}

// Identity is how a lock is known.
type Identity uint8

const (
	// ByAddress: the lock's address is known.
	ByAddress Identity = iota + 1
	// ByObject: the object the lock is in is known, not the address.
	ByObject
	// BySite: only the call site; locks locked at one site are merged.
	BySite
)

// HoldMode is what a holder holds.
type HoldMode uint8

const (
	// Holds: the Mutex, or an RWMutex in a mode the dump does not tell.
	Holds HoldMode = iota + 1
	// HoldsWrite: the RWMutex for writing.
	HoldsWrite
	// HoldsRead: the RWMutex for reading (there may be several).
	HoldsRead
	// HoldsWriterSlot: a writer waiting for readers; readers that came
	// after it queue behind it.
	HoldsWriterSlot
)

// Evidence is what ties a holder to a lock.
type Evidence uint8

const (
	// ByLockAddress: a frame has the lock's address.
	ByLockAddress Evidence = iota + 1
	// ByObjectRef: a frame has the object the lock is in (or a pointer into
	// it below the lock).
	ByObjectRef
	// ByEnclosing: a frame has an object a little below the lock's
	// object, which may contain it.
	ByEnclosing
	// ByPendingWriter: the goroutine is a writer waiting for readers.
	ByPendingWriter
	// BySelf: a waiter whose caller is a method on the same object.
	BySelf
	// ByOnceRunner: the goroutine runs a sync.Once's function, called
	// from the waiters' call site.
	ByOnceRunner
	// ByType: a method of the waiters' receiver type whose receiver the
	// dump does not show.
	ByType
	// ByHint: a function named in Options.Hints.
	ByHint
)

func (e Evidence) String() string {
	switch e {
	case ByLockAddress:
		return "lock address"
	case ByObjectRef:
		return "object"
	case ByEnclosing:
		return "enclosing object"
	case ByPendingWriter:
		return "pending writer"
	case BySelf:
		return "self"
	case ByType:
		return "receiver type"
	case ByHint:
		return "hint"
	case ByOnceRunner:
		return "Once runner"
	}
	return "?"
}

// Options tunes Analyze. The zero value works.
type Options struct {
	// Hints name functions known, from another source, to hold the lock
	// waited for at a call site: the unlockers the trace saw, the top
	// Unlock stacks of the mutex profile. A goroutine inside one of them
	// becomes a medium-confidence holder when nothing better ties a
	// goroutine to the lock. Nil means none.
	Hints []Hint
}

// A Hint says that Holder was seen holding the lock waited for at Site.
type Hint struct {
	// Site is the waiters' call-site function as a dump prints it
	// ("main.(*Cache).Get"); empty matches every site.
	Site string
	// Holder is the function seen holding the lock
	// ("main.(*Cache).migrate").
	Holder string
	// Source says where the hint comes from, for the reason text ("the
	// trace", "the mutex profile"); empty means "a hint".
	Source string
}

// Result is what Analyze found.
type Result struct {
	// Format is the dump's format; with debug=1 (gdump.Aggregated) there
	// are no goroutine ids: holders are stacks, locks are call sites, and
	// no deadlock or chain can be proven.
	Format gdump.Format
	// Locks have at least one waiter; most waiters first.
	Locks []*Lock
	// Deadlocks are cycles of goroutines, each waiting for a lock the next
	// holds.
	Deadlocks []*Deadlock
	// Chains start at a lock whose holder waits for another lock, and
	// follow the holders to a goroutine that waits for no lock (the root)
	// or whose lock has no known holder.
	Chains []*Chain
}

// A Lock is one lock with waiters.
type Lock struct {
	Kind     LockKind
	Identity Identity
	// Addr is the lock's address (ByAddress), 0 otherwise.
	Addr uint64
	// Object is the start of the object the lock is in, 0 if unknown;
	// Type is its type ("*store.Cache") when a method's receiver names it.
	Object uint64
	Type   string
	// Site is the call site of the first waiter: the first frame outside
	// the runtime and sync.
	Site gdump.Frame
	// Waiters are the goroutines (debug=1: stacks) parked on the lock.
	Waiters []Waiter
	// Holders are the likely holders, best first.
	Holders []*Holder
	// NoHolder says why no holder was found, when Holders is empty.
	NoHolder string
	// MoreHolders counts candidates left out of Holders (at most
	// maxHolders are listed).
	MoreHolders int
}

// A Waiter is a goroutine parked on a lock.
type Waiter struct {
	G    *gdump.Goroutine
	Kind WaitKind
	// Site is the index in G.Frames of the call site; -1 if the stack has
	// none outside the runtime and sync.
	Site int
	// For lists the holders (indexes in the Lock's Holders) it waits for:
	// readers wait for a writer, a pending writer for the readers.
	For []int
}

// A Holder is a goroutine that likely holds a lock.
type Holder struct {
	G          *gdump.Goroutine
	Mode       HoldMode
	Evidence   Evidence
	Confidence Confidence
	// Frame is the index in G.Frames of the frame that ties it to the
	// lock; -1 if none.
	Frame int
	// Reason says in words why it is a holder.
	Reason string
	// Waits is the lock this goroutine itself waits for, nil if none.
	Waits *Lock

	hinted bool // also in a hinted function: ranks first among equals
	// owner: the tie is the lock's address, or the object as the receiver
	// of a method of its type (where locks are taken), not an argument
	// passed along.
	owner bool
	// why formats Reason, for the holders that are kept only: a dump can
	// tie thousands of goroutines to a shared object.
	why func() string
	// demoted: lost a level to a goroutine with a better tie.
	demoted bool
}

// A Deadlock is a cycle of goroutines: each waits for the lock the next
// one holds, and the last waits for the first's.
type Deadlock struct {
	Steps      []Step
	Confidence Confidence
}

// A Step is a goroutine on a deadlock cycle or a chain.
type Step struct {
	G *gdump.Goroutine
	// Holds is the lock it holds that the step before waits for, and
	// Holder the evidence; both nil for the first step of a chain.
	Holds  *Lock
	Holder *Holder
	// Waits is the lock it waits for; nil for the root of a chain.
	Waits *Lock
}

// A Chain is a lock whose holder waits for another lock, followed to its
// root.
type Chain struct {
	// Lock is where the chain starts; Waiters are the goroutines (debug=1:
	// stacks) held up there.
	Lock    *Lock
	Waiters []*gdump.Goroutine
	// Steps[0] holds Lock; each step waits for the lock the next holds.
	// The last step waits for no lock (it is the root), or for a lock
	// with no known holder.
	Steps []Step
	// Confidence is the weakest link's.
	Confidence Confidence
}

// Analyze finds the locks waited for in d, their likely holders, and the
// deadlocks and chains among them. It never fails: what the dump cannot
// show is said in the result (Lock.NoHolder, lower confidences).
func Analyze(d *gdump.Dump, opts Options) *Result {
	a := newAnalysis(d, opts)
	return a.run()
}
