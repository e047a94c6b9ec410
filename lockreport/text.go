package lockreport

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// WriteText writes r for a terminal of 80 to 100 columns: the headline and
// findings in plain words first, then the evidence (sites, holders,
// profiles, caveats, the window).
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("%s\n", textfmt.Wrap(r.Headline, 96, ""))
	if r.Partial {
		p("\nPARTIAL: %s\n", textfmt.Wrap(r.PartialReason, 96, "  "))
	}
	if r.TraceError != "" {
		p("\nThe trace could not be read: %s\n", textfmt.Wrap(r.TraceError, 96, "  "))
	}
	if r.TraceUnavailable != "" {
		p("\nNo trace: %s\n", textfmt.Wrap(r.TraceUnavailable, 96, "  "))
	}

	if len(r.Findings) > 0 {
		p("\nFINDINGS\n")
		for i, f := range r.Findings {
			p("%2d. %s\n", i+1, textfmt.Wrap(f.Summary, 96, "    "))
			for _, e := range f.Evidence {
				p("    - %s\n", textfmt.Wrap(e, 96, "      "))
			}
		}
	} else if r.Window != nil {
		p("\nNo findings.\n")
	}

	if len(r.Sites) > 0 {
		p("\nLOCK SITES (from the trace: %d of %d, by total wait; %s in %s)\n", len(r.Sites), r.SitesTotal, textfmt.Dur(r.LockWait),
			textfmt.Plural(r.LockWaits, "wait", "waits"))
		writeSiteTable(bw, r.Sites, "top holder")
		for i, s := range r.Sites {
			// Details for the sites that matter: the first five, and of
			// those only the ones with at least 1% of the wait.
			if i == 5 || (i > 0 && s.Share < 0.01) {
				break
			}
			writeSiteDetail(bw, i+1, s, r.Profiles.mutexScale())
		}
	}
	if len(r.SyncSites) > 0 {
		p("\nOTHER SYNCHRONIZATION (WaitGroup, Cond, channels, select; not lock contention)\n")
		writeSiteTable(bw, r.SyncSites, "woken mostly by")
	}
	if len(r.CgoCalls) > 0 {
		p("\nCGO CALLS (from the trace; a lock taken in C is waited for inside them)\n")
		for i, c := range r.CgoCalls {
			if i == 5 {
				break
			}
			line := fmt.Sprintf("%8s in %s by %s, max %s, %d still going at the end: %s (%s)", textfmt.Dur(c.Total),
				textfmt.Plural(c.Calls, "call", "calls"), textfmt.Plural(c.Goroutines, "goroutine", "goroutines"), textfmt.Dur(c.Max),
				c.Ongoing, c.Func, c.Stub)
			p("  %s\n", textfmt.Wrap(line, 98, "      "))
		}
	}
	if len(r.OtherWaits) > 0 {
		var parts []string
		for _, o := range r.OtherWaits {
			parts = append(parts, fmt.Sprintf("%s %s%s (%s)", o.Reason, atLeastWord(o.AtLeast > 0), textfmt.Dur(o.Total), textfmt.Plural(o.Waits, "wait", "waits")))
		}
		p("\n%s\n", textfmt.Wrap("OTHER WAITS (not locks): "+strings.Join(parts, ", "), 98, "  "))
	}
	if len(r.Waits) > 0 {
		p("\nLONGEST WAITS\n")
		for i, wt := range r.Waits {
			if i == 5 {
				break
			}
			line := fmt.Sprintf("g%d %s %s%s at %s, from +%s, %s", wt.Goroutine, wt.Kind, atLeastWord(wt.AtLeast), textfmt.Dur(wt.Duration),
				wt.Site, textfmt.Dur(wt.Start), wokenBy(wt))
			p("  %s\n", textfmt.Wrap(line, 98, "      "))
		}
	}
	writeNamed(bw, r)
	writeProfiles(bw, r.Profiles)

	if len(r.Caveats) > 0 {
		p("\nCAVEATS\n")
		for _, c := range r.Caveats {
			p("  - %s\n", textfmt.Wrap(c, 96, "    "))
		}
	}
	if wd := r.Window; wd != nil {
		p("\nWINDOW ")
		if !wd.Start.IsZero() {
			p("%s to %s, ", wd.Start.Format("2006-01-02 15:04:05.000"), wd.End.Format("15:04:05.000 MST"))
		} else {
			p("trace clock %d to %d ns, ", wd.StartNs, wd.EndNs)
		}
		p("%s, %s, %d events, %s", textfmt.Dur(wd.Duration), textfmt.Bytes(wd.Bytes), wd.Events, textfmt.Plural(wd.Generations, "generation", "generations"))
		if r.Partial {
			p(" (partial)")
		}
		p("\n")
	}
	if r.Parked != nil {
		writeParked(bw, r.Parked)
	}
	if r.Locks != nil {
		writeLocks(bw, r.Locks)
	}
	if r.OSThreads != nil {
		writeOSThreads(bw, r.OSThreads)
	}
	if len(r.Threads) > 0 {
		p("\nTHREADS at the window's end (last goroutine on each)\n")
		for i, t := range r.Threads {
			if i == 16 {
				p("  ... %d more in report.json\n", len(r.Threads)-16)
				break
			}
			top := ""
			if len(t.Stack) > 0 {
				top = stacks.Short(t.Stack[0].Func)
				if f, ok := userFrame(t.Stack); ok && f != t.Stack[0] {
					top += " < " + funcAt(f)
				}
			}
			p("%s\n", textfmt.Clip(fmt.Sprintf("  tid %-8d g%-6d %-22s %s", t.Thread, t.Goroutine, t.State, top), 100))
		}
	}
	return bw.Flush()
}

// writeSiteTable prints one row per site, and under it the top holder
// (or waker) with its share; GS is the number of distinct goroutines.
func writeSiteTable(w io.Writer, sites []Site, holderTitle string) {
	fmt.Fprintf(w, "  #  %-14s %-32s %6s %4s %8s %8s %8s\n", "KIND", "SITE", "WAITS", "GS", "TOTAL", "MAX", "P99")
	for i, s := range sites {
		atl := ""
		if s.AtLeast > 0 {
			atl = "≥"
		}
		fmt.Fprintf(w, "%3d  %-14s %-32s %6d %4d %8s %8s %8s\n", i+1, textfmt.Clip(s.Kind, 14), textfmt.Clip(siteOf(s), 32), s.Waits, s.Waiters,
			atl+textfmt.Dur(s.Total), textfmt.Dur(s.Max), textfmt.Dur(s.P99))
		if s.Caller != "" && s.Caller != s.Func {
			fmt.Fprintf(w, "       called from %s\n", textfmt.Clip(name(s.Caller), 80))
		}
		if s.Named {
			fmt.Fprintf(w, "       named locks: NAMED LOCKS tells them apart\n")
		}
		if len(s.Holders) > 0 {
			h := s.Holders[0]
			fmt.Fprintf(w, "       %s: %s, %s\n", holderTitle, textfmt.Clip(holderAt(h), 70), textfmt.Pct(h.Share))
		}
	}
}

// writeSiteDetail prints a site's details; ms is what the mutex
// profile's counts stand on.
func writeSiteDetail(w io.Writer, n int, s Site, ms mutexScale) {
	head := fmt.Sprintf("[%d] %s at %s: %s by %s, total %s, p50 %s, p99 %s, max %s", n, s.Kind, siteOf(s),
		textfmt.Plural(s.Waits, "wait", "waits"), textfmt.Plural(s.Waiters, "goroutine", "goroutines"), textfmt.Dur(s.Total), textfmt.Dur(s.P50), textfmt.Dur(s.P99), textfmt.Dur(s.Max))
	fmt.Fprintf(w, "\n  %s\n", textfmt.Wrap(head, 98, "      "))
	var about []string
	if s.Module != "" {
		about = append(about, "module "+s.Module)
	}
	if len(s.Via) > 0 {
		about = append(about, "through "+strings.Join(s.Via, " < "))
	}
	if s.Caller != "" && s.Caller != s.Func {
		about = append(about, "called from "+name(s.Caller))
	}
	if len(about) > 0 {
		fmt.Fprintf(w, "      %s\n", textfmt.Wrap(strings.Join(about, "; "), 98, "      "))
	}
	for _, e := range s.Entries {
		fmt.Fprintf(w, "      %s\n", textfmt.Clip(fmt.Sprintf("also entered at %s: %s, %s", siteLabel(Frame{Func: e.Func, File: e.File, Line: e.Line}),
			textfmt.Plural(e.Waits, "wait", "waits"), textfmt.Dur(e.Total)), 96))
	}
	when := fmt.Sprintf("when: from +%s to +%s; waits begun per second: %s", textfmt.Dur(s.First), textfmt.Dur(s.Last), intsLine(s.PerSecond))
	if s.WaitingAtEnd > 0 {
		when += fmt.Sprintf("; %d still waiting when the window ended", s.WaitingAtEnd)
	}
	if s.Contended > 0 {
		when += fmt.Sprintf("; someone waited %s of the window, and the holds seen from their start (a lock taken after a wait) cover %s",
			textfmt.Pct(s.Contended), textfmt.Pct(s.Held))
		var inside time.Duration
		for _, h := range s.Holders {
			if bi := h.BlockedInside; bi != nil {
				inside += bi.Blocked
			}
		}
		if inside > 0 {
			// The holds taken on the fast path start unseen; the time
			// their holders blocked inside them is seen, and can be far
			// more than the holds seen whole.
			when += fmt.Sprintf("; holders blocked %s inside their critical sections (a lock taken without a wait is seen only from such moments)", textfmt.Dur(inside))
		}
	}
	fmt.Fprintf(w, "      %s\n", textfmt.Wrap(when, 98, "        "))
	if bp := s.BlockProfile; bp != nil {
		line := fmt.Sprintf("block profile: %s in %d contentions", textfmt.Dur(bp.Delay), bp.Count)
		if bp.Note != "" {
			line += " (" + bp.Note + ")"
		}
		fmt.Fprintf(w, "      %s\n", textfmt.Wrap(line, 98, "        "))
	}
	writeStack(w, "      waiter: ", s.Stack)
	for _, h := range s.Holders {
		who := holderAt(h)
		if h.Op != "" {
			who = h.Op + " in " + who
		}
		fmt.Fprintf(w, "%s\n", textfmt.Clip(fmt.Sprintf("      %6s %8s  %s", textfmt.Pct(h.Share), textfmt.Dur(h.Wait), who), 100))
		if h.File != "" {
			fmt.Fprintf(w, "               %s by %s\n", textfmt.Plural(h.Wakeups, "wake-up", "wake-ups"), textfmt.Plural(h.Goroutines, "goroutine", "goroutines"))
		}
		if len(h.Via) > 0 || h.Caller != "" && h.Caller != h.Func && h.Caller != s.Caller {
			var about []string
			if len(h.Via) > 0 {
				about = append(about, "through "+strings.Join(h.Via, " < "))
			}
			if h.Caller != "" && h.Caller != h.Func {
				about = append(about, "called from "+name(h.Caller))
			}
			fmt.Fprintf(w, "               %s\n", textfmt.Wrap(strings.Join(about, "; "), 98, "                 "))
		}
		writeStack(w, "               ", h.Stack)
		if ho := h.Holds; ho != nil {
			line := fmt.Sprintf("holds seen: %d, median %s, max %s; running %s, waiting for a CPU %s, in system or cgo calls %s, blocked %s",
				ho.Count, textfmt.Dur(ho.P50), textfmt.Dur(ho.Max), textfmt.Pct(ho.Running), textfmt.Pct(ho.Runnable),
				textfmt.Pct(ho.Syscall), textfmt.Pct(ho.Blocked))
			if ho.In != "" {
				line += fmt.Sprintf("; preempted in %s (%s)", ho.In, textfmt.Plural(ho.Samples, "time", "times"))
			}
			fmt.Fprintf(w, "               %s\n", textfmt.Wrap(line, 98, "                 "))
		}
		if bi := h.BlockedInside; bi != nil {
			line := fmt.Sprintf("blocked inside: %s, in %s, %s in all:", blockedPhrase(bi),
				textfmt.Plural(bi.Times, "critical section", "critical sections"), textfmt.Dur(bi.Blocked))
			fmt.Fprintf(w, "               %s\n", textfmt.Wrap(line, 98, "                 "))
			writeStack(w, "                 ", bi.Stack)
		}
		if m := h.MutexProfile; m != nil {
			line := fmt.Sprintf("mutex profile: %s in %s at this Unlock", textfmt.Dur(m.Delay), ms.count(m.Count))
			if m.Note != "" {
				line += " (" + m.Note + ")"
			}
			fmt.Fprintf(w, "               %s\n", textfmt.Wrap(line, 98, "                 "))
		}
	}
}

// intsLine is "1671 1587 1610".
func intsLine(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, " ")
}

func writeStack(w io.Writer, prefix string, fs []Frame) {
	for i, f := range fs {
		if i == maxSiteStack {
			break
		}
		p := prefix
		if i > 0 {
			p = strings.Repeat(" ", len([]rune(prefix)))
		}
		fmt.Fprintf(w, "%s\n", textfmt.Clip(fmt.Sprintf("%s%s %s:%d", p, stacks.Short(f.Func), path.Base(f.File), f.Line), 100))
	}
}

func writeProfiles(w io.Writer, ps *ProfileSection) {
	if ps == nil {
		return
	}
	mf, br := rateStr(ps.MutexFraction, false), rateStr(ps.BlockRate, true)
	ms := ps.mutexScale()
	if ms.mixed() {
		mf = ms.say(func(f int) string { return rateStr(f, false) }) + " (it changed within the window)"
	}
	// A profile given without its rate (a file from elsewhere) is on, at
	// a rate the report does not know.
	if ps.MutexFraction <= 0 && (len(ps.Holders) > 0 || len(ps.RuntimeLocks) > 0) {
		mf = "unknown"
	}
	if ps.BlockRate <= 0 && len(ps.Waiters) > 0 {
		br = "unknown"
	}
	fmt.Fprintf(w, "\nPROFILES (mutex fraction %s, block rate %s)\n", mf, br)
	// inAll is the list's total, "12.9s in all".
	list := func(title string, sites []ProfileSite, inAll string) {
		if len(sites) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s\n", textfmt.Wrap(fmt.Sprintf("%s, %s:", title, inAll), 98, "    "))
		for i, s := range sites {
			if i == 5 {
				break
			}
			in := ""
			if s.InTrace {
				in = "  (in trace)"
			}
			line := fmt.Sprintf("    %6s %8s %7d  %-15s %s%s", textfmt.Pct(s.Share), textfmt.Dur(s.Delay), s.Count, s.Op,
				funcAt(Frame{Func: s.Func, File: s.File, Line: s.Line}), in)
			fmt.Fprintf(w, "%s\n", textfmt.Clip(line, 100))
		}
	}
	list("Holders: time others waited, charged to the Unlock (mutex profile)", ps.Holders, textfmt.Dur(ps.MutexTotal)+" in all")
	list("Waiters: where goroutines waited (block profile)", ps.Waiters, textfmt.Dur(ps.BlockTotal)+" in all")
	// The runtime's own locks are a part of the mutex profile: their own
	// total (the rows' shares are of it), then the whole profile's.
	list("Runtime-internal locks (mutex profile)", ps.RuntimeLocks,
		fmt.Sprintf("%s in all, of the profile's %s", textfmt.Dur(ps.runtimeTotal()), textfmt.Dur(ps.MutexTotal)))
	// The rows' counts are the profiles' scaled estimates: say what they
	// stand on.
	switch {
	case len(ps.Holders) == 0 && len(ps.RuntimeLocks) == 0:
	case ms.mixed():
		fmt.Fprintf(w, "  %s\n", textfmt.Wrap(fmt.Sprintf("Mutex profile counts are estimates: the profile sampled %s contention "+
			"within the window, and scales each sample by the fraction in force when it was recorded.", ms), 96, "  "))
	case ps.MutexFraction > 1:
		fmt.Fprintf(w, "  %s\n", textfmt.Wrap(fmt.Sprintf("Mutex profile counts are samples ×%d (it samples 1 contention in %d).",
			ps.MutexFraction, ps.MutexFraction), 96, "  "))
	}
	if ps.BlockRate > 1 && len(ps.Waiters) > 0 {
		fmt.Fprintf(w, "  %s\n", textfmt.Wrap(fmt.Sprintf("The block profile's counts are estimates: waits shorter than %s are sampled and scaled up.",
			textfmt.Dur(time.Duration(ps.BlockRate))), 96, "  "))
	}
	for _, m := range ps.Missing {
		fmt.Fprintf(w, "  - %s\n", textfmt.Wrap(m, 96, "    "))
	}
}

func rateStr(v int, ns bool) string {
	switch {
	case v <= 0:
		return "off"
	case ns:
		return textfmt.Dur(time.Duration(v))
	}
	return "1/" + strconv.Itoa(v)
}
