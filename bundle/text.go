package bundle

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/lockdiag/lockdiag/lockreport"
)

// WriteText writes report.txt: a header from meta (the snapshot, its
// trigger, its window, its trace), the report, what was collected and how
// to open the files.
func WriteText(w io.Writer, meta Meta, rep *lockreport.Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	WriteHeader(bw, meta)
	p("\n")
	if err := rep.WriteText(bw); err != nil {
		return err
	}
	if len(meta.Collection) > 0 {
		p("\nCollected:\n")
		for _, n := range meta.Collection {
			detail := n.Detail
			if detail != "" {
				detail = ": " + detail
			}
			p("  %-20s %-7s %8v%s\n", n.Part, n.Status, n.Took.Round(time.Millisecond), detail)
		}
	}
	p("\nOpen the artifacts:\n")
	p("  go tool trace trace.out            # goroutine analysis, sync blocking profile\n")
	p("  go tool pprof -top mutex.pb.gz     # where locks were released (holders)\n")
	p("  go tool pprof -top block.pb.gz     # where goroutines waited (if enabled)\n")
	// Idle goroutines fill most of the wall-clock profile: the focus keeps
	// the stacks waiting on a lock (the README's bundle table says the same).
	p("  go tool pprof -top -focus='sync.*Lock' wall.pb.gz  # wall-clock lock waits after the trigger\n")
	for _, n := range meta.Collection {
		if n.Part == GoroutineLeakFile && n.Status == "ok" {
			p("  go tool pprof -top %s  # goroutines blocked forever (Go >= 1.27)\n", GoroutineLeakFile)
		}
	}
	return bw.Flush()
}

// WriteHeader writes the lines that say which snapshot a report is of.
func WriteHeader(w io.Writer, meta Meta) {
	if meta.ID == "" {
		return
	}
	fmt.Fprintf(w, "lockdiag snapshot %s, %s\n", meta.ID, meta.Time.UTC().Format("2006-01-02 15:04:05.000 MST"))
	if meta.Trigger.Kind != "" {
		fmt.Fprintf(w, "trigger: %s\n", meta.Trigger)
	}
	if !meta.Window.Start.IsZero() {
		fmt.Fprintf(w, "window:  %s to %s (%v)\n", meta.Window.Start.UTC().Format("15:04:05.000"),
			meta.Window.End.UTC().Format("15:04:05.000"), meta.Window.End.Sub(meta.Window.Start).Round(time.Millisecond))
	}
	if meta.Trace != "" {
		fmt.Fprintf(w, "trace:   %s\n", meta.Trace)
	}
}
