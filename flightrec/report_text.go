package flightrec

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// WriteText writes r for a terminal of 80 to 100 columns: the headline and
// findings in plain words first, then the evidence (sites, holders,
// profiles, caveats, the window).
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("%s\n", wrap(r.Headline, 96, ""))
	if r.Partial {
		p("\nPARTIAL: %s\n", wrap(r.PartialReason, 96, "  "))
	}
	if r.TraceError != "" {
		p("\nThe trace could not be read: %s\n", wrap(r.TraceError, 96, "  "))
	}
	if r.TraceUnavailable != "" {
		p("\nNo trace: %s\n", wrap(r.TraceUnavailable, 96, "  "))
	}

	if len(r.Findings) > 0 {
		p("\nFINDINGS\n")
		for i, f := range r.Findings {
			p("%2d. %s\n", i+1, wrap(f.Summary, 96, "    "))
			for _, e := range f.Evidence {
				p("    - %s\n", wrap(e, 96, "      "))
			}
		}
	} else if r.Window != nil {
		p("\nNo findings.\n")
	}

	if len(r.Sites) > 0 {
		p("\nLOCK SITES (%d of %d, by total wait; %s in %s)\n", len(r.Sites), r.SitesTotal, fmtDur(r.LockWait),
			plural(r.LockWaits, "wait", "waits"))
		writeSiteTable(bw, r.Sites, "top holder")
		for i, s := range r.Sites {
			// Details for the sites that matter: the first five, and of
			// those only the ones with at least 1% of the wait.
			if i == 5 || (i > 0 && s.Share < 0.01) {
				break
			}
			writeSiteDetail(bw, i+1, s)
		}
	}
	if len(r.SyncSites) > 0 {
		p("\nOTHER SYNCHRONIZATION (WaitGroup, Cond, channels, select; not lock contention)\n")
		writeSiteTable(bw, r.SyncSites, "woken mostly by")
	}
	if len(r.OtherWaits) > 0 {
		var parts []string
		for _, o := range r.OtherWaits {
			parts = append(parts, fmt.Sprintf("%s %s%s (%s)", o.Reason, atLeastWord(o.AtLeast > 0), fmtDur(o.Total), plural(o.Waits, "wait", "waits")))
		}
		p("\n%s\n", wrap("OTHER WAITS (not locks): "+strings.Join(parts, ", "), 98, "  "))
	}
	if len(r.Waits) > 0 {
		p("\nLONGEST WAITS\n")
		for i, wt := range r.Waits {
			if i == 5 {
				break
			}
			line := fmt.Sprintf("g%d %s %s%s at %s, from +%s, %s", wt.Goroutine, wt.Kind, atLeastWord(wt.AtLeast), fmtDur(wt.Duration),
				wt.Site, fmtDur(wt.Start), wokenBy(wt))
			p("  %s\n", wrap(line, 98, "      "))
		}
	}
	writeProfiles(bw, r.Profiles)

	if len(r.Caveats) > 0 {
		p("\nCAVEATS\n")
		for _, c := range r.Caveats {
			p("  - %s\n", wrap(c, 96, "    "))
		}
	}
	if wd := r.Window; wd != nil {
		p("\nWINDOW ")
		if !wd.Start.IsZero() {
			p("%s to %s, ", wd.Start.Format("2006-01-02 15:04:05.000"), wd.End.Format("15:04:05.000 MST"))
		} else {
			p("trace clock %d to %d ns, ", wd.StartNs, wd.EndNs)
		}
		p("%s, %s, %d events, %s", fmtDur(wd.Duration), fmtBytes(wd.Bytes), wd.Events, plural(wd.Generations, "generation", "generations"))
		if r.Partial {
			p(" (partial)")
		}
		p("\n")
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
				top = shortFunc(t.Stack[0].Func)
				if f, ok := userFrame(t.Stack); ok && f != t.Stack[0] {
					top += " < " + funcAt(f)
				}
			}
			p("%s\n", clip(fmt.Sprintf("  tid %-8d g%-6d %-22s %s", t.Thread, t.Goroutine, t.State, top), 100))
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
		fmt.Fprintf(w, "%3d  %-14s %-32s %6d %4d %8s %8s %8s\n", i+1, clip(s.Kind, 14), clip(siteOf(s), 32), s.Waits, s.Waiters,
			atl+fmtDur(s.Total), fmtDur(s.Max), fmtDur(s.P99))
		if len(s.Holders) > 0 {
			h := s.Holders[0]
			fmt.Fprintf(w, "       %s: %s, %s\n", holderTitle, clip(holderAt(h), 70), pct(h.Share))
		}
	}
}

func writeSiteDetail(w io.Writer, n int, s Site) {
	head := fmt.Sprintf("[%d] %s at %s: %s by %s, total %s, p50 %s, p99 %s, max %s", n, s.Kind, siteOf(s),
		plural(s.Waits, "wait", "waits"), plural(s.Waiters, "goroutine", "goroutines"), fmtDur(s.Total), fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.Max))
	fmt.Fprintf(w, "\n  %s\n", wrap(head, 98, "      "))
	if s.BlockProfile != nil {
		fmt.Fprintf(w, "      block profile: %s in %d contentions\n", fmtDur(s.BlockProfile.Delay), s.BlockProfile.Count)
	}
	writeStack(w, "      waiter: ", s.Stack)
	for _, h := range s.Holders {
		who := holderAt(h)
		if h.Op != "" {
			who = h.Op + " in " + who
		}
		fmt.Fprintf(w, "%s\n", clip(fmt.Sprintf("      %6s %8s  %s", pct(h.Share), fmtDur(h.Wait), who), 100))
		if h.File != "" {
			fmt.Fprintf(w, "               %s by %s\n", plural(h.Wakeups, "wake-up", "wake-ups"), plural(h.Goroutines, "goroutine", "goroutines"))
		}
		writeStack(w, "               ", h.Stack)
		if bi := h.BlockedInside; bi != nil {
			line := fmt.Sprintf("blocked inside: %s, in %s, %s in all:", blockedPhrase(bi),
				plural(bi.Times, "critical section", "critical sections"), fmtDur(bi.Blocked))
			fmt.Fprintf(w, "               %s\n", wrap(line, 98, "                 "))
			writeStack(w, "                 ", bi.Stack)
		}
		if m := h.MutexProfile; m != nil {
			fmt.Fprintf(w, "               mutex profile: %s in %d contentions at this Unlock\n", fmtDur(m.Delay), m.Count)
		}
	}
}

func writeStack(w io.Writer, prefix string, fs []Frame) {
	for i, f := range fs {
		if i == 4 {
			break
		}
		p := prefix
		if i > 0 {
			p = strings.Repeat(" ", len([]rune(prefix)))
		}
		fmt.Fprintf(w, "%s\n", clip(fmt.Sprintf("%s%s %s:%d", p, shortFunc(f.Func), path.Base(f.File), f.Line), 100))
	}
}

func writeProfiles(w io.Writer, ps *ProfileSection) {
	if ps == nil {
		return
	}
	mf, br := rateStr(ps.MutexFraction, false), rateStr(ps.BlockRate, true)
	// A profile given without its rate (a file from elsewhere) is on, at
	// a rate the report does not know.
	if ps.MutexFraction <= 0 && (len(ps.Holders) > 0 || len(ps.RuntimeLocks) > 0) {
		mf = "unknown"
	}
	if ps.BlockRate <= 0 && len(ps.Waiters) > 0 {
		br = "unknown"
	}
	fmt.Fprintf(w, "\nPROFILES (mutex fraction %s, block rate %s)\n", mf, br)
	list := func(title string, sites []ProfileSite, total time.Duration) {
		if len(sites) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s, %s in all:\n", title, fmtDur(total))
		for i, s := range sites {
			if i == 5 {
				break
			}
			in := ""
			if s.InTrace {
				in = "  (in trace)"
			}
			line := fmt.Sprintf("    %6s %8s %7d  %-15s %s%s", pct(s.Share), fmtDur(s.Delay), s.Count, s.Op,
				funcAt(Frame{Func: s.Func, File: s.File, Line: s.Line}), in)
			fmt.Fprintf(w, "%s\n", clip(line, 100))
		}
	}
	list("Holders: time others waited, charged to the Unlock (mutex profile)", ps.Holders, ps.MutexTotal)
	list("Waiters: where goroutines waited (block profile)", ps.Waiters, ps.BlockTotal)
	list("Runtime-internal locks (mutex profile)", ps.RuntimeLocks, ps.MutexTotal)
	for _, m := range ps.Missing {
		fmt.Fprintf(w, "  - %s\n", wrap(m, 96, "    "))
	}
}

func rateStr(v int, ns bool) string {
	switch {
	case v <= 0:
		return "off"
	case ns:
		return fmtDur(time.Duration(v))
	}
	return "1/" + strconv.Itoa(v)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// wrap breaks s into lines of at most width columns; continuation lines
// start with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(s) {
		wl := len([]rune(word))
		if i > 0 {
			if col+1+wl > width-len(indent) && col > 0 {
				b.WriteString("\n")
				b.WriteString(indent)
				col = 0
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += wl
	}
	return b.String()
}

// fmtDur prints d with about three significant digits: 640ns, 12.3µs,
// 4.1ms, 120ms, 4.12s, 2m3s.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig(float64(d)/1e6) + "ms"
	case d < time.Minute:
		return sig(float64(d)/1e9) + "s"
	}
	return d.Round(time.Second).String()
}

func sig(v float64) string {
	var s string
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return sig(float64(n)/(1<<10)) + " KB"
	case n < 1<<30:
		return sig(float64(n)/(1<<20)) + " MB"
	}
	return sig(float64(n)/(1<<30)) + " GB"
}
