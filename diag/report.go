package diag

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
)

// Report is a snapshot's report: report.json is this value, report.txt
// its text form.
type Report struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Trigger  Trigger   `json:"trigger"`
	Headline string    `json:"headline"`
	// Trace says what trace the analysis read, or why there was none.
	Trace       string    `json:"trace"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	// Analysis is the contention analysis of the trace window and the
	// profile deltas.
	Analysis *flightrec.Report `json:"analysis"`
	// WaitSites are the places goroutines were parked on locks when the
	// snapshot was taken: this sees a lock that is still held.
	WaitSites []WaitSite `json:"wait_sites_at_trigger"`
	// Threads is the OS view of the process's threads (Linux).
	Threads *ThreadsSection `json:"threads,omitempty"`
	// Collection says what was collected, skipped or failed, and why.
	Collection []CollectNote `json:"collection"`
}

// headline picks the report's one sentence: the analysis's, unless the
// trace saw nothing while goroutines are parked on a lock right now (a
// lock held for longer than the window).
func (r *Report) headline() string {
	h := ""
	if r.Analysis != nil {
		h = r.Analysis.Headline
	}
	stuck := 0
	for _, w := range r.WaitSites {
		stuck += w.Waiters
	}
	if stuck > 0 && (h == "" || strings.HasPrefix(strings.ToLower(h), "no ")) {
		w := r.WaitSites[0]
		return fmt.Sprintf("%d goroutines are parked right now on locks; %d of them on the %s at %s", stuck, w.Waiters, strings.TrimSuffix(w.Kind, ".Lock"), w.Where())
	}
	if h == "" {
		h = "no lock contention found"
	}
	return h
}

// WriteText writes the report as plain text, for a terminal.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("lockdiag snapshot %s, %s\n", r.ID, r.Time.UTC().Format("2006-01-02 15:04:05.000 MST"))
	p("trigger: %s\n", r.Trigger)
	p("window:  %s to %s (%v)\n", r.WindowStart.UTC().Format("15:04:05.000"), r.WindowEnd.UTC().Format("15:04:05.000"), r.WindowEnd.Sub(r.WindowStart).Round(time.Millisecond))
	p("trace:   %s\n\n", r.Trace)
	if r.Analysis == nil || r.Headline != r.Analysis.Headline {
		// The analysis prints its own headline first.
		p("%s\n\n", r.Headline)
	}

	if r.Analysis != nil {
		if err := r.Analysis.WriteText(bw); err != nil {
			return err
		}
		p("\n")
	}

	if len(r.WaitSites) > 0 {
		p("Goroutines parked on locks when the snapshot was taken:\n")
		for i, s := range r.WaitSites {
			if i == 10 {
				p("  ... %d more sites\n", len(r.WaitSites)-i)
				break
			}
			p("  %5d  %-14s %s\n", s.Waiters, s.Kind, s.Where())
		}
		p("  (A lock that is still held shows here, not in the trace's wait totals.\n")
		p("   goroutines-full.txt shows how long each has waited.)\n\n")
	} else {
		p("No goroutine was parked on a lock when the snapshot was taken.\n\n")
	}

	if r.Threads != nil {
		if err := r.Threads.writeText(bw); err != nil {
			return err
		}
		p("\n")
	}

	p("Collected:\n")
	for _, n := range r.Collection {
		detail := n.Detail
		if detail != "" {
			detail = ": " + detail
		}
		p("  %-20s %-7s %8v%s\n", n.Part, n.Status, n.Took.Round(time.Millisecond), detail)
	}
	p("\nOpen the artifacts:\n")
	p("  go tool trace trace.out            # goroutine analysis, sync blocking profile\n")
	p("  go tool pprof -top mutex.pb.gz     # where locks were released (holders)\n")
	p("  go tool pprof -top block.pb.gz     # where goroutines waited (if enabled)\n")
	p("  go tool pprof -top wall.pb.gz      # wall-clock profile after the trigger\n")
	return bw.Flush()
}

// formatValue prints a signal value compactly.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
