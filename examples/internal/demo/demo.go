// Package demo runs the phases of the contention examples and prints what
// lockdiag's snapshot of each phase says.
package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/lockreport"
)

// Context is context.Context, so that examples need not import it for a
// Background function.
type Context = context.Context

// A Phase is one version of a workload.
type Phase struct {
	// Name says what this version does.
	Name string
	// Funcs are the function names of this version's lock sites without
	// the package ("(*store).Get"), so that its waits can be told from
	// another version's that may still be in the trace window.
	Funcs []string
	// Workers is how many goroutines run Op in a loop.
	Workers int
	// Op is one operation; it returns false to stop early.
	Op func(worker, i int)
	// Background, if set, runs beside the workers until ctx ends.
	Background func(ctx context.Context)
}

// Result is what a phase did and what lockdiag saw of it.
type Result struct {
	Phase    Phase
	Ops      int64
	Start    time.Time
	Elapsed  time.Duration
	Snapshot diag.SnapshotInfo
	Report   *lockreport.Report
	// LockWait and Waits are the totals of the phase's own lock sites.
	LockWait time.Duration
	Waits    int
}

// Intro prints what an example does, how it ends and where lockdiag's
// live page is while it runs (addr is auto.Addr(), "" for none).
func Intro(name, ends, addr string) {
	fmt.Printf("%s: %s\n", name, ends)
	if addr != "" {
		fmt.Printf("%s: while it runs, lockdiag's live page is http://%s/debug/locks/ui and its status http://%s/debug/locks\n", name, addr, addr)
	}
}

// BundlePath returns where a stored snapshot's bundle is on disk, or ""
// if it is kept in memory only.
func BundlePath(m *diag.Monitor, info diag.SnapshotInfo) string {
	if m == nil || !info.OnDisk {
		return ""
	}
	return filepath.Join(m.Config().Dir, info.ID+".zip")
}

// Done prints what is left after the example exits: the snapshots' files
// on disk and the command that reads them (the HTTP endpoints end with the
// program).
func Done(name string, m *diag.Monitor, results ...Result) {
	fmt.Printf("\n%s: done; lockdiag's endpoints stopped with it.\n", name)
	var paths []string
	for _, r := range results {
		if p := BundlePath(m, r.Snapshot); p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		fmt.Printf("%s: the snapshots were kept in memory only (LOCKDIAG_DIR=off) and are gone.\n", name)
		return
	}
	fmt.Printf("%s: the snapshots stay on disk; read their full reports with:\n", name)
	for _, p := range paths {
		fmt.Printf("  go run ./cmd/lockdiag analyze %s\n", p)
	}
}

// Run runs a phase for d, takes a snapshot at its end, and returns what it
// found.
func Run(m *diag.Monitor, p Phase, d time.Duration) (Result, error) {
	if m == nil {
		return Result{}, errors.New("demo: lockdiag is not running (is LOCKDIAG=off?)")
	}
	fmt.Printf("\n== %s: %d goroutines for %v\n", p.Name, p.Workers, d)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ops atomic.Int64
	var wg sync.WaitGroup
	if p.Background != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Background(ctx)
		}()
	}
	start := time.Now()
	for w := range p.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				p.Op(w, i)
				ops.Add(1)
			}
		}()
	}
	// The snapshot is taken while the phase still runs, at its end.
	timer := time.NewTimer(d - 200*time.Millisecond)
	<-timer.C
	info, err := m.Snapshot(context.Background(), diag.SnapshotOptions{Reason: "example phase: " + p.Name})
	cancel()
	wg.Wait()
	elapsed := time.Since(start)
	if err != nil {
		return Result{}, fmt.Errorf("demo: snapshot: %w", err)
	}
	rep, err := m.Report(info.ID)
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	r := Result{Phase: p, Ops: ops.Load(), Start: start, Elapsed: elapsed, Snapshot: info, Report: rep}
	for _, s := range r.Sites() {
		r.LockWait += s.Total
		r.Waits += s.Waits
	}
	return r, nil
}

// Sites returns the phase's own lock sites in the report.
func (r Result) Sites() []lockreport.Site {
	var out []lockreport.Site
	if r.Report == nil {
		return nil
	}
	for _, s := range r.Report.Sites {
		for _, f := range r.Phase.Funcs {
			if strings.HasSuffix(s.Func, f) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Findings returns the report's findings whose site or summary names one
// of the phase's functions.
func (r Result) Findings() []lockreport.Finding {
	var out []lockreport.Finding
	if r.Report == nil {
		return nil
	}
	for _, f := range r.Report.Findings {
		where := f.Site + "\n" + f.Summary
		for _, fn := range r.Phase.Funcs {
			if strings.Contains(where, fn) {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// Print writes what the phase did and what lockdiag said about it.
func (r Result) Print() {
	rate := float64(r.Ops) / r.Elapsed.Seconds()
	how := "manual: taken at the end of the phase"
	if b := r.Snapshot.Trigger.Breach; b != nil {
		how = fmt.Sprintf("automatic: %q breached during the phase, and the end-of-phase request shared its snapshot", b.Rule)
	}
	fmt.Printf("   %.0f operations/s; snapshot %s (%s)\n", rate, r.Snapshot.ID, how)
	sites := r.Sites()
	if len(sites) == 0 {
		fmt.Printf("   lockdiag: no lock wait at this version's sites\n")
	}
	for _, s := range sites {
		gs := "goroutines"
		if s.Waiters == 1 {
			gs = "goroutine"
		}
		fmt.Printf("   lockdiag: %d %s waited %v in %d waits (max %v, p99 %v) in %s at %s:%d (%s)\n",
			s.Waiters, gs, s.Total.Round(time.Millisecond), s.Waits, s.Max.Round(time.Microsecond), s.P99.Round(time.Microsecond),
			s.Kind, baseName(s.File), s.Line, shortName(s.Func))
		for i, h := range s.Holders {
			if i == 2 {
				break
			}
			if h.Op == "" {
				continue
			}
			fmt.Printf("             %3.0f%% of it behind %s in %s at %s:%d\n", h.Share*100, h.Op, shortName(h.Func), baseName(h.File), h.Line)
		}
	}
	for _, f := range r.Findings() {
		fmt.Printf("   finding [%s]: %s\n", f.Kind, f.Summary)
	}
}

// Compare prints the change from a to b.
func Compare(a, b Result) {
	ra := float64(a.Ops) / a.Elapsed.Seconds()
	rb := float64(b.Ops) / b.Elapsed.Seconds()
	fmt.Printf("\n== %s -> %s\n", a.Phase.Name, b.Phase.Name)
	fmt.Printf("   throughput %.0f -> %.0f operations/s (%.2fx)\n", ra, rb, rb/ra)
	fmt.Printf("   lock wait at the sites %v -> %v", a.LockWait.Round(time.Millisecond), b.LockWait.Round(time.Millisecond))
	if b.LockWait > 0 {
		fmt.Printf(" (%.1fx less)", float64(a.LockWait)/float64(b.LockWait))
	}
	fmt.Println()
}

func shortName(fn string) string {
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	if i := strings.IndexByte(fn, '.'); i >= 0 {
		fn = fn[i+1:]
	}
	return fn
}

func baseName(file string) string {
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		return file[i+1:]
	}
	return file
}

// Spin keeps the CPU busy for about d, as real work in a critical section
// does.
func Spin(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
	}
}
