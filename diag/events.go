package diag

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/lockreport"
)

// EventType says what an [Event] reports.
type EventType string

const (
	// EventSample carries a new sample, every Interval.
	EventSample EventType = "sample"
	// EventBreach says a rule was breached.
	EventBreach EventType = "breach"
	// EventRecovered says a breached rule cleared.
	EventRecovered EventType = "recovered"
	// EventSnapshot says a snapshot was stored.
	EventSnapshot EventType = "snapshot"
	// EventSnapshotSkipped says a breach did not get a snapshot, and why.
	EventSnapshotSkipped EventType = "snapshot_skipped"
	// EventSnapshotFailed says a snapshot could not be taken.
	EventSnapshotFailed EventType = "snapshot_failed"
	// EventInversion says package locks' lock-order check found a new
	// lock-order inversion between two named locks: a potential deadlock.
	EventInversion EventType = "lock_order_inversion"
	// EventNamedLocks carries the named locks (package locks), the
	// busiest first, about once a second while there are any.
	EventNamedLocks EventType = "named_locks"
)

// An Event is something subscribers hear about. Only the fields of its
// type are set.
type Event struct {
	Type EventType `json:"type"`
	Time time.Time `json:"time"`

	// Sample is set for EventSample.
	Sample *Sample `json:"sample,omitempty"`

	// Breach is set for EventBreach, EventRecovered and for
	// EventSnapshotSkipped of a breach.
	Breach *Breach `json:"breach,omitempty"`

	// Snapshot is set for EventSnapshot.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`

	// Reason explains EventSnapshotSkipped and EventSnapshotFailed.
	Reason string `json:"reason,omitempty"`

	// Inversion is set for EventInversion.
	Inversion *lockreport.LockInversion `json:"inversion,omitempty"`

	// NamedLocks is set for EventNamedLocks: at most 20, without
	// stacks.
	NamedLocks []lockreport.NamedLock `json:"named_locks,omitempty"`
}

// A Breach describes a rule crossing its threshold, or clearing: the rule,
// its signal, the value, the threshold and the baseline, as a snapshot's
// trigger records them, and for a recovery its peak and duration.
type Breach struct {
	bundle.Breach
	// Peak and Duration are set when the breach clears.
	Peak     float64       `json:"peak,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	// Snapshot says whether the breach triggers a snapshot.
	Snapshot bool `json:"snapshot"`
}

// A Subscription receives events. Events that do not fit its buffer are
// dropped and counted, so a slow subscriber never slows the monitor.
type Subscription struct {
	c       chan Event
	dropped atomic.Uint64
	b       *broadcaster
	once    sync.Once
}

// C returns the channel events arrive on. It is closed when the
// subscription is closed or the monitor stops.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped returns how many events did not fit the buffer so far.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription. It is safe to call more than once and
// concurrently with event delivery.
func (s *Subscription) Close() {
	s.b.remove(s)
}

// broadcaster fans events out without blocking.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	n    atomic.Int32
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: make(map[*Subscription]struct{})}
}

func (b *broadcaster) subscribe(buffer int) *Subscription {
	s := &Subscription{c: make(chan Event, max(buffer, 1)), b: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.n.Store(int32(len(b.subs)))
	b.mu.Unlock()
	return s
}

func (b *broadcaster) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		b.n.Store(int32(len(b.subs)))
	}
	s.once.Do(func() { close(s.c) })
}

// active reports whether anyone listens; the sampler skips building sample
// events when nobody does.
func (b *broadcaster) active() bool { return b.n.Load() > 0 }

func (b *broadcaster) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// closeAll ends every subscription.
func (b *broadcaster) closeAll() {
	b.mu.Lock()
	subs := b.subs
	b.subs = make(map[*Subscription]struct{})
	b.n.Store(0)
	b.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.c) })
	}
}
