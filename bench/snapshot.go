package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
)

func init() {
	register(section{
		name: "snapshot",
		help: "snapshot time and parts under the HTTP workload, and the host's request latency in windows with and without a snapshot",
		run:  runSnapshot,
	})
}

// taken is one snapshot and what it cost.
type taken struct {
	wall time.Duration // m.Snapshot, call to return
	info diag.SnapshotInfo
	meta bundle.Meta
}

func (t taken) traceBytes() int64 {
	for _, f := range t.info.Files {
		if f.Name == bundle.TraceFile {
			return f.Bytes
		}
	}
	return 0
}

// part returns the collection note of one part.
func (t taken) part(name string) (bundle.Note, bool) {
	i := slices.IndexFunc(t.meta.Collection, func(n bundle.Note) bool { return n.Part == name })
	if i < 0 {
		return bundle.Note{}, false
	}
	return t.meta.Collection[i], true
}

// takeSnapshot takes a snapshot and reads back its meta.json.
func takeSnapshot(m *diag.Monitor, opts diag.SnapshotOptions) (taken, error) {
	t0 := time.Now()
	info, err := m.Snapshot(context.Background(), opts)
	wall := time.Since(t0)
	if err != nil {
		return taken{}, err
	}
	t := taken{wall: wall, info: info}
	b, err := m.Bundle(info.ID)
	if err != nil {
		return t, err
	}
	t.meta = b.Meta()
	return t, nil
}

func runSnapshot(w io.Writer, quick bool) error {
	reps, fill, win := 7, 11*time.Second, 2500*time.Millisecond
	budgetSnaps, budgetFill := 3, 8*time.Second
	if quick {
		reps, fill, win = 2, 4*time.Second, 1500*time.Millisecond
		budgetSnaps, budgetFill = 1, 3*time.Second
	}
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	wl, err := startHTTP(16)
	if err != nil {
		return err
	}
	defer wl.close()

	m, err := diag.New(diag.Config{Dir: dir})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	sub := m.Subscribe(1 << 12)
	sleep(fill) // the trace window fills

	// Windows: none, a snapshot, a snapshot with a 1s wall-clock profile
	// (what an automatic snapshot adds), in rotating order.
	kinds := []string{"no snapshot", "snapshot", "snapshot + 1s wall profile"}
	wins := map[string][]window{}
	snaps := map[string][]taken{}
	for rep := range reps {
		for k := range kinds {
			kind := kinds[(rep+k)%len(kinds)]
			var done chan taken
			if kind != "no snapshot" {
				opts := diag.SnapshotOptions{Reason: "bench"}
				if kind != "snapshot" {
					opts.Wall = time.Second
				}
				done = make(chan taken, 1)
				wl.begin()
				go func() {
					t, err := takeSnapshot(m, opts)
					if err != nil {
						log.Printf("bench: snapshot: %v", err)
					}
					done <- t
				}()
			} else {
				wl.begin()
			}
			sleep(win)
			if done != nil {
				t := <-done // a slow snapshot makes its window longer
				if t.info.ID != "" {
					snaps[kind] = append(snaps[kind], t)
				}
			}
			wins[kind] = append(wins[kind], wl.end())
			sleep(300 * time.Millisecond)
		}
		log.Printf("bench: snapshot: rep %d/%d", rep+1, reps)
	}
	m.Stop()
	auto, breaches, skipped := 0, 0, 0
	for ev := range sub.C() {
		switch {
		case ev.Type == diag.EventBreach:
			breaches++
		case ev.Type == diag.EventSnapshotSkipped:
			skipped++
		case ev.Type == diag.EventSnapshot && ev.Snapshot != nil && ev.Snapshot.Trigger.Kind == "rule":
			auto++
		}
	}

	// The analysis budget running out: the same, with a budget of 100ms.
	budget := 100 * time.Millisecond
	m2, err := diag.New(diag.Config{Dir: dir, AnalysisBudget: budget})
	if err != nil {
		return err
	}
	if err := m2.Start(); err != nil {
		return err
	}
	sleep(budgetFill)
	var short []taken
	for range budgetSnaps {
		t, err := takeSnapshot(m2, diag.SnapshotOptions{Reason: "bench"})
		if err != nil {
			m2.Stop()
			return err
		}
		short = append(short, t)
		sleep(500 * time.Millisecond)
	}
	m2.Stop()

	fmt.Fprintf(w, "## Snapshots\n\n")
	fmt.Fprintf(w, "lockdiag at its defaults beside the HTTP workload of the overhead section (%s).\n", wl.desc)
	fmt.Fprintf(w, "After %v (the trace window fills), %d repetitions of three windows of %v in rotating order: no snapshot, a snapshot\n", fill, reps, win)
	fmt.Fprintf(w, "(`m.Snapshot(ctx, diag.SnapshotOptions{})`, as `POST /debug/locks/snapshots` takes), and a snapshot with a 1 s wall-clock\n")
	fmt.Fprintf(w, "profile (what an automatic snapshot adds). The snapshot starts with its window; a window lasts until the snapshot returns.\n")
	fmt.Fprintf(w, "Then a second monitor with `AnalysisBudget: %v` takes %d snapshots after %v, to show a budget that runs out.\n\n", budget, budgetSnaps, budgetFill)

	fmt.Fprintf(w, "| snapshots | n | m.Snapshot wall time, median | max | trace window | analysis | analysis speed | partial reports | bundle |\n|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, ts []taken) {
		var wall, tb, an, speed, bundle []float64
		partial := 0
		for _, t := range ts {
			wall = append(wall, float64(t.wall))
			tb = append(tb, float64(t.traceBytes()))
			bundle = append(bundle, float64(t.info.Bytes))
			if n, ok := t.part("analysis"); ok {
				an = append(an, float64(n.Took))
				if n.Took > 0 {
					speed = append(speed, float64(t.traceBytes())/n.Took.Seconds())
				}
			}
			if t.info.Partial {
				partial++
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s/s | %d of %d | %s |\n", name, len(ts),
			fmtDur(time.Duration(median(wall))), fmtDur(time.Duration(percentile(wall, 100))), fmtBytes(median(tb)),
			fmtDur(time.Duration(median(an))), fmtBytes(median(speed)), partial, len(ts), fmtBytes(median(bundle)))
	}
	row("defaults (analysis budget 5s)", snaps["snapshot"])
	row("defaults + 1s wall profile", snaps["snapshot + 1s wall profile"])
	row(fmt.Sprintf("analysis budget %v", budget), short)
	fmt.Fprintln(w)

	// Where the time goes, from meta.json.
	all := slices.Concat(snaps["snapshot"], snaps["snapshot + 1s wall profile"])
	if len(all) > 0 {
		type partStat struct {
			part, status, detail string
			took                 []float64
		}
		var parts []*partStat
		for _, t := range all {
			for _, n := range t.meta.Collection {
				i := slices.IndexFunc(parts, func(p *partStat) bool { return p.part == n.Part && p.status == n.Status })
				if i < 0 {
					parts = append(parts, &partStat{part: n.Part, status: n.Status})
					i = len(parts) - 1
				}
				parts[i].took = append(parts[i].took, float64(n.Took))
				parts[i].detail = n.Detail
			}
		}
		fmt.Fprintf(w, "Where a snapshot's time goes: each part's time from meta.json's `collection`, over the %d snapshots at defaults\n", len(all))
		fmt.Fprintf(w, "(the wall time above also covers the lock_waiters scan, the report, the zip and the disk write):\n\n")
		fmt.Fprintf(w, "| part | status | n | median | max | detail (last one) |\n|---|---|---|---|---|---|\n")
		for _, p := range parts {
			detail := p.detail
			if p.part == "threads.json" && p.status == "ok" {
				detail += "; two scans 50 ms apart, for rates"
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s |\n", p.part, p.status, len(p.took), fmtDur(time.Duration(median(p.took))), fmtDur(time.Duration(percentile(p.took, 100))), detail)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "The host's requests in the windows (medians over %d windows of each kind; ratios are per repetition against its window without a snapshot):\n\n", reps)
	fmt.Fprintf(w, "| window | p50 | p99 | p99.9 | max | requests/s | p99 ratio (median) | 95%% interval | throughput ratio (median) | 95%% interval |\n|---|---|---|---|---|---|---|---|---|---|\n")
	stat := func(kind string, f func(window) float64) []float64 {
		var xs []float64
		for _, x := range wins[kind] {
			xs = append(xs, f(x))
		}
		return xs
	}
	p99 := func(x window) float64 { return float64(x.p(99)) }
	rate := func(x window) float64 { return x.rate }
	for _, kind := range kinds {
		p50 := median(stat(kind, func(x window) float64 { return float64(x.p(50)) }))
		p999 := median(stat(kind, func(x window) float64 { return float64(x.p(99.9)) }))
		mx := median(stat(kind, func(x window) float64 { return float64(x.p(100)) }))
		line := fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", kind, fmtDur(time.Duration(p50)), fmtDur(time.Duration(median(stat(kind, p99)))),
			fmtDur(time.Duration(p999)), fmtDur(time.Duration(mx)), fmtCount(median(stat(kind, rate))))
		if kind == "no snapshot" {
			fmt.Fprintf(w, "%s | | | |\n", line)
			continue
		}
		lp := summarize(ratios(stat(kind, p99), stat("no snapshot", p99)))
		lr := summarize(ratios(stat(kind, rate), stat("no snapshot", rate)))
		fmt.Fprintf(w, "%s %s | %s | %s | %s |\n", line, fmtRatio(lp.med), fmtRange(lp.ciLo, lp.ciHi), fmtRatio(lr.med), fmtRange(lr.ciLo, lr.ciHi))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Notes:\n\n")
	fmt.Fprintf(w, "- A window with a snapshot holds the whole snapshot; the analysis runs on one goroutine, so on 2 CPUs it competes with the\n")
	fmt.Fprintf(w, "  host for half the machine while it lasts. Automatic snapshots are rate-limited (one per rule per minute, ten per hour).\n")
	fmt.Fprintf(w, "- The analysis budget is checked between events; the parser reads a whole trace generation (about 1 s of trace) at once,\n")
	fmt.Fprintf(w, "  so a snapshot whose budget ran out still reads at least one generation.\n")
	fmt.Fprintf(w, "- Rule breaches while the windows ran: %d; automatic snapshots: %d (they would overlap the windows); breaches without a snapshot: %d\n", breaches, auto, skipped)
	fmt.Fprintf(w, "  (a breach during a snapshot shares the one in flight). A breach here means the host's lock wait jumped during the run.\n\n")
	return nil
}
