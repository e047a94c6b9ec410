package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func init() {
	register(section{
		name: "incidents",
		help: "onset to trigger per incident class (spike, stuck, restart, slow climb, deadlock) at 1k, 20k and 100k goroutines, and the detector's CPU",
		run:  runIncidents,
	})
}

// incidentChildEnv names the incident a re-executed bench process runs.
const incidentChildEnv = "LOCKDIAG_BENCH_INCIDENT"

// incidentResult is what a child says.
type incidentResult struct {
	Class      string  `json:"class"`
	Goroutines int     `json:"goroutines"`
	TriggerMS  float64 `json:"trigger_ms"` // onset to the breaching sample; -1: none
	Rule       string  `json:"rule,omitempty"`
	// For "steady": the detector's CPU per second of wall time, the
	// scans and their mean cost.
	DetectorCPU float64 `json:"detector_cpu,omitempty"`
	Scans       int     `json:"scans,omitempty"`
	ScanMS      float64 `json:"scan_ms,omitempty"`
}

// The classes, with the longest they may take from onset to trigger.
var incidentClasses = []struct {
	name  string
	limit time.Duration
	goal  map[int]time.Duration
	what  string
}{
	{"spike", 5 * time.Second, nil, "after a 12 s warm-up, 32 goroutines take turns on one Mutex held 1 ms"},
	{"stuck", 20 * time.Second, map[int]time.Duration{1000: 3 * time.Second, 20_000: 5 * time.Second, 100_000: 10 * time.Second},
		"after 5 s, a holder keeps a Mutex and 50 goroutines park on it"},
	{"restart", 20 * time.Second, map[int]time.Duration{1000: 15 * time.Second, 20_000: 15 * time.Second, 100_000: 15 * time.Second},
		"contention from the process's first second: 40 goroutines on a Mutex held across a 40 ms call (onset = process start)"},
	{"climb", 120 * time.Second, nil, "after a 12 s warm-up, one more goroutine every 4 s joins a Mutex held 1 ms: lock wait climbs by about one goroutine per 4 s"},
	{"deadlock", 20 * time.Second, map[int]time.Duration{1000: 5 * time.Second, 20_000: 5 * time.Second, 100_000: 5 * time.Second},
		"after 5 s, two goroutines lock two Mutexes in opposite orders, three more wait on each"},
}

// runIncidentChild runs one incident (CLASS,GOROUTINES) in this process
// and prints its result as JSON.
func runIncidentChild(spec string) {
	class, n, _ := strings.Cut(spec, ",")
	goroutines, _ := strconv.Atoi(n)
	start := time.Now()
	block := make(chan struct{})
	for range goroutines {
		go func() { <-block }()
	}
	res := incidentResult{Class: class, Goroutines: goroutines, TriggerMS: -1}
	m, err := diag.New(diag.Config{Dir: diag.DirOff, WallProfile: -1, GoroutineGuard: 1})
	if err == nil {
		err = m.Start()
	}
	if err != nil {
		log.Fatal(err)
	}
	sub := m.Subscribe(1 << 12)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var onset time.Time
	after := func(d time.Duration) { time.Sleep(max(0, d-time.Since(start))) }
	switch class {
	case "steady":
		d, _ := time.ParseDuration(os.Getenv("LOCKDIAG_BENCH_STEADY"))
		after(d)
		st := m.Status()
		el := time.Since(start).Seconds()
		res.DetectorCPU, res.Scans = st.ScanTotal.Seconds()/el, st.Scans
		if st.Scans > 0 {
			res.ScanMS = float64(st.ScanTotal) / float64(st.Scans) / 1e6
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return
	case "spike":
		after(12 * time.Second)
		onset = time.Now()
		contention.Mutex(ctx, 32, time.Millisecond)
	case "stuck":
		after(5 * time.Second)
		onset = time.Now()
		contention.Stuck(50)
	case "restart":
		onset = start
		contention.Mutex(ctx, 40, 40*time.Millisecond)
	case "climb":
		after(12 * time.Second)
		onset = time.Now()
		go func() {
			var mu sync.Mutex
			for ctx.Err() == nil {
				go func() {
					for ctx.Err() == nil {
						contention.HotLockWorker(&mu, time.Millisecond)
					}
				}()
				time.Sleep(4 * time.Second)
			}
		}()
	case "deadlock":
		after(5 * time.Second)
		onset = time.Now()
		deadlock()
	}
	limit := time.Minute
	for _, c := range incidentClasses {
		if c.name == class {
			limit = c.limit
		}
	}
	if ev, ok := awaitEvent(sub, diag.EventBreach, limit); ok {
		res.TriggerMS = float64(ev.Time.Sub(onset)) / 1e6
		res.Rule = ev.Breach.Rule
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// deadlock locks two mutexes in opposite orders in two goroutines, and
// parks three more goroutines on each.
func deadlock() {
	var a, b sync.Mutex
	transfer := func(x, y *sync.Mutex) {
		x.Lock()
		time.Sleep(50 * time.Millisecond)
		y.Lock()
	}
	go transfer(&a, &b)
	go transfer(&b, &a)
	time.Sleep(100 * time.Millisecond)
	for range 3 {
		go func() { a.Lock() }()
		go func() { b.Lock() }()
	}
}

func runIncident(spec string, env ...string) (incidentResult, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), incidentChildEnv+"="+spec, "LOCKDIAG_LOG=off")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return incidentResult{}, fmt.Errorf("incident %s: %w", spec, err)
	}
	var r incidentResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("incident %s: %q: %w", spec, out, err)
	}
	return r, nil
}

func runIncidents(w io.Writer, quick bool) error {
	reps, steady := 3, 60*time.Second
	if quick {
		reps, steady = 1, 15*time.Second
	}
	scales := []int{1000, 20_000, 100_000}
	got := map[string][]float64{}
	missed := map[string]int{}
	for _, c := range incidentClasses {
		for _, n := range scales {
			key := fmt.Sprintf("%s,%d", c.name, n)
			for rep := range reps {
				r, err := runIncident(key)
				if err != nil {
					return err
				}
				if r.TriggerMS < 0 {
					missed[key]++
				} else {
					got[key] = append(got[key], r.TriggerMS)
				}
				log.Printf("bench: incidents: %s rep %d/%d: %.0f ms (%s)", key, rep+1, reps, r.TriggerMS, r.Rule)
			}
		}
	}
	cpu := map[int]incidentResult{}
	for _, n := range scales {
		r, err := runIncident(fmt.Sprintf("steady,%d", n), "LOCKDIAG_BENCH_STEADY="+steady.String())
		if err != nil {
			return err
		}
		cpu[n] = r
		log.Printf("bench: incidents: steady at %d goroutines: detector %.3f%% of a CPU, %d scans of %.1f ms", n, r.DetectorCPU*100, r.Scans, r.ScanMS)
	}

	fmt.Fprintf(w, "## Detection by incident class\n\n")
	fmt.Fprintf(w, "Each run is a fresh process (this program re-executed) with N idle goroutines (blocked on a channel, like idle connections)\n")
	fmt.Fprintf(w, "and a monitor at its defaults (default rules `%s`, no disk, no wall profile); %d runs per cell.\n", diag.DefaultRules, reps)
	fmt.Fprintf(w, "Onset to trigger is from the incident's start to the sample that breached.\n\n")
	for _, c := range incidentClasses {
		fmt.Fprintf(w, "- *%s*: %s.\n", c.name, c.what)
	}
	fmt.Fprintf(w, "\n| class | goroutines | onset → trigger, median | max | missed | goal |\n|---|---|---|---|---|---|\n")
	for _, c := range incidentClasses {
		for _, n := range scales {
			key := fmt.Sprintf("%s,%d", c.name, n)
			goal := ""
			if g, ok := c.goal[n]; ok {
				goal = "≤ " + fmtDur(g)
			}
			if c.name == "spike" {
				goal = "≤ 250ms"
			}
			med, mx := "-", "-"
			if xs := got[key]; len(xs) > 0 {
				med, mx = ms(median(xs)), ms(percentile(xs, 100))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %s |\n", c.name, fmtCount(float64(n)), med, mx, missed[key], goal)
		}
	}
	fmt.Fprintf(w, "\nThe detector's CPU in steady state (the goroutine scans behind `lock_waiters` and `stuck_waiters`, which run on the\n")
	fmt.Fprintf(w, "sampling goroutine), over %v of an idle process with N goroutines; goal ≤ 1%% of one core at 100k:\n\n", steady)
	fmt.Fprintf(w, "| goroutines | detector CPU | scans | mean scan |\n|---|---|---|---|\n")
	for _, n := range scales {
		r := cpu[n]
		fmt.Fprintf(w, "| %s | %.3f%% of a core | %d | %.1f ms |\n", fmtCount(float64(n)), r.DetectorCPU*100, r.Scans, r.ScanMS)
	}
	fmt.Fprintln(w)
	return nil
}
