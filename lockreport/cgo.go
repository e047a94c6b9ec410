package lockreport

import (
	"cmp"
	"slices"
	"time"

	"golang.org/x/exp/trace"
)

// cgoAgg sums the cgo calls made at one stack: in the trace a cgo call is
// a system call (GoSyscall state) whose stack has the cgo stub.
type cgoAgg struct {
	stack      *stackInfo
	calls      int
	total, max int64
	ongoing    int
	gs         map[trace.GoID]struct{}
}

// cgoTable holds the cgo call sites.
type cgoTable struct {
	byStack map[*stackInfo]*cgoAgg
	list    []*cgoAgg
}

func (t *cgoTable) add(si *stackInfo, g trace.GoID, d int64, ongoing bool) {
	if t.byStack == nil {
		t.byStack = map[*stackInfo]*cgoAgg{}
	}
	c := t.byStack[si]
	if c == nil {
		c = &cgoAgg{stack: si, gs: map[trace.GoID]struct{}{}}
		t.byStack[si] = c
		t.list = append(t.list, c)
	}
	c.calls++
	c.total += d
	c.max = max(c.max, d)
	c.gs[g] = struct{}{}
	if ongoing {
		c.ongoing++
	}
}

// cgoSites groups the cgo calls by the program's function that made them
// and the cgo stub, most time first.
func (a *analyzer) cgoSites() []CgoSite {
	type key struct{ caller, stub string }
	by := map[key]*CgoSite{}
	gs := map[key]map[trace.GoID]struct{}{}
	var out []*CgoSite
	for _, c := range a.cgo.list {
		caller, stub := cgoCaller(a.prog, c.stack.frames)
		k := key{caller, stub}
		s := by[k]
		if s == nil {
			s = &CgoSite{Func: caller, Stub: stub, Stack: c.stack.short(stackDepth)}
			by[k] = s
			gs[k] = map[trace.GoID]struct{}{}
			out = append(out, s)
		}
		s.Calls += c.calls
		s.Total += time.Duration(c.total)
		s.Max = max(s.Max, time.Duration(c.max))
		s.Ongoing += c.ongoing
		for g := range c.gs {
			gs[k][g] = struct{}{}
		}
	}
	res := make([]CgoSite, 0, len(out))
	for _, s := range out {
		s.Goroutines = len(gs[key{s.Func, s.Stub}])
		res = append(res, *s)
	}
	slices.SortFunc(res, func(x, y CgoSite) int { return cmp.Compare(y.Total, x.Total) })
	return res
}
