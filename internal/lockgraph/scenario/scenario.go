// Package scenario starts lock incidents in the running process: a Mutex
// stuck behind a sleeping holder, RWMutex readers behind a writer blocked on
// the network, lock-order deadlocks, a chain of holders, a self-deadlock,
// and more (see [Names]). Each reports the ids of the goroutines it started,
// by role, and the addresses of its locks, so that tests can check what
// lockgraph finds in a real goroutine dump against what was built.
//
// The incidents are made of named, non-inlined methods on small structs
// (`(*Store).flush` holds, `(*Store).Get` waits) so that dumps read like a
// service's. [Start] returns once every goroutine is parked where the
// scenario put it. Scenarios that cannot be undone (deadlocks) must run in a
// process that exits afterwards; the others are released by [Run.Release],
// which returns after every goroutine they started has exited.
//
// It is test support for lockgraph and for gdump's fixture generator.
package scenario

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// A Run is a started scenario.
type Run struct {
	Name string
	// Releasable reports whether Release can undo the scenario. The
	// others (deadlocks) leave goroutines blocked for the life of the
	// process.
	Releasable bool

	mu   sync.Mutex
	g    map[string]int64
	addr map[string]uint64
	// want lists the states each role must reach before Start returns.
	want    map[string][]string
	release []func()
	wg      sync.WaitGroup
	done    bool
}

// G returns the goroutine id of a role ("holder", "waiter1", ...); 0 if the
// scenario has no such role.
func (r *Run) G(role string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.g[role]
}

// Roles returns every role and its goroutine id.
func (r *Run) Roles() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int64, len(r.g))
	for k, v := range r.g {
		m[k] = v
	}
	return m
}

// Addr returns a named address ("lock", "object", ...); 0 if unknown.
func (r *Run) Addr(name string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr[name]
}

// Addrs returns every named address.
func (r *Run) Addrs() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]uint64, len(r.addr))
	for k, v := range r.addr {
		m[k] = v
	}
	return m
}

// Release undoes a releasable scenario and waits for its goroutines to
// exit; it does nothing for the others, and nothing the second time.
func (r *Run) Release() {
	r.mu.Lock()
	if r.done || !r.Releasable {
		r.mu.Unlock()
		return
	}
	r.done = true
	fns := r.release
	r.mu.Unlock()
	for _, f := range fns {
		f()
	}
	r.wg.Wait()
}

// role records the calling goroutine under name.
func (r *Run) role(name string) {
	id := CurrentID()
	r.mu.Lock()
	r.g[name] = id
	r.mu.Unlock()
}

func (r *Run) setAddr(name string, a uint64) {
	r.mu.Lock()
	r.addr[name] = a
	r.mu.Unlock()
}

// expect makes Start wait until role is in one of states.
func (r *Run) expect(role string, states ...string) { r.want[role] = states }

func (r *Run) onRelease(f func()) { r.release = append(r.release, f) }

// goRole starts f in a goroutine that records itself as role.
func (r *Run) goRole(role string, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.role(role)
		f()
	}()
}

type scenario struct {
	releasable bool
	start      func(r *Run) error
}

var scenarios = map[string]scenario{}

func register(name string, releasable bool, start func(r *Run) error) {
	scenarios[name] = scenario{releasable, start}
}

// Names returns the scenarios, sorted.
func Names() []string {
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// IsReleasable reports whether the named scenario can be undone.
func IsReleasable(name string) bool { return scenarios[name].releasable }

// Start starts the named scenario and returns once each of its goroutines
// is parked where the scenario put it (10 s at most).
func Start(name string) (*Run, error) {
	s, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("scenario: unknown scenario %q", name)
	}
	r := &Run{
		Name:       name,
		Releasable: s.releasable,
		g:          make(map[string]int64),
		addr:       make(map[string]uint64),
		want:       make(map[string][]string),
	}
	if err := s.start(r); err != nil {
		r.Release()
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if err := r.waitStates(tenSeconds); err != nil {
		r.Release()
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return r, nil
}

// waitStates polls the process's goroutines until every expected role is
// in one of its states.
func (r *Run) waitStates(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := r.notYet()
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutines not parked after %v: %v", timeout, missing)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *Run) notYet() []string {
	states := make(map[int64]string)
	if d, _ := gdump.Parse(bytes.NewReader(AllStacks())); d != nil {
		for _, g := range d.Goroutines {
			states[g.ID] = g.State
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing []string
	for role, want := range r.want {
		id, ok := r.g[role]
		if !ok {
			missing = append(missing, role+" (not started)")
			continue
		}
		if !slices.Contains(want, states[id]) {
			missing = append(missing, fmt.Sprintf("%s (goroutine %d is %q, want %q)", role, id, states[id], want))
		}
	}
	slices.Sort(missing)
	return missing
}

// AllStacks returns runtime.Stack(buf, true) of the whole process: the
// debug=2 goroutine dump.
func AllStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// CurrentID returns the calling goroutine's id, read from its own stack
// header as the dumps print it.
func CurrentID() int64 {
	var b [64]byte
	n := runtime.Stack(b[:], false)
	f := bytes.Fields(b[:n])
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return id
}

const tenSeconds = 10 * time.Second

// sleepUntil sleeps in short naps until stop is set: the goroutine shows
// as "sleep" in a dump.
//
//go:noinline
func sleepUntil(stop *atomic.Bool) {
	for !stop.Load() {
		time.Sleep(10 * time.Millisecond)
	}
}
