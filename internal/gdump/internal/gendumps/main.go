//go:build unix

// Command gendumps writes the goroutine dumps that the gdump and lockgraph
// tests read: real dumps of real processes, one process per dump, for the
// Go version it runs with. Run it once per Go version:
//
//	CGO_ENABLED=0 go run ./internal/gdump/internal/gendumps -out internal/gdump/testdata
//	CGO_ENABLED=0 GOTOOLCHAIN=go1.27.3 go run ./internal/gdump/internal/gendumps -out internal/gdump/testdata
//
// Files are named <what>.go1.NN.<kind>.txt. For every lock scenario of
// internal/lockgraph/scenario it writes a debug=2 and a debug=1 dump, and
// the goroutine ids (by role) and addresses of that process to
// scenarios.go1.NN.json. It also writes the other shapes a dump comes in:
// labels (both GODEBUG=tracebacklabels settings), deep and odd frames,
// SIGQUIT, an unrecovered panic, the runtime's "all goroutines are asleep"
// fatal error (which a cgo binary never prints: hence CGO_ENABLED=0),
// GOTRACEBACK=system, GODEBUG=tracebackancestors, and on Go ≥ 1.27 the
// goroutineleak profile. With -minutes it also waits a minute to capture a
// "N minutes" header (the runtime stamps it during a GC with the start time
// of the previous GC, so the program forces two).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lockdiag/lockdiag/internal/lockgraph/scenario"
)

var (
	out     = flag.String("out", "internal/gdump/testdata", "directory to write the dumps to")
	only    = flag.String("only", "", "comma-separated jobs or scenarios to run (default all)")
	minutes = flag.Bool("minutes", false, "also capture a dump with a goroutine blocked for over a minute (takes 61 s)")
	child   = flag.String("child", "", "internal: run one job in this process")
)

// goVersion is "go1.26" for go1.26.8.
func goVersion() string {
	v := runtime.Version()
	if m := regexp.MustCompile(`^go1\.\d+`).FindString(v); m != "" {
		return m
	}
	return "devel"
}

type truth struct {
	Roles map[string]int64  `json:"roles"`
	Addrs map[string]string `json:"addrs"`
}

func main() {
	flag.Parse()
	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, "gendumps:", err)
			os.Exit(1)
		}
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	want := func(name string) bool {
		return *only == "" || slices.Contains(strings.Split(*only, ","), name)
	}
	v := goVersion()
	truths := map[string]truth{}
	for _, name := range scenario.Names() {
		if !want(name) {
			continue
		}
		stdout, _, err := runSelf("scenario:"+name, nil)
		if err != nil {
			fatal(fmt.Errorf("scenario %s: %v", name, err))
		}
		var t truth
		if err := json.Unmarshal(stdout, &t); err != nil {
			fatal(fmt.Errorf("scenario %s: truth: %v", name, err))
		}
		truths[name] = t
		fmt.Println("wrote", name)
	}
	if len(truths) > 0 {
		file := filepath.Join(*out, "scenarios."+v+".json")
		// Keep the scenarios not run this time.
		if old, err := os.ReadFile(file); err == nil {
			var prev map[string]truth
			if json.Unmarshal(old, &prev) == nil {
				for k, t := range prev {
					if _, ok := truths[k]; !ok {
						truths[k] = t
					}
				}
			}
		}
		b, _ := json.MarshalIndent(truths, "", "  ")
		if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
			fatal(err)
		}
	}
	type job struct {
		name string
		env  []string
		run  func(name string, env []string) error
	}
	jobs := []job{
		{"formats", []string{"GODEBUG=tracebacklabels=1"}, childJob},
		{"formats-nolabels", []string{"GODEBUG=tracebacklabels=0"}, childJob},
		{"ancestors", []string{"GODEBUG=tracebackancestors=2"}, childJob},
		{"sigquit", []string{"GODEBUG=tracebacklabels=1"}, signalJob},
		{"system", []string{"GOTRACEBACK=system"}, signalJob},
		{"panic", []string{"GOTRACEBACK=all"}, stderrJob},
		{"fatal", nil, stderrJob},
		{"leak", nil, childJob},
	}
	if *minutes || want("minutes") && *only != "" {
		jobs = append(jobs, job{"minutes", nil, childJob})
	}
	for _, j := range jobs {
		if !want(j.name) {
			continue
		}
		if err := j.run(j.name, j.env); err != nil {
			fatal(fmt.Errorf("%s: %v", j.name, err))
		}
		fmt.Println("wrote", j.name)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "gendumps:", err)
	os.Exit(1)
}

// runSelf runs this program with -child job and returns its output.
func runSelf(job string, env []string) (stdout, stderr []byte, err error) {
	timeout := 2 * time.Minute
	if job == "fatal" {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-child", job, "-out", *out)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, e.Bytes())
	}
	return o.Bytes(), e.Bytes(), err
}

func childJob(name string, env []string) error {
	_, _, err := runSelf(name, env)
	return err
}

// stderrJob runs a child that dies printing its goroutines, and keeps its
// standard error.
func stderrJob(name string, env []string) error {
	_, stderr, err := runSelf(name, env)
	if err == nil {
		return fmt.Errorf("child did not crash")
	}
	if name == "fatal" && !bytes.Contains(stderr, []byte("all goroutines are asleep")) {
		// checkdead stays quiet in a cgo binary (the net package brings
		// cgo in): build this program with CGO_ENABLED=0.
		return fmt.Errorf("the runtime's deadlock detector did not fire; run with CGO_ENABLED=0")
	}
	return writeFile(name+"."+goVersion()+".txt", stderr)
}

// signalJob sends SIGQUIT to a child once it is ready and keeps its
// standard error.
func signalJob(name string, env []string) error {
	cmd := exec.Command(os.Args[0], "-child", name, "-out", *out)
	cmd.Env = append(os.Environ(), env...)
	var e bytes.Buffer
	cmd.Stderr = &e
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("child not ready: %q %v: %s", buf, err, e.Bytes())
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	cmd.Wait()
	return writeFile(name+"."+goVersion()+".txt", e.Bytes())
}

func writeFile(name string, b []byte) error {
	return os.WriteFile(filepath.Join(*out, name), b, 0o644)
}

func dump(debug int) []byte {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, debug)
	return b.Bytes()
}

func runChild(job string) error {
	v := goVersion()
	if name, ok := strings.CutPrefix(job, "scenario:"); ok {
		r, err := scenario.Start(name)
		if err != nil {
			return err
		}
		d2, d1 := dump(2), dump(1)
		if err := writeFile(name+"."+v+".debug2.txt", d2); err != nil {
			return err
		}
		if err := writeFile(name+"."+v+".debug1.txt", d1); err != nil {
			return err
		}
		t := truth{Roles: r.Roles(), Addrs: map[string]string{}}
		for k, a := range r.Addrs() {
			t.Addrs[k] = fmt.Sprintf("%#x", a)
		}
		return json.NewEncoder(os.Stdout).Encode(t)
	}
	switch job {
	case "formats":
		stop := startFormats()
		defer stop()
		if err := writeFile("formats."+v+".debug2.txt", dump(2)); err != nil {
			return err
		}
		return writeFile("formats."+v+".debug1.txt", dump(1))
	case "formats-nolabels":
		stop := startFormats()
		defer stop()
		return writeFile("formats."+v+".nolabels.debug2.txt", dump(2))
	case "ancestors":
		if _, err := scenario.Start("mutex-sleep"); err != nil {
			return err
		}
		return writeFile("ancestors."+v+".txt", scenario.AllStacks())
	case "sigquit", "system":
		startLabelled()
		if _, err := scenario.Start("mutex-sleep"); err != nil {
			return err
		}
		fmt.Print("ready\n")
		time.Sleep(time.Minute)
		return fmt.Errorf("no SIGQUIT came")
	case "panic":
		if _, err := scenario.Start("chain"); err != nil {
			return err
		}
		go panicker()
		time.Sleep(time.Minute)
		return fmt.Errorf("no panic")
	case "fatal":
		// Every goroutine blocked on a lock: the runtime's deadlock
		// detector fires once main blocks too.
		var mu sync.Mutex
		mu.Lock()
		go func() { mu.Lock() }()
		mu.Lock()
		return nil
	case "leak":
		return leakJob()
	case "minutes":
		if _, err := scenario.Start("mutex-sleep"); err != nil {
			return err
		}
		// A GC's stack scan stamps a blocked goroutine's waitsince with
		// the start of the last completed GC (runtime/mgcmark.go,
		// markroot): the first GC of a process stamps nothing, so two.
		runtime.GC()
		runtime.GC()
		time.Sleep(61 * time.Second)
		return writeFile("minutes."+v+".debug2.txt", dump(2))
	}
	return fmt.Errorf("unknown job %q", job)
}

//go:noinline
func panicker() {
	var m map[string]int
	m["x"] = 1 // a nil map write: "panic: assignment to entry in nil map"
}

// leakJob runs the two-goroutine deadlock with accounts nothing else
// references, so that Go 1.27's leak detector can prove it, and writes the
// goroutineleak profile at debug=2 and debug=1.
func leakJob() error {
	p := pprof.Lookup("goroutineleak")
	if p == nil {
		return nil // before Go 1.27
	}
	if _, err := scenario.Start("deadlock2"); err != nil {
		return err
	}
	var d2, d1 bytes.Buffer
	if err := p.WriteTo(&d2, 2); err != nil {
		return err
	}
	if err := p.WriteTo(&d1, 1); err != nil {
		return err
	}
	v := goVersion()
	if err := writeFile("leak."+v+".debug2.txt", d2.Bytes()); err != nil {
		return err
	}
	return writeFile("leak."+v+".debug1.txt", d1.Bytes())
}

// ---- the odd shapes ----

// startLabelled starts goroutines with pprof labels, one of them needing
// quotes.
func startLabelled() {
	ctx := pprof.WithLabels(context.Background(), pprof.Labels("handler", "/api/orders", "tenant id", `acme "eu"`))
	pprof.Do(ctx, pprof.Labels("worker", "7"), func(context.Context) {
		go labelledWorker(make(chan int))
	})
}

//go:noinline
func labelledWorker(ch chan int) { <-ch }

type point struct {
	x, y int
	name string
}

//go:noinline
func deep(n int, ch chan int) int {
	if n == 0 {
		return <-ch
	}
	return deep(n-1, ch) + 1
}

//go:noinline
func manyArgs(a, b, c, d, e, f, g, h, i, j, k, l int, ch chan int) int {
	<-ch
	return a + b + c + d + e + f + g + h + i + j + k + l
}

//go:noinline
func structArg(p point, q [2]int, s []byte, ch chan int) int {
	<-ch
	return p.x + q[1] + len(s)
}

//go:noinline
func genericWait[T any](v T, ch chan T) T {
	return <-ch
}

type server struct{ n int }

//go:noinline
func (s *server) loop(ch chan int) { s.n += <-ch }

// startFormats starts goroutines in many states and with odd frames;
// stop unblocks them.
func startFormats() (stop func()) {
	startLabelled()
	var wg sync.WaitGroup
	ch := make(chan int)
	gos := []func(){
		func() { deep(150, ch) },
		func() { manyArgs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ch) },
		func() { structArg(point{1, 2, "p"}, [2]int{3, 4}, []byte("ab"), ch) },
		func() { genericWait(point{}, make(chan point)) },
		func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-ch
		},
		func() { var c chan int; <-c },
		func() { select {} },
		func() { ch <- 1 },
	}
	srv := &server{}
	go srv.loop(ch)
	var wgWait sync.WaitGroup
	wgWait.Add(1)
	go wgWait.Wait()
	cond := sync.NewCond(new(sync.Mutex))
	go func() {
		cond.L.Lock()
		cond.Wait()
		cond.L.Unlock()
	}()
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		go func() {
			c, err := ln.Accept()
			if err == nil {
				var b [1]byte
				c.Read(b[:]) // IO wait
			}
		}()
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			_ = c // kept open: the server side blocks in Read
		}
	}
	for _, f := range gos {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	time.Sleep(100 * time.Millisecond)
	// The process exits after the dump; nothing needs to be unblocked.
	return func() {}
}
