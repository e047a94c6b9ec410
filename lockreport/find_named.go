package lockreport

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/lockgraph"
	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// Named locks (package locks) are known exactly: their name, their holder
// by goroutine id, how long it has held them, their waiters. What the trace
// and the dump infer for other locks (one site standing for every lock
// locked there, a holder guessed from the frames) is replaced for them by
// what they recorded: a stuck named lock leads with its name, its holder's
// id and that goroutine's stack (from the dump, by id), and a lock-order
// inversion is a finding before it ever deadlocks.

// Bounds of the named-lock part of the report.
const (
	maxNamedLocks  = 50
	maxInversions  = 64
	maxNamedInSite = 3
)

// namedLocks returns the named locks for the report, with each holder's
// state and stack from the dump (by goroutine id): stuck first, then by
// waiters, then by wait.
func namedLocks(opts Options, d *gdump.Dump) []NamedLock {
	if len(opts.NamedLocks) == 0 {
		return nil
	}
	out := slices.Clone(opts.NamedLocks)
	var byID map[int64]*gdump.Goroutine
	if d != nil && d.Format == gdump.Traceback {
		want := map[int64]bool{}
		for _, nl := range out {
			if nl.Held && nl.Holder != 0 {
				want[nl.Holder] = true
			}
		}
		byID = make(map[int64]*gdump.Goroutine, len(want))
		for _, g := range d.Goroutines {
			if want[g.ID] {
				byID[g.ID] = g
			}
		}
	}
	for i := range out {
		nl := &out[i]
		nl.HolderState, nl.HolderStack = "", nil
		if g := byID[nl.Holder]; g != nil && nl.Held {
			nl.HolderState = g.State
			nl.HolderStack = shortFrames(g.Frames, maxSiteStack)
		}
	}
	slices.SortStableFunc(out, func(x, y NamedLock) int { return BusiestFirst(&x, &y) })
	return out
}

// BusiestFirst orders named locks for a report or a status: stuck ones
// first, then by waiters now, then by total wait, most first.
func BusiestFirst(a, b *NamedLock) int {
	if a.Stuck != b.Stuck {
		if a.Stuck {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.Waiters, a.Waiters); c != 0 {
		return c
	}
	return cmp.Compare(b.Wait.Sum, a.Wait.Sum)
}

// inversions returns the lock-order inversions for the report.
func inversions(opts Options) []LockInversion {
	if len(opts.Inversions) == 0 {
		return nil
	}
	return slices.Clone(opts.Inversions[:min(len(opts.Inversions), maxInversions)])
}

// namedDumpLock marks a lock of the goroutine dump whose waiters wait in a
// named lock's slow path: its holder is known exactly, so none is guessed.
func namedDumpLock(l *lockgraph.Lock, st *LockState) {
	if isNamedDumpLock(l) {
		st.Named = true
		st.Holders, st.NoHolder = nil, ""
	}
}

func isNamedDumpLock(l *lockgraph.Lock) bool {
	for _, w := range l.Waiters {
		for _, f := range w.G.Frames {
			if stacks.NamedWait(f.Func) {
				return true
			}
		}
	}
	return false
}

// namedRefutes returns a test of the deadlocks and chains the dump's
// analysis inferred: one is refuted when a step has a goroutine hold a
// named lock while that goroutine holds no named lock at all (the named
// locks' holders are exact). Without named locks, or where goroutine ids
// are unavailable, nothing is refuted.
func namedRefutes(named []NamedLock) func([]lockgraph.Step) bool {
	holders := map[int64]bool{}
	for _, nl := range named {
		if nl.Held && nl.Holder == 0 {
			return func([]lockgraph.Step) bool { return false }
		}
		if nl.Held {
			holders[nl.Holder] = true
		}
	}
	if len(named) == 0 {
		return func([]lockgraph.Step) bool { return false }
	}
	return func(steps []lockgraph.Step) bool {
		for _, s := range steps {
			if s.Holds != nil && s.G != nil && s.G.ID != 0 && !holders[s.G.ID] && isNamedDumpLock(s.Holds) {
				return true
			}
		}
		return false
	}
}

// siteNamed reports whether the waiters of a lock site waited in a named
// lock's slow path.
func siteNamed(s *siteAgg) bool {
	all := s.stacks
	if s.stack != nil {
		all = append(all[:len(all):len(all)], s.stack)
	}
	for _, si := range all {
		for _, f := range si.frames[:max(si.site, 0)] {
			if stacks.NamedWait(f.Func) {
				return true
			}
		}
	}
	return false
}

// namedWeight makes a lock-order inversion lead a report where nothing
// contends: worth a goroutine-second of waiting, less than real
// contention still going on, more than contention that ended.
const namedInversionWeight = 1

// namedCandidates proposes each stuck named lock, by its name, with its
// exact holder.
func namedCandidates(rep *Report) []candidate {
	var cs []candidate
	for i := range rep.NamedLocks {
		nl := &rep.NamedLocks[i]
		if !nl.Stuck {
			continue
		}
		h := "stuck lock: " + stuckNamedPhrase(nl)
		f := Finding{Kind: "stuck-lock", Site: nl.Name, Summary: "Stuck lock: " + stuckNamedPhrase(nl) + ".", Source: "named locks"}
		f.Evidence = append(f.Evidence, stuckNamedEvidence(rep, nl)...)
		stuckFor := max(nl.HeldFor, nl.NoProgress)
		cs = append(cs, candidate{headline: h, finding: f, weight: stuckWeight * float64(max(nl.Waiters, 1)) * stuckFor.Seconds(), current: true})
	}
	return cs
}

// lockTitle names a named lock: `the named Mutex "inventory_shard_7"`.
func lockTitle(nl *NamedLock) string {
	t := "Mutex"
	if nl.Type == "rwmutex" {
		t = "RWMutex"
	}
	return fmt.Sprintf("the named %s %q", t, nl.Name)
}

// stuckNamedPhrase says what holds a stuck named lock: `the named Mutex
// "inventory_shard_7" has been held for 3.2s by goroutine 42, now in
// main.(*store).audit (store.go:88) [sleep]; 5 goroutines wait for it`.
func stuckNamedPhrase(nl *NamedLock) string {
	var b strings.Builder
	b.WriteString(lockTitle(nl))
	waiting := textfmt.Plural(nl.Waiters, "goroutine waits", "goroutines wait")
	if !nl.Held {
		fmt.Fprintf(&b, ": %s for it with no acquisition for %s", waiting, textfmt.Dur(nl.NoProgress))
		if nl.Readers > 0 {
			fmt.Fprintf(&b, "; %s", textfmt.Plural(nl.Readers, "read hold keeps it", "read holds keep it"))
		}
		return b.String()
	}
	atLeast := ""
	if !nl.HeldForExact {
		atLeast = "at least "
	}
	fmt.Fprintf(&b, " has been held for %s%s by ", atLeast, textfmt.Dur(nl.HeldFor))
	if nl.Holder == 0 {
		b.WriteString("a goroutine whose id is unavailable on this platform")
	} else {
		b.WriteString("goroutine " + strconv.FormatInt(nl.Holder, 10))
	}
	if where := callSites(nl.HolderStack, 2); where != "" {
		fmt.Fprintf(&b, ", now in %s", where)
		if nl.HolderState != "" {
			fmt.Fprintf(&b, " [%s]", nl.HolderState)
		}
	} else if f, ok := firstCallSite(nl.AcquiredAt); ok {
		fmt.Fprintf(&b, ", which locked it in %s", funcAt(f))
	}
	fmt.Fprintf(&b, "; %s for it", waiting)
	return b.String()
}

func stuckNamedEvidence(rep *Report, nl *NamedLock) []string {
	var ev []string
	rec := fmt.Sprintf("exact, from the lock's own record (package locks): %s wait for it now", textfmt.Plural(nl.Waiters, "goroutine", "goroutines"))
	switch {
	case nl.Held && nl.HeldForExact:
		rec += fmt.Sprintf("; the current hold has lasted %s (timed)", textfmt.Dur(nl.HeldFor))
	case nl.Held:
		rec += fmt.Sprintf("; the current hold has lasted at least %s (it was not timed: this is since lockdiag first saw it)", textfmt.Dur(nl.HeldFor))
	}
	if nl.NoProgress > 0 {
		rec += fmt.Sprintf("; no goroutine acquired it for %s", textfmt.Dur(nl.NoProgress))
	}
	ev = append(ev, rec)
	if len(nl.HolderStack) > 0 {
		st := ""
		if nl.HolderState != "" {
			st = " [" + nl.HolderState + "]"
		}
		ev = append(ev, fmt.Sprintf("goroutine %d's stack now (the goroutine dump)%s: %s", nl.Holder, st, stackLine(nl.HolderStack)))
	}
	if len(nl.AcquiredAt) > 0 {
		ev = append(ev, "where it acquired the lock (sampled by the lock): "+stackLine(nl.AcquiredAt))
	}
	if nl.Held && len(nl.HolderStack) == 0 && len(nl.AcquiredAt) == 0 && nl.Holder != 0 {
		ev = append(ev, fmt.Sprintf("neither the goroutine dump nor the lock has goroutine %d's stack (the dump was not taken in full, or the goroutine exited holding the lock): look for it by its id in a later dump", nl.Holder))
	}
	if strings.HasPrefix(nl.HolderState, "sync.") {
		ev = append(ev, "the holder is itself parked on a lock: the chain goes on in LOCKS IN THE GOROUTINE DUMP")
	}
	for _, inv := range rep.Inversions {
		if inv.A == nl.Name || inv.B == nl.Name {
			ev = append(ev, fmt.Sprintf("the lock-order check found %q and %q taken in both orders: this may be that deadlock", inv.A, inv.B))
		}
	}
	return ev
}

// inversionCandidates proposes each lock-order inversion as a potential
// deadlock.
func inversionCandidates(rep *Report) []candidate {
	var cs []candidate
	for _, inv := range rep.Inversions {
		h := "potential deadlock: " + inversionPhrase(inv)
		f := Finding{Kind: "lock-order-inversion", Site: inv.A + ", " + inv.B, Summary: "Potential deadlock: " + inversionPhrase(inv) + ".", Source: "named locks"}
		f.Evidence = append(f.Evidence,
			fmt.Sprintf("%s then %s, goroutine %d: %s", inv.A, inv.B, inv.GoroutineAB, stackLine(inv.StackAB)),
			fmt.Sprintf("%s then %s, goroutine %d, at %s: %s", inv.B, inv.A, inv.GoroutineBA, inv.Time.Format("15:04:05.000"), stackLine(inv.StackBA)),
			"found by package locks' lock-order check when the second order was first taken, before it waited: "+
				"if the two run at the same time, each can hold one lock and wait forever for the other",
			"fix: take the two locks in one order everywhere (or hold one at a time)")
		cs = append(cs, candidate{headline: h, finding: f, weight: namedInversionWeight, current: true})
	}
	return cs
}

// inversionPhrase: `lock order inversion between "a" and "b": goroutine 7
// locked b while holding a in main.transfer (bank.go:30), goroutine 9 locked
// a while holding b in main.audit (bank.go:55)`.
func inversionPhrase(inv LockInversion) string {
	at := func(fs []Frame) string {
		if f, ok := firstCallSite(fs); ok {
			return " in " + funcAt(f)
		}
		return ""
	}
	return fmt.Sprintf("lock order inversion between %q and %q: goroutine %d locked %s while holding %s%s, goroutine %d locked %s while holding %s%s",
		inv.A, inv.B, inv.GoroutineAB, inv.B, inv.A, at(inv.StackAB), inv.GoroutineBA, inv.A, inv.B, at(inv.StackBA))
}

// namedSitePhrase adds to the headline of a lock site whose waiters waited
// for named locks which of them took the wait, when the report has one
// such site (the trace does not say which lock a wait was for; the locks'
// own counts are since they were named).
func namedSitePhrase(rep *Report, s Site) string {
	if !s.Named || len(rep.NamedLocks) == 0 {
		return ""
	}
	n := 0
	for _, x := range rep.Sites {
		if x.Named && x.Total > 0 {
			n++
		}
	}
	if n != 1 {
		return "; named locks (their own counts tell them apart: see NAMED LOCKS)"
	}
	ranked := slices.Clone(rep.NamedLocks)
	slices.SortStableFunc(ranked, func(x, y NamedLock) int { return cmp.Compare(y.Wait.Sum, x.Wait.Sum) })
	var total time.Duration
	for _, nl := range ranked {
		total += nl.Wait.Sum
	}
	if total <= 0 {
		return ""
	}
	var parts []string
	for _, nl := range ranked[:min(len(ranked), maxNamedInSite)] {
		if nl.Wait.Sum <= 0 || len(parts) > 0 && float64(nl.Wait.Sum) < 0.05*float64(total) {
			break
		}
		parts = append(parts, fmt.Sprintf("%q %s (p99 wait %s, p99 hold %s)", nl.Name, textfmt.Pct(float64(nl.Wait.Sum)/float64(total)),
			textfmt.Dur(nl.Wait.P99), textfmt.Dur(nl.Hold.P99)))
	}
	return "; by named lock, of their wait since named: " + strings.Join(parts, ", ")
}

// siteCaveat is the caveat on lock identity in the trace, unless every
// contended lock site is of named locks (or there is none, and the report
// speaks of named locks).
func siteCaveat(rep *Report) string {
	named, other := 0, 0
	for _, s := range rep.Sites {
		if s.Named {
			named++
		} else {
			other++
		}
	}
	const c = "The trace has no lock addresses: different locks taken at the same call site count as one site, " +
		"and one lock taken at two call sites shows as two."
	switch {
	case other == 0 && (named > 0 || len(rep.NamedLocks) > 0):
		return ""
	case named > 0:
		return c + " Named locks (package locks) are the exception: NAMED LOCKS tells them apart."
	}
	return c
}

// namedCaveat says what the named locks' numbers are.
func namedCaveat(rep *Report) string {
	if len(rep.NamedLocks) == 0 {
		return ""
	}
	return "Named locks' counts and histograms run from when each lock was named, not over the window; hold durations are " +
		"sampled (1 in 256 acquisitions, and contended ones), so hold counts and sums are estimates. Their holders, hold times " +
		"and waiters are exact, as recorded by the locks."
}

// callSites names the first n frames of fs that can be a program's call
// site: "main.slowCall (main.go:127) < main.(*inventory).audit
// (main.go:123)".
func callSites(fs []Frame, n int) string {
	var parts []string
	for _, f := range fs {
		if len(parts) == n {
			break
		}
		if callSite(f.Func) {
			parts = append(parts, funcAt(f))
		}
	}
	return strings.Join(parts, " < ")
}

// firstCallSite returns the first frame of fs that can be a program's call
// site.
func firstCallSite(fs []Frame) (Frame, bool) {
	for _, f := range fs {
		if callSite(f.Func) {
			return f, true
		}
	}
	return Frame{}, false
}

// writeNamed prints the named locks and the lock-order inversions.
func writeNamed(w io.Writer, r *Report) {
	if len(r.NamedLocks) > 0 {
		fmt.Fprintf(w, "\nNAMED LOCKS (package locks: exact identity, holder and hold time; counts since each was named)\n")
		fmt.Fprintf(w, "  %-22s %9s  %-16s %15s %15s %8s %6s\n", "LOCK", "WAITING", "HELD", "WAIT p50/p99", "HOLD p50/p99", "ACQUIRED", "WAITED")
		for i := range r.NamedLocks {
			if i == maxNamedLocks {
				fmt.Fprintf(w, "  ... %d more in report.json\n", len(r.NamedLocks)-i)
				break
			}
			nl := &r.NamedLocks[i]
			name := nl.Name
			if nl.Type == "rwmutex" {
				name += " (rw)"
			}
			waiting := strconv.Itoa(nl.Waiters)
			if nl.Stuck {
				waiting += " STUCK"
			}
			fmt.Fprintf(w, "  %-22s %9s  %-16s %15s %15s %8s %6s\n", textfmt.Clip(name, 22), waiting, textfmt.Clip(nl.HeldText(), 16),
				textfmt.Dur(nl.Wait.P50)+"/"+textfmt.Dur(nl.Wait.P99), textfmt.Dur(nl.Hold.P50)+"/"+textfmt.Dur(nl.Hold.P99),
				count(nl.Acquisitions), nl.ContendedText())
		}
		for i := range r.NamedLocks {
			nl := &r.NamedLocks[i]
			if !nl.Stuck && (nl.Waiters == 0 || !nl.Held) {
				continue
			}
			what := "held"
			if nl.Stuck {
				what = "STUCK"
			}
			fmt.Fprintf(w, "\n  %s %s\n", what, textfmt.Wrap(stuckNamedPhrase(nl), 96, "    "))
			if len(nl.HolderStack) > 0 {
				writeStack(w, fmt.Sprintf("    goroutine %d now: ", nl.Holder), nl.HolderStack)
			}
			if len(nl.AcquiredAt) > 0 {
				writeStack(w, "    acquired at: ", nl.AcquiredAt)
			}
		}
	}
	if len(r.Inversions) > 0 {
		fmt.Fprintf(w, "\nLOCK ORDER INVERSIONS (package locks' lock-order check: potential deadlocks)\n")
		for _, inv := range r.Inversions {
			fmt.Fprintf(w, "  %s\n", textfmt.Wrap(inversionPhrase(inv), 96, "    "))
			writeStack(w, fmt.Sprintf("    %s then %s: ", inv.A, inv.B), inv.StackAB)
			writeStack(w, fmt.Sprintf("    %s then %s: ", inv.B, inv.A), inv.StackBA)
		}
	}
}

// HeldText says how the lock is held, for a table cell: "3.2s by g42",
// "≥1.5s by g42" (the hold was not timed), "just taken", "4 readers" or
// "-".
func (nl *NamedLock) HeldText() string {
	switch {
	case nl.Held:
		s := textfmt.Dur(nl.HeldFor)
		switch {
		case !nl.HeldForExact && nl.HeldFor < time.Millisecond:
			s = "just taken" // first seen at this read
		case !nl.HeldForExact:
			s = "≥" + s
		}
		if nl.Holder != 0 {
			s += " by g" + strconv.FormatInt(nl.Holder, 10)
		}
		return s
	case nl.Readers > 0:
		return textfmt.Plural(nl.Readers, "reader", "readers")
	}
	return "-"
}

// ContendedText is the share of acquisitions that waited, or "-".
func (nl *NamedLock) ContendedText() string {
	if nl.Acquisitions == 0 {
		return "-"
	}
	return textfmt.Pct(float64(nl.Contended) / float64(nl.Acquisitions))
}

// count prints a count in at most 8 columns: 1234567, 12M.
func count(n uint64) string {
	switch {
	case n >= 10_000_000_000:
		return strconv.FormatUint(n/1_000_000_000, 10) + "G"
	case n >= 10_000_000:
		return strconv.FormatUint(n/1_000_000, 10) + "M"
	}
	return strconv.FormatUint(n, 10)
}
