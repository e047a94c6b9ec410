package lockgraph

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// want is what Analyze must find for a scenario of package scenario, by
// role.
type want struct {
	// waits maps a waiter role to the role of the holder it waits for
	// ("" = no holder can be found).
	waits map[string]string
	// min is the lowest acceptable confidence of those holders in
	// normal builds; race builds print more arguments and may do better.
	min Confidence
	// deadlock lists the roles of a cycle, in wait-for order.
	deadlock []string
	// chain lists the roles of a chain's steps, first holder to root.
	chain []string
	// onlyHolder: the holder must be the lock's only one (no neighbour
	// object mistaken for it).
	onlyHolder bool
	// among: the holder need not be first, but must be one of this many
	// holders of the top confidence.
	among int
	// state is the holder's state as the dump must print it: what a
	// report says the holder is doing.
	state map[string][]string
}

var wants = map[string]want{
	"mutex-sleep":          {waits: map[string]string{"waiter1": "holder", "waiter2": "holder", "waiter3": "holder"}, min: High, onlyHolder: true, state: sleeping},
	"rwmutex-writer-io":    {waits: map[string]string{"reader1": "holder", "reader2": "holder", "reader3": "holder", "writer": "holder"}, min: High, onlyHolder: true, state: map[string][]string{"holder": {"IO wait"}}},
	"rwmutex-reader-sleep": {waits: map[string]string{"writer": "holder", "reader": "writer"}, min: High, chain: []string{"writer", "holder"}, state: map[string][]string{"holder": {"sleep", "runnable", "running"}, "writer": {"sync.RWMutex.Lock"}}},
	"deadlock2":            {waits: map[string]string{"g1": "g2", "g2": "g1"}, min: High, deadlock: []string{"g1", "g2"}},
	"deadlock3":            {waits: map[string]string{"g1": "g2", "g2": "g3", "g3": "g1"}, min: High, deadlock: []string{"g1", "g2", "g3"}},
	"chain":                {waits: map[string]string{"pusher1": "middle", "pusher2": "middle", "middle": "root"}, min: High, chain: []string{"middle", "root"}, state: map[string][]string{"middle": {"sync.Mutex.Lock"}, "root": {"chan receive", "select"}}},
	"self-deadlock":        {waits: map[string]string{"g": "g"}, min: Medium, deadlock: []string{"g"}},
	// 30 request goroutines have the server as an argument; the holder has
	// it as the receiver of a method of its type.
	"shared-object":   {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, onlyHolder: true, state: sleeping},
	"rlock-upgrade":   {waits: map[string]string{"g": "g"}, min: Medium, deadlock: []string{"g"}},
	"rlock-recursive": {waits: map[string]string{"walker": "writer", "writer": "walker"}, min: High, deadlock: []string{"walker", "writer"}},
	"same-site":       {waits: map[string]string{"waiter0a": "holder0", "waiter0b": "holder0", "waiter1a": "holder1", "waiter1b": "holder1"}, min: High, onlyHolder: true, state: map[string][]string{"holder0": {"chan receive"}, "holder1": {"chan receive"}}},
	"embedded":        {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: Medium, onlyHolder: true, state: sleeping},
	"no-holder":       {waits: map[string]string{"waiter1": "", "waiter2": ""}},
	"running-holder":  {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, onlyHolder: true, state: map[string][]string{"holder": {"running", "runnable"}}},
	"syscall-holder":  {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, onlyHolder: true, state: map[string][]string{"holder": {"syscall"}}},
	"lost-receiver":   {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: Medium, onlyHolder: true, state: map[string][]string{"holder": {"chan receive"}}},
	"once":            {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, onlyHolder: true, state: map[string][]string{"holder": {"chan receive"}}},
	"once-value":      {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: Medium, onlyHolder: true, state: map[string][]string{"holder": {"chan receive"}}},
	// The dump cannot tell a goroutine that holds the lock from one that
	// only keeps the object: both are named, the holder among them.
	"bystander": {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, among: 2, state: sleeping},
	"crowd":     {waits: map[string]string{"waiter1": "holder", "waiter2": "holder"}, min: High, onlyHolder: true, state: map[string][]string{"holder": {"chan receive"}}},
}

// sleeping: a holder in sleepUntil naps 10ms at a time; a dump may catch
// it between naps.
var sleeping = map[string][]string{"holder": {"sleep", "runnable", "running"}}

// score counts checks passed: one per waiter's holder, one per deadlock
// or chain.
type score struct{ ok, total int }

func (s *score) add(o score) { s.ok += o.ok; s.total += o.total }

func findWaiter(r *Result, id int64) (*Lock, *Waiter) {
	for _, l := range r.Locks {
		for i := range l.Waiters {
			if l.Waiters[i].G.ID == id {
				return l, &l.Waiters[i]
			}
		}
	}
	return nil, nil
}

// check compares a result with the scenario's want; it reports every
// mismatch and returns the score.
func check(t *testing.T, name string, r *Result, roles map[string]int64) score {
	t.Helper()
	w, ok := wants[name]
	if !ok {
		t.Fatalf("no expectations for scenario %q", name)
	}
	role := make(map[int64]string)
	for k, v := range roles {
		role[v] = k
	}
	var sc score
	waiters := slices.Sorted(func(yield func(string) bool) {
		for k := range w.waits {
			if !yield(k) {
				return
			}
		}
	})
	for _, wr := range waiters {
		hr := w.waits[wr]
		sc.total++
		l, wt := findWaiter(r, roles[wr])
		if wt == nil {
			t.Errorf("%s: %s (goroutine %d) is not a lock waiter", name, wr, roles[wr])
			continue
		}
		if hr == "" {
			if len(wt.For) != 0 || l.NoHolder == "" {
				t.Errorf("%s: %s: want no holder, got %v", name, wr, holderRoles(l, wt, role))
				continue
			}
			sc.ok++
			continue
		}
		if len(wt.For) == 0 {
			t.Errorf("%s: %s waits for %s, found no holder: %s", name, wr, hr, l.NoHolder)
			continue
		}
		top := l.Holders[wt.For[0]]
		if w.among > 0 {
			if len(wt.For) != w.among {
				t.Errorf("%s: %s: want %d holders, got %v", name, wr, w.among, holderRoles(l, wt, role))
				continue
			}
			for _, hi := range wt.For {
				if h := l.Holders[hi]; h.G.ID == roles[hr] && h.Confidence == top.Confidence {
					top = h
				}
			}
		}
		if top.G.ID != roles[hr] {
			t.Errorf("%s: %s waits for %s (goroutine %d); top holder is %s: %s", name, wr, hr, roles[hr], role[top.G.ID], top)
			continue
		}
		if top.Confidence < w.min {
			t.Errorf("%s: %s's holder %s found with %s confidence, want at least %s: %s", name, wr, hr, top.Confidence, w.min, top)
			continue
		}
		if w.onlyHolder && len(l.Holders) != 1 {
			t.Errorf("%s: want only %s as holder, got %v", name, hr, holderRoles(l, wt, role))
			continue
		}
		sc.ok++
	}
	for hr, states := range w.state {
		var g *Holder
		for _, l := range r.Locks {
			for _, h := range l.Holders {
				if h.G.ID == roles[hr] {
					g = h
				}
			}
		}
		if g == nil {
			continue // reported above
		}
		if !slices.Contains(states, g.G.State) {
			t.Errorf("%s: holder %s is %q, want one of %q", name, hr, g.G.State, states)
		}
	}
	if w.deadlock != nil {
		sc.total++
		if d := findDeadlock(r, roles, w.deadlock); d == nil {
			var got []string
			for _, d := range r.Deadlocks {
				got = append(got, d.String())
			}
			t.Errorf("%s: no deadlock of %v; found %q", name, w.deadlock, got)
		} else {
			sc.ok++
			if !strings.Contains(d.String(), fmt.Sprintf("goroutine %d", roles[w.deadlock[0]])) {
				t.Errorf("%s: deadlock text does not name goroutine %d: %s", name, roles[w.deadlock[0]], d)
			}
		}
	} else if len(r.Deadlocks) > 0 {
		t.Errorf("%s: unexpected deadlock: %s", name, r.Deadlocks[0])
	}
	if w.chain != nil {
		sc.total++
		found := false
		for _, c := range r.Chains {
			var got []string
			for _, s := range c.Steps {
				got = append(got, role[s.G.ID])
			}
			if slices.Equal(got, w.chain) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no chain %v; chains: %v", name, w.chain, r.Chains)
		} else {
			sc.ok++
		}
	}
	return sc
}

func holderRoles(l *Lock, w *Waiter, role map[int64]string) []string {
	var out []string
	for _, h := range l.Holders {
		out = append(out, fmt.Sprintf("%s(g%d,%s,%s)", role[h.G.ID], h.G.ID, h.Confidence, h.Evidence))
	}
	return out
}

// findDeadlock returns the deadlock whose steps are the roles, in order
// up to rotation.
func findDeadlock(r *Result, roles map[string]int64, want []string) *Deadlock {
	for _, d := range r.Deadlocks {
		if len(d.Steps) != len(want) {
			continue
		}
		for rot := range want {
			match := true
			for i, s := range d.Steps {
				if s.G.ID != roles[want[(i+rot)%len(want)]] {
					match = false
					break
				}
			}
			if match {
				return d
			}
		}
	}
	return nil
}

// funcHolder reports whether one of the holders l's waiters wait for runs
// a function whose name ends with fn (for debug=1 results, which have no
// ids).
func funcHolder(l *Lock, fn string) *Holder {
	for _, h := range l.Holders {
		for _, f := range h.G.Frames {
			if strings.HasSuffix(f.Func, fn) {
				return h
			}
		}
	}
	return nil
}

func lockAt(r *Result, siteSuffix string) *Lock {
	for _, l := range r.Locks {
		if strings.HasSuffix(l.Site.Func, siteSuffix) {
			return l
		}
	}
	return nil
}
