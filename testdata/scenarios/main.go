// Command scenarios builds lock-contention incidents from real code (real
// third-party libraries, real sockets, pipes, fsync, cgo) and captures each
// one as a lockdiag snapshot bundle taken while the incident goes on, with
// the ground truth the generator knows because it built the incident.
//
// Usage (from this directory):
//
//	go run . -out out                   # every scenario, one subprocess each
//	go run . -out out -only logrus,zap  # a subset; out/expect.json is updated in place
//	go run . -list                      # the scenario names
//
// For each scenario it writes out/<name>.zip (a bundle from the public
// diag.Monitor API) or out/<name>.trace (a plain execution trace), and
// out/expect.json gathers every scenario's ground truth. README.md says what
// each scenario is.
//
// The program's own code is made of named, non-inlined functions
// (main.handleRequest, main.migrate, ...) so that tests can assert on the
// names a report gives. Bundles are timing dependent: a regenerated bundle
// differs from the committed one; the ground truth does not (goroutine ids
// and times are recorded per run in expect.json).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"
)

// scenario is one incident. run builds it in the current process and calls
// h.snapshot (or writes a trace itself) at the moment the incident is to be
// captured.
type scenario struct {
	name string
	// what is a one-line description (README and expect.json).
	what string
	run  func(h *H) error
	// guard is the monitor's GoroutineGuard; 0 leaves the default.
	guard int
	// window is the monitor's TraceWindow; 0 means 3s.
	window time.Duration
	// maxBytes is TraceMaxBytes; 0 means 4 MiB.
	maxBytes uint64
	// timeout bounds the child process; 0 means 90s.
	timeout time.Duration
}

var scenarios []*scenario

func register(s *scenario) { scenarios = append(scenarios, s) }

// order is the order scenarios run and are listed in (the brief's
// numbering, then the additions); registration order depends on file names.
var order = []string{
	"logrus", "stdlog", "lru", "lru-expirable", "gocache", "zap", "wrappers", "cgo",
	"saturated", "ended", "http-sleep", "stuck-sleep", "stuck-io", "deadlock", "chain",
	"stuck-20k", "ticker", "sync-rwmutex", "bbolt", "sqlite",
}

func sortScenarios() {
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i + 1
	}
	sort.SliceStable(scenarios, func(i, j int) bool {
		ri, rj := rank[scenarios[i].name], rank[scenarios[j].name]
		if ri == 0 {
			ri = len(order) + 1
		}
		if rj == 0 {
			rj = len(order) + 1
		}
		return ri < rj
	})
}

func lookup(name string) *scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

func main() {
	out := flag.String("out", "out", "directory for <name>.zip, <name>.trace and expect.json")
	only := flag.String("only", "", "comma-separated scenarios to run (default: all)")
	list := flag.Bool("list", false, "list the scenarios and exit")
	child := flag.String("child", "", "internal: run this one scenario in this process")
	expectFile := flag.String("expect", "", "internal: where the child writes its ground truth")
	flag.Parse()
	sortScenarios()

	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-16s %s\n", s.name, s.what)
		}
		return
	}
	if *child != "" {
		if err := runChild(*child, *out, *expectFile); err != nil {
			fmt.Fprintf(os.Stderr, "scenarios: %s: %v\n", *child, err)
			os.Exit(1)
		}
		// Stuck goroutines, C threads and sockets are left to the exit.
		os.Exit(0)
	}
	if err := runAll(*out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		os.Exit(1)
	}
}

func runAll(out, only string) error {
	var run []*scenario
	if only == "" {
		run = scenarios
	} else {
		for _, name := range strings.Split(only, ",") {
			s := lookup(strings.TrimSpace(name))
			if s == nil {
				return fmt.Errorf("unknown scenario %q (see -list)", name)
			}
			run = append(run, s)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "scenarios-expect-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	all := readExpectations(filepath.Join(out, "expect.json"))
	var failed []string
	begin := time.Now()
	for _, s := range run {
		t0 := time.Now()
		frag := filepath.Join(tmp, s.name+".json")
		timeout := s.timeout
		if timeout == 0 {
			timeout = 90 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		cmd := exec.CommandContext(ctx, self, "-child", s.name, "-out", out, "-expect", frag)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "scenarios: %s: %v\n", s.name, err)
			failed = append(failed, s.name)
			continue
		}
		data, err := os.ReadFile(frag)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scenarios: %s: no ground truth: %v\n", s.name, err)
			failed = append(failed, s.name)
			continue
		}
		var e Expect
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("%s: %v", s.name, err)
		}
		all.Scenarios[s.name] = &e
		file := e.Bundle
		if file == "" {
			file = e.Trace
		}
		size := int64(0)
		if fi, err := os.Stat(filepath.Join(out, file)); err == nil {
			size = fi.Size()
		}
		fmt.Printf("%-16s %9d bytes  %-22s %5.1fs\n", s.name, size, file, time.Since(t0).Seconds())
		// Save after each one: a later failure keeps what is done.
		if err := writeExpectations(filepath.Join(out, "expect.json"), all); err != nil {
			return err
		}
	}
	fmt.Printf("%d scenarios in %.0fs\n", len(run)-len(failed), time.Since(begin).Seconds())
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// Expectations is out/expect.json.
type Expectations struct {
	Comment   string             `json:"comment"`
	GoVersion string             `json:"go_version"`
	Scenarios map[string]*Expect `json:"scenarios"`
}

func readExpectations(file string) *Expectations {
	all := &Expectations{}
	if data, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(data, all) // a broken file is rebuilt
	}
	if all.Scenarios == nil {
		all.Scenarios = map[string]*Expect{}
	}
	all.Comment = "Ground truth of each scenario, written by the generator that built the incident (go run . -out out in testdata/scenarios). Times are seconds relative to the snapshot (negative: before it); end_s null means the incident was still going on. README.md explains the fields."
	all.GoVersion = runtime.Version()
	return all
}

func writeExpectations(file string, all *Expectations) error {
	// encoding/json sorts map keys: the file's order is stable.
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	// Lists of goroutine ids on one line each.
	data = numList.ReplaceAllFunc(data, func(b []byte) []byte {
		return space.ReplaceAll(b, nil)
	})
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

var (
	numList = regexp.MustCompile(`\[\s*-?[0-9.]+(,\s*-?[0-9.]+)*\s*\]`)
	space   = regexp.MustCompile(`\s+`)
)

func runChild(name, out, expectFile string) error {
	s := lookup(name)
	if s == nil {
		return fmt.Errorf("unknown scenario")
	}
	h := &H{s: s, out: out, exp: &Expect{Name: s.name, What: s.what}}
	if err := s.run(h); err != nil {
		return err
	}
	if h.m != nil {
		h.m.Stop()
	}
	if !h.done {
		return fmt.Errorf("scenario finished without a snapshot")
	}
	data, err := json.MarshalIndent(h.exp, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(expectFile, data, 0o644)
}
