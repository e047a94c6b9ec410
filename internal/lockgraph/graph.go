package lockgraph

import (
	"cmp"
	"slices"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// edge: the goroutine waits for holder h of the lock it waits on.
type edge struct {
	to *gdump.Goroutine
	h  *Holder
}

// edges returns whom g waits for, best first, at confidence ≥ min.
func (a *analysis) edges(g *gdump.Goroutine, min Confidence) []edge {
	w := a.byG[g]
	if w == nil {
		return nil
	}
	l := w.ls.l
	var es []edge
	for _, hi := range l.Waiters[w.waiter].For {
		h := l.Holders[hi]
		if h.Confidence >= min {
			es = append(es, edge{h.G, h})
		}
	}
	return es
}

// deadlocks finds the cycles of the wait-for graph (edges of medium
// confidence or better): one cycle per strongly connected component, and
// self-loops.
func (a *analysis) deadlocks() []*Deadlock {
	var nodes []*gdump.Goroutine
	for _, w := range a.waits {
		nodes = append(nodes, w.g)
	}
	slices.SortFunc(nodes, func(x, y *gdump.Goroutine) int { return cmp.Compare(x.ID, y.ID) })
	var out []*Deadlock
	for _, comp := range a.sccs(nodes) {
		in := make(map[*gdump.Goroutine]bool, len(comp))
		for _, g := range comp {
			in[g] = true
		}
		start := comp[0]
		for _, g := range comp {
			if g.ID < start.ID {
				start = g
			}
		}
		if len(comp) == 1 {
			self := false
			for _, e := range a.edges(start, Medium) {
				if e.to == start {
					self = true
				}
			}
			if !self {
				continue
			}
		}
		// Walk the best edges inside the component until a goroutine
		// repeats; the cycle is the walk from its first visit.
		var path []*gdump.Goroutine
		var via []*Holder
		pos := make(map[*gdump.Goroutine]int)
		g := start
		for {
			if p, ok := pos[g]; ok {
				path, via = path[p:], via[p:]
				break
			}
			pos[g] = len(path)
			path = append(path, g)
			var next edge
			for _, e := range a.edges(g, Medium) {
				if in[e.to] {
					next = e
					break
				}
			}
			if next.to == nil {
				path = nil
				break
			}
			via = append(via, next.h)
			g = next.to
		}
		if len(path) == 0 {
			continue
		}
		d := &Deadlock{Confidence: High}
		leaked := true
		for i, g := range path {
			// path[i] waits for the lock held by path[i+1]: via[i] is
			// path[i+1]'s tie to it.
			prev := (i + len(path) - 1) % len(path)
			holder := via[prev]
			d.Steps = append(d.Steps, Step{
				G:      g,
				Holds:  a.byG[path[prev]].ls.l,
				Holder: holder,
				Waits:  a.byG[g].ls.l,
			})
			d.Confidence = min(d.Confidence, holder.Confidence)
			leaked = leaked && g.Leaked
		}
		if leaked {
			d.Confidence = High
		}
		out = append(out, d)
	}
	return out
}

// sccs returns the strongly connected components of the wait-for graph
// (Tarjan's algorithm, iterative).
func (a *analysis) sccs(nodes []*gdump.Goroutine) [][]*gdump.Goroutine {
	index := make(map[*gdump.Goroutine]int)
	low := make(map[*gdump.Goroutine]int)
	onStack := make(map[*gdump.Goroutine]bool)
	var stack []*gdump.Goroutine
	var out [][]*gdump.Goroutine
	type frame struct {
		g     *gdump.Goroutine
		edges []edge
		i     int
	}
	next := 0
	for _, root := range nodes {
		if _, seen := index[root]; seen {
			continue
		}
		call := []frame{{g: root, edges: a.edges(root, Medium)}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			top := &call[len(call)-1]
			if top.i < len(top.edges) {
				to := top.edges[top.i].to
				top.i++
				if _, seen := index[to]; !seen {
					index[to], low[to] = next, next
					next++
					stack = append(stack, to)
					onStack[to] = true
					call = append(call, frame{g: to, edges: a.edges(to, Medium)})
				} else if onStack[to] {
					low[top.g] = min(low[top.g], index[to])
				}
				continue
			}
			g := top.g
			call = call[:len(call)-1]
			if len(call) > 0 {
				parent := call[len(call)-1].g
				low[parent] = min(low[parent], low[g])
			}
			if low[g] == index[g] {
				var comp []*gdump.Goroutine
				for {
					x := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[x] = false
					comp = append(comp, x)
					if x == g {
						break
					}
				}
				out = append(out, comp)
			}
		}
	}
	return out
}

// chains follows, from each lock and each group of its waiters, the best
// holder through the locks holders wait for, to a root. Chains through a
// deadlock are left to the deadlock; a chain that is the tail of another
// is dropped.
func (a *analysis) chains(deadlocks []*Deadlock) []*Chain {
	onCycle := make(map[*gdump.Goroutine]bool)
	for _, d := range deadlocks {
		for _, s := range d.Steps {
			onCycle[s.G] = true
		}
	}
	minConf := Medium
	if a.d.Format == gdump.Aggregated {
		minConf = Low
	}
	var out []*Chain
	for _, s := range a.states {
		l := s.l
		seen := make(map[int]bool) // first holder index already followed
		for _, w := range l.Waiters {
			if len(w.For) == 0 || onCycle[w.G] {
				continue
			}
			h := l.Holders[w.For[0]]
			if h.Confidence < minConf || seen[w.For[0]] {
				continue
			}
			seen[w.For[0]] = true
			c := &Chain{Lock: l, Confidence: h.Confidence}
			visited := map[*gdump.Goroutine]bool{w.G: true}
			cur, holds := h, l
			ok := true
			for {
				if visited[cur.G] || onCycle[cur.G] {
					ok = false
					break
				}
				visited[cur.G] = true
				step := Step{G: cur.G, Holds: holds, Holder: cur, Waits: cur.Waits}
				c.Steps = append(c.Steps, step)
				c.Confidence = min(c.Confidence, cur.Confidence)
				es := a.edges(cur.G, minConf)
				if cur.Waits == nil || len(es) == 0 {
					break
				}
				holds, cur = cur.Waits, es[0].h
			}
			if ok && len(c.Steps) >= 2 {
				for _, w2 := range l.Waiters {
					if len(w2.For) > 0 && w2.For[0] == w.For[0] {
						c.Waiters = append(c.Waiters, w2.G)
					}
				}
				out = append(out, c)
			}
		}
	}
	// Drop chains that are the tail of a longer one.
	var kept []*Chain
	for _, c := range out {
		tail := false
		for _, o := range out {
			if o == c || len(o.Steps) <= len(c.Steps) {
				continue
			}
			k := len(o.Steps) - len(c.Steps)
			if o.Steps[k].G == c.Steps[0].G && o.Steps[k].Holds == c.Lock {
				tail = true
				break
			}
		}
		if !tail {
			kept = append(kept, c)
		}
	}
	return kept
}
