package lockreport

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/lockgraph"
	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// Bounds of the locks section.
const (
	maxLocks       = 10
	maxWaiterIDs   = 16
	maxLockHolders = 3
	maxLabels      = 5
)

// lockGraph reads the goroutine dump taken when the window ended: which
// locks goroutines were parked on, who likely holds each, and the
// deadlocks and chains among them. The trace's and the mutex profile's
// holders of each site are hints: a goroutine inside one of those
// functions is a likely holder when nothing better ties one to the lock.
//
// A goroutine that holds a named lock (package locks) is known exactly
// (named): a deadlock or chain that has any other goroutine hold a named
// lock is left out.
func lockGraph(d *gdump.Dump, rep *Report, named []NamedLock) *Locks {
	if d == nil {
		return nil
	}
	var hints []lockgraph.Hint
	for _, s := range rep.Sites {
		for _, h := range s.Holders {
			if h.File != "" {
				hints = append(hints, lockgraph.Hint{Site: s.Func, Holder: h.Func, Source: "the trace"})
			}
		}
	}
	if p := rep.Profiles; p != nil {
		for _, h := range p.Holders {
			hints = append(hints, lockgraph.Hint{Holder: h.Func, Source: "the mutex profile"})
		}
	}
	res := lockgraph.Analyze(d, lockgraph.Options{Hints: hints})
	out := &Locks{Source: "debug=2", Locks: []LockState{}}
	if res.Format == gdump.Aggregated {
		out.Source = "debug=1"
	}
	for _, l := range res.Locks {
		if len(out.Locks) == maxLocks {
			break
		}
		if len(l.Waiters) > 0 && ownFrames(l.Waiters[0].G.Frames) {
			continue // lockdiag's own
		}
		st := lockState(l)
		namedDumpLock(l, &st)
		out.Locks = append(out.Locks, st)
	}
	refuted := namedRefutes(named)
	for _, dl := range res.Deadlocks {
		if refuted(dl.Steps) {
			continue
		}
		out.Deadlocks = append(out.Deadlocks, LockCycle{Summary: dl.String(), Goroutines: stepIDs(dl.Steps), Sites: stepSites(dl.Steps), Confidence: dl.Confidence.String()})
	}
	for _, c := range res.Chains {
		if refuted(c.Steps) {
			continue
		}
		lc := LockCycle{Summary: c.String(), Goroutines: stepIDs(c.Steps), Sites: stepSites(c.Steps), Confidence: c.Confidence.String()}
		if n := len(c.Steps); n > 0 {
			g := c.Steps[n-1].G
			root := &LockHolder{Goroutine: g.ID, State: g.State, WaitMinutes: g.WaitMinutes, Stack: shortFrames(g.Frames, stackDepth)}
			if f, ok := firstProgramFrame(g.Frames); ok {
				root.Where = siteLabel(Frame{Func: f.Func, File: f.File, Line: f.Line})
			}
			lc.Root = root
		}
		out.Chains = append(out.Chains, lc)
	}
	return out
}

func lockState(l *lockgraph.Lock) LockState {
	st := LockState{Lock: l.String(), Kind: l.Kind.String(), Func: l.Site.Func, File: l.Site.File, Line: l.Site.Line, NoHolder: l.NoHolder}
	labels := map[string]int{}
	for _, w := range l.Waiters {
		n := max(w.G.Count, 1)
		st.Waiters += n
		if w.G.ID != 0 && len(st.WaiterIDs) < maxWaiterIDs {
			st.WaiterIDs = append(st.WaiterIDs, w.G.ID)
		}
		if len(w.G.Labels) > 0 {
			labels[labelString(w.G.Labels)] += n
		}
	}
	for k, n := range labels {
		st.Labels = append(st.Labels, LabelCount{Labels: k, Waiters: n})
	}
	slices.SortFunc(st.Labels, func(a, b LabelCount) int {
		if c := cmp.Compare(b.Waiters, a.Waiters); c != 0 {
			return c
		}
		return strings.Compare(a.Labels, b.Labels)
	})
	st.Labels = st.Labels[:min(len(st.Labels), maxLabels)]
	for i, h := range l.Holders {
		if i == maxLockHolders {
			break
		}
		lh := LockHolder{Goroutine: h.G.ID, State: h.G.State, WaitMinutes: h.G.WaitMinutes, Mode: holdMode(h.Mode),
			Confidence: h.Confidence.String(), Reason: h.Reason, Stack: shortFrames(h.G.Frames, stackDepth)}
		if h.G.ID == 0 {
			lh.Count = max(h.G.Count, 1)
		}
		if h.Frame >= 0 && h.Frame < len(h.G.Frames) {
			f := h.G.Frames[h.Frame]
			lh.Where = siteLabel(Frame{Func: f.Func, File: f.File, Line: f.Line})
		} else if f, ok := firstProgramFrame(h.G.Frames); ok {
			lh.Where = siteLabel(Frame{Func: f.Func, File: f.File, Line: f.Line})
		}
		st.Holders = append(st.Holders, lh)
	}
	return st
}

func holdMode(m lockgraph.HoldMode) string {
	switch m {
	case lockgraph.HoldsWrite:
		return "write"
	case lockgraph.HoldsRead:
		return "read"
	case lockgraph.HoldsWriterSlot:
		return "writer slot"
	}
	return "lock"
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// parseDump parses the goroutine dump taken when the window ended, or
// returns nil if there is none or it holds no goroutine.
func parseDump(dump []byte) *gdump.Dump {
	if len(dump) == 0 {
		return nil
	}
	d, _ := gdump.Parse(bytes.NewReader(dump))
	if d == nil || len(d.Goroutines) == 0 {
		return nil
	}
	return d
}

// ownFrames reports whether a stack is one of lockdiag's own goroutines.
func ownFrames(fs []gdump.Frame) bool {
	for _, f := range fs {
		if stacks.Own(f.Func) {
			return true
		}
	}
	return false
}

func stepIDs(steps []lockgraph.Step) []int64 {
	ids := make([]int64, 0, len(steps))
	for _, s := range steps {
		ids = append(ids, s.G.ID)
	}
	return ids
}

func stepSites(steps []lockgraph.Step) []Frame {
	var out []Frame
	for _, s := range steps {
		if s.Waits != nil {
			out = append(out, Frame{Func: s.Waits.Site.Func, File: s.Waits.Site.File, Line: s.Waits.Site.Line})
		}
	}
	return out
}

func framesOf(fs []gdump.Frame) []Frame {
	out := make([]Frame, len(fs))
	for i, f := range fs {
		out[i] = Frame{Func: f.Func, File: f.File, Line: f.Line}
	}
	return out
}

// shortFrames keeps up to n frames from the first outside the runtime's
// park calls (gopark and friends say nothing to the reader).
func shortFrames(fs []gdump.Frame, n int) []Frame {
	start := 0
	for start < len(fs)-1 && strings.HasPrefix(fs[start].Func, "runtime.") {
		start++
	}
	return framesOf(fs[start:min(len(fs), start+n)])
}

func firstProgramFrame(fs []gdump.Frame) (gdump.Frame, bool) {
	for _, f := range fs {
		if callSite(f.Func) {
			return f, true
		}
	}
	return gdump.Frame{}, false
}

// lockAt returns the dump's lock waited for at a call site, if any.
func (l *Locks) lockAt(fn string, line int) *LockState {
	if l == nil {
		return nil
	}
	for i := range l.Locks {
		if s := &l.Locks[i]; s.Func == fn && s.Line == line {
			return s
		}
	}
	return nil
}

// holderPhraseOf says who likely holds a lock: "; likely held by
// goroutine 9 in main.migrate (store.go:30), asleep (sleep) for 2
// minutes (high: its frame has the *Store the lock is in)", and, when the
// holder waits for another lock, where that chain ends.
func (l *Locks) holderPhrase(st *LockState) string {
	s := holderPhraseOf(st)
	if l == nil || st == nil || len(st.Holders) == 0 || st.Holders[0].Goroutine == 0 {
		return s
	}
	for _, c := range l.Chains {
		if len(c.Goroutines) > 1 && c.Goroutines[0] == st.Holders[0].Goroutine && c.Root != nil {
			s += fmt.Sprintf("; it waits in turn for a lock held, at the end of the chain, by goroutine %d in %s, %s",
				c.Root.Goroutine, c.Root.Where, c.Root.State)
		}
	}
	return s
}

func holderPhraseOf(st *LockState) string {
	if st == nil {
		return ""
	}
	if len(st.Holders) == 0 {
		if st.NoHolder != "" {
			return "; no holder found in the goroutine dump (" + st.NoHolder + ")"
		}
		return ""
	}
	h := st.Holders[0]
	who := "goroutine " + strconv.FormatInt(h.Goroutine, 10)
	if h.Goroutine == 0 {
		who = textfmt.Plural(h.Count, "goroutine", "goroutines")
	}
	s := fmt.Sprintf("; likely held by %s in %s", who, h.Where)
	if h.State != "" {
		s += ", " + h.State
		if h.WaitMinutes > 0 {
			s += fmt.Sprintf(" for %s", textfmt.Plural(h.WaitMinutes, "minute", "minutes"))
		}
	}
	return s + fmt.Sprintf(" (%s confidence: %s)", h.Confidence, h.Reason)
}

// deadlockCandidates proposes each deadlock the dump shows: nothing else
// matters as much, since it never ends by itself. A cycle inferred with
// less than high confidence leads only when a monitor saw one of its
// sites make no progress: in a busy process, a goroutine that merely
// keeps a locked object can look like its holder.
func deadlockCandidates(rep *Report) []candidate {
	if rep.Locks == nil {
		return nil
	}
	stuck := func(d LockCycle) bool {
		for _, s := range d.Sites {
			for _, p := range rep.Parked {
				if p.NoProgress > 0 && p.Func == s.Func && p.Line == s.Line {
					return true
				}
			}
		}
		return false
	}
	var cs []candidate
	for _, d := range rep.Locks.Deadlocks {
		if d.Confidence != "high" && !stuck(d) {
			continue
		}
		f := Finding{Kind: "deadlock", Summary: "Deadlock: " + d.Summary}
		f.Evidence = append(f.Evidence,
			fmt.Sprintf("%s confidence, from the goroutine dump: each goroutine's frames show the lock it waits for and the lock it holds", d.Confidence),
			"fix: take the locks in one order everywhere (or hold one at a time); the goroutines stay blocked until the process restarts")
		cs = append(cs, candidate{headline: "deadlock: " + d.Summary, finding: f, weight: deadlockWeight, current: true})
	}
	return cs
}

// deadlockWeight puts a deadlock first, whatever else the window shows.
const deadlockWeight = 1e12

// writeLocks prints the locks section.
func writeLocks(w io.Writer, l *Locks) {
	fmt.Fprintf(w, "\nLOCKS IN THE GOROUTINE DUMP (%s", l.Source)
	if l.Source == "debug=1" {
		fmt.Fprintf(w, ": stacks only, holders by function, no deadlock can be proven")
	}
	fmt.Fprintf(w, ")\n")
	for _, d := range l.Deadlocks {
		what := "DEADLOCK"
		if d.Confidence != "high" {
			what = "possible deadlock"
		}
		fmt.Fprintf(w, "  %s (%s confidence): %s\n", what, d.Confidence, textfmt.Wrap(d.Summary, 96, "    "))
	}
	for _, c := range l.Chains {
		fmt.Fprintf(w, "  chain (%s): %s\n", c.Confidence, textfmt.Wrap(c.Summary, 96, "    "))
	}
	if len(l.Locks) == 0 {
		fmt.Fprintf(w, "  no goroutine was parked on a lock\n")
	}
	for _, s := range l.Locks {
		line := fmt.Sprintf("%s: %s waiting at %s", s.Lock, textfmt.Plural(s.Waiters, "goroutine", "goroutines"),
			path.Base(s.File)+":"+strconv.Itoa(s.Line))
		fmt.Fprintf(w, "  %s\n", textfmt.Wrap(line, 96, "    "))
		for _, lc := range s.Labels {
			fmt.Fprintf(w, "      %d with labels %s\n", lc.Waiters, lc.Labels)
		}
		for _, h := range s.Holders {
			who := "goroutine " + strconv.FormatInt(h.Goroutine, 10)
			if h.Goroutine == 0 {
				who = textfmt.Plural(h.Count, "goroutine", "goroutines")
			}
			state := h.State
			if h.WaitMinutes > 0 {
				state += fmt.Sprintf(", %s", textfmt.Plural(h.WaitMinutes, "minute", "minutes"))
			}
			line := fmt.Sprintf("held by %s (%s) in %s, %s confidence: %s", who, state, h.Where, h.Confidence, h.Reason)
			fmt.Fprintf(w, "    %s\n", textfmt.Wrap(line, 94, "      "))
			writeStack(w, "      ", h.Stack)
		}
		if s.Named {
			fmt.Fprintf(w, "    a named lock: no holder is guessed, NAMED LOCKS has the exact one\n")
		}
		if len(s.Holders) == 0 && s.NoHolder != "" {
			fmt.Fprintf(w, "    %s\n", textfmt.Wrap("no holder found: "+s.NoHolder, 94, "      "))
		}
	}
}
