// Command gentraces writes the execution traces that the flightrec analyzer
// tests read. Each workload runs in its own process (the program re-executes
// itself), so that goroutines, timers and connections of one workload never
// show up in another's trace.
//
// Usage:
//
//	go run ./flightrec/internal/gentraces -out flightrec/testdata
//	go run ./flightrec/internal/gentraces -out /tmp/x -only mutex,io
//
// The workloads are built from named, non-inlined functions so that tests can
// assert on the function names the analyzer reports (main.mutexHolderSave,
// main.mutexWaiterGet, ...). Traces are timing dependent: a regenerated file
// differs from the committed one, but the tests must hold on any run.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"sort"
	"strings"
	"sync"
	"time"
)

// workload runs for about d and returns when every goroutine it started has
// exited.
type workload struct {
	run      func(d time.Duration)
	d        time.Duration
	flight   bool // record with a FlightRecorder instead of trace.Start
	maxProcs int
}

var workloads = map[string]workload{
	"mutex":        {run: mutexWorkload, d: 150 * time.Millisecond, maxProcs: 2},
	"rwmutex":      {run: rwmutexWorkload, d: 120 * time.Millisecond, maxProcs: 2},
	"starvation":   {run: starvationWorkload, d: 150 * time.Millisecond, maxProcs: 6},
	"convoy":       {run: convoyWorkload, d: 120 * time.Millisecond, maxProcs: 2},
	"io":           {run: ioWorkload, d: 150 * time.Millisecond, maxProcs: 2},
	"nocontention": {run: noContentionWorkload, d: 150 * time.Millisecond, maxProcs: 2},
	"mixed":        {run: mixedWorkload, d: 120 * time.Millisecond, maxProcs: 2},
	"syscall":      {run: syscallWorkload, d: 150 * time.Millisecond, maxProcs: 2},
	"preblocked":   {run: nil, flight: true, maxProcs: 2},
	// bench is not a fixture (several MB): run it with -only bench.
	"bench": {run: benchWorkload, d: 500 * time.Millisecond, maxProcs: 2},
}

// notFixture are workloads that run only when named with -only.
var notFixture = map[string]bool{"bench": true}

func main() {
	out := flag.String("out", "testdata", "directory to write <workload>.trace files to")
	only := flag.String("only", "", "comma-separated workloads to run (default: all)")
	child := flag.String("child", "", "internal: run this one workload and write its trace to -out")
	flag.Parse()

	if *child != "" {
		if err := runChild(*child, *out); err != nil {
			fmt.Fprintln(os.Stderr, "gentraces:", err)
			os.Exit(1)
		}
		return
	}

	names := make([]string, 0, len(workloads))
	for name := range workloads {
		if !notFixture[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentraces:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gentraces:", err)
		os.Exit(1)
	}
	failed := false
	for _, name := range names {
		if _, ok := workloads[name]; !ok {
			fmt.Fprintf(os.Stderr, "gentraces: unknown workload %q\n", name)
			failed = true
			continue
		}
		file := filepath.Join(*out, name+".trace")
		// A workload that does not finish in a minute is a bug in it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, self, "-child", name, "-out", file)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gentraces: %s: %v\n", name, err)
			failed = true
			continue
		}
		if fi, err := os.Stat(file); err == nil {
			fmt.Printf("%-14s %7d bytes  %s\n", name, fi.Size(), file)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func runChild(name, file string) error {
	w := workloads[name]
	runtime.GOMAXPROCS(w.maxProcs)
	var buf bytes.Buffer
	if w.flight {
		if err := preblockedWorkload(&buf); err != nil {
			return err
		}
	} else {
		if err := trace.Start(&buf); err != nil {
			return err
		}
		w.run(w.d)
		trace.Stop()
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// spin burns CPU for about d without blocking.
//
//go:noinline
func spin(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i := 0; i < 50; i++ {
			sink++
		}
	}
}

var sink int

// group runs fns in goroutines until stop is closed and waits for them.
type group struct {
	wg   sync.WaitGroup
	stop chan struct{}
}

func newGroup() *group { return &group{stop: make(chan struct{})} }

func (g *group) loop(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case <-g.stop:
				return
			default:
			}
			fn()
		}
	}()
}

func (g *group) runFor(d time.Duration) {
	time.Sleep(d)
	close(g.stop)
	g.wg.Wait()
}

// ---- mutex: one Mutex, a slow writer and many quick readers ----

type inventory struct {
	mu    sync.Mutex
	items map[int]int
}

//go:noinline
func mutexWaiterGet(inv *inventory, k int) int {
	inv.mu.Lock()
	v := inv.items[k]
	inv.mu.Unlock()
	return v
}

//go:noinline
func mutexHolderSave(inv *inventory) {
	inv.mu.Lock()
	spin(400 * time.Microsecond)
	inv.items[len(inv.items)%64]++
	inv.mu.Unlock()
}

func mutexWorkload(d time.Duration) {
	inv := &inventory{items: map[int]int{}}
	g := newGroup()
	for i := 0; i < 8; i++ {
		g.loop(func() {
			mutexWaiterGet(inv, i)
			spin(10 * time.Microsecond)
			time.Sleep(50 * time.Microsecond)
		})
	}
	g.loop(func() {
		mutexHolderSave(inv)
		time.Sleep(300 * time.Microsecond)
	})
	g.runFor(d)
}

// ---- rwmutex: read-mostly map behind an RWMutex ----

type catalog struct {
	mu    sync.RWMutex
	items map[int]int
}

//go:noinline
func rwReaderLookup(c *catalog, k int) int {
	c.mu.RLock()
	v := c.items[k]
	spin(20 * time.Microsecond)
	c.mu.RUnlock()
	return v
}

//go:noinline
func rwWriterUpdate(c *catalog, k int) {
	c.mu.Lock()
	c.items[k]++
	spin(200 * time.Microsecond)
	c.mu.Unlock()
}

func rwmutexWorkload(d time.Duration) {
	c := &catalog{items: map[int]int{}}
	g := newGroup()
	for i := 0; i < 8; i++ {
		g.loop(func() {
			rwReaderLookup(c, i)
			spin(10 * time.Microsecond)
		})
	}
	g.loop(func() {
		rwWriterUpdate(c, 1)
		time.Sleep(2 * time.Millisecond)
	})
	g.runFor(d)
}

// ---- starvation: long read sections keep a writer waiting ----

type index struct {
	mu   sync.RWMutex
	keys []int
}

//go:noinline
func starveReaderScan(ix *index) {
	ix.mu.RLock()
	spin(8 * time.Millisecond)
	_ = len(ix.keys)
	ix.mu.RUnlock()
}

//go:noinline
func starveWriterPut(ix *index, k int) {
	ix.mu.Lock()
	ix.keys = append(ix.keys[:0], k)
	ix.mu.Unlock()
}

func starvationWorkload(d time.Duration) {
	ix := &index{}
	g := newGroup()
	for i := 0; i < 4; i++ {
		g.loop(func() {
			starveReaderScan(ix)
			time.Sleep(time.Duration(i) * 500 * time.Microsecond)
		})
	}
	g.loop(func() {
		starveWriterPut(ix, 1)
		time.Sleep(time.Millisecond)
	})
	g.runFor(d)
}

// ---- convoy: one writer Unlock wakes many readers at once ----

type config struct {
	mu   sync.RWMutex
	vals map[string]string
}

//go:noinline
func convoyReader(c *config) string {
	c.mu.RLock()
	v := c.vals["k"]
	spin(30 * time.Microsecond)
	c.mu.RUnlock()
	return v
}

//go:noinline
func convoyWriter(c *config) {
	c.mu.Lock()
	c.vals["k"] = "v"
	spin(300 * time.Microsecond)
	c.mu.Unlock()
}

func convoyWorkload(d time.Duration) {
	c := &config{vals: map[string]string{}}
	g := newGroup()
	for i := 0; i < 16; i++ {
		g.loop(func() {
			convoyReader(c)
			time.Sleep(50 * time.Microsecond)
		})
	}
	g.loop(func() {
		convoyWriter(c)
		time.Sleep(time.Millisecond)
	})
	g.runFor(d)
}

// ---- io: a lock held across a loopback net/http call ----

type cache struct {
	mu     sync.Mutex
	data   map[string]string
	client *http.Client
	url    string
}

//go:noinline
func ioBackendHandler(w http.ResponseWriter, r *http.Request) {
	time.Sleep(2 * time.Millisecond)
	io.WriteString(w, "ok")
}

//go:noinline
func ioHolderRefresh(c *cache) {
	c.mu.Lock()
	resp, err := c.client.Get(c.url)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.data["k"] = string(b)
	}
	c.mu.Unlock()
}

//go:noinline
func ioWaiterGet(c *cache) string {
	c.mu.Lock()
	v := c.data["k"]
	c.mu.Unlock()
	return v
}

func ioWorkload(d time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(ioBackendHandler)}
	go srv.Serve(ln)
	tr := &http.Transport{}
	c := &cache{data: map[string]string{}, client: &http.Client{Transport: tr}, url: "http://" + ln.Addr().String() + "/"}
	ioHolderRefresh(c) // warm the connection up before contention starts
	g := newGroup()
	for i := 0; i < 6; i++ {
		g.loop(func() {
			ioWaiterGet(c)
			time.Sleep(200 * time.Microsecond)
		})
	}
	g.loop(func() {
		ioHolderRefresh(c)
		time.Sleep(time.Millisecond)
	})
	g.runFor(d)
	tr.CloseIdleConnections()
	srv.Close()
}

// ---- syscall: a lock held across file writes and fsync ----

type journal struct {
	mu   sync.Mutex
	f    *os.File
	buf  []byte
	seen int
}

//go:noinline
func syscallHolderFlush(j *journal) {
	j.mu.Lock()
	j.f.WriteAt(j.buf, 0)
	j.f.Sync()
	j.mu.Unlock()
}

//go:noinline
func syscallWaiterAppend(j *journal) {
	j.mu.Lock()
	j.seen++
	j.mu.Unlock()
}

func syscallWorkload(d time.Duration) {
	f, err := os.CreateTemp("", "gentraces-journal-*")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	j := &journal{f: f, buf: make([]byte, 4<<20)}
	g := newGroup()
	for i := 0; i < 4; i++ {
		g.loop(func() {
			syscallWaiterAppend(j)
			time.Sleep(200 * time.Microsecond)
		})
	}
	g.loop(func() {
		syscallHolderFlush(j)
		time.Sleep(time.Millisecond)
	})
	g.runFor(d)
}

// ---- nocontention: CPU, sleeps and a channel ping-pong, no shared lock ----

//go:noinline
func cpuWorker() { spin(500 * time.Microsecond) }

//go:noinline
func sleeper() { time.Sleep(700 * time.Microsecond) }

//go:noinline
func pingSender(ping chan<- int, pong <-chan int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			close(ping)
			return
		default:
		}
		ping <- i
		<-pong
		time.Sleep(100 * time.Microsecond)
	}
}

//go:noinline
func pongReceiver(ping <-chan int, pong chan<- int) {
	for v := range ping {
		pong <- v
	}
}

func noContentionWorkload(d time.Duration) {
	g := newGroup()
	g.loop(cpuWorker)
	g.loop(sleeper)
	ping, pong := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() { pongReceiver(ping, pong); close(done) }()
	g.wg.Add(1)
	go func() { defer g.wg.Done(); pingSender(ping, pong, g.stop) }()
	g.runFor(d)
	<-done
}

// ---- mixed: chan send/receive, select, WaitGroup and Cond waits ----

// chanSender sends on an unbuffered channel faster than chanSlowReceiver
// takes: its sends wait ("chan send") until the receiver wakes them.
//
//go:noinline
func chanSender(ch chan<- int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			close(ch)
			return
		default:
		}
		ch <- i
	}
}

//go:noinline
func chanSlowReceiver(ch <-chan int) {
	for range ch {
		time.Sleep(500 * time.Microsecond)
	}
}

//go:noinline
func chanIdleReceiver(ch <-chan int) {
	for range ch {
	}
}

//go:noinline
func chanProducer(ch chan<- int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			close(ch)
			return
		default:
		}
		spin(300 * time.Microsecond)
		ch <- i
	}
}

//go:noinline
func selectWaiter(a, b <-chan int, stop <-chan struct{}) {
	for {
		select {
		case <-a:
		case <-b:
		case <-stop:
			return
		}
	}
}

//go:noinline
func selectFeeder(a chan<- int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		spin(200 * time.Microsecond)
		select {
		case a <- 1:
		case <-stop:
			return
		}
	}
}

//go:noinline
func wgWorker(wg *sync.WaitGroup) {
	spin(400 * time.Microsecond)
	wg.Done()
}

//go:noinline
func wgWaiter(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go wgWorker(&wg)
		}
		wg.Wait()
	}
}

type signal struct {
	mu    sync.Mutex
	cond  *sync.Cond
	ready int
	done  bool
}

//go:noinline
func condWaiter(s *signal) {
	s.mu.Lock()
	seen := s.ready
	for s.ready == seen && !s.done {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

//go:noinline
func condSignaler(s *signal) {
	spin(300 * time.Microsecond)
	s.mu.Lock()
	s.ready++
	s.cond.Broadcast()
	s.mu.Unlock()
}

func mixedWorkload(d time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	sendCh := make(chan int)
	start(func() { chanSender(sendCh, stop) })
	start(func() { chanSlowReceiver(sendCh) })
	recvCh := make(chan int)
	start(func() { chanIdleReceiver(recvCh) })
	start(func() { chanProducer(recvCh, stop) })
	a, b := make(chan int), make(chan int)
	start(func() { selectWaiter(a, b, stop) })
	start(func() { selectFeeder(a, stop) })
	start(func() { wgWaiter(stop) })
	s := &signal{}
	s.cond = sync.NewCond(&s.mu)
	for i := 0; i < 2; i++ {
		start(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				condWaiter(s)
			}
		})
	}
	start(func() {
		for {
			select {
			case <-stop:
				s.mu.Lock()
				s.done = true
				s.cond.Broadcast()
				s.mu.Unlock()
				return
			default:
			}
			condSignaler(s)
		}
	})
	time.Sleep(d)
	close(stop)
	wg.Wait()
}

// ---- bench: the densest lock trace, for measuring analysis speed ----

//go:noinline
func benchCritical(mu *sync.Mutex) {
	mu.Lock()
	sink++
	runtime.Gosched() // every other goroutine parks on the lock
	mu.Unlock()
}

func benchWorkload(d time.Duration) {
	var mu sync.Mutex
	g := newGroup()
	for i := 0; i < 32; i++ {
		g.loop(func() { benchCritical(&mu) })
	}
	g.runFor(d)
}

// ---- preblocked: goroutines already blocked when the window starts ----

//go:noinline
func preblockedHolder(mu *sync.Mutex, locked chan<- struct{}, release <-chan struct{}) {
	mu.Lock()
	close(locked)
	<-release
	mu.Unlock()
}

//go:noinline
func preblockedWaiter(mu *sync.Mutex) {
	mu.Lock()
	sink++
	mu.Unlock()
}

//go:noinline
func stuckWaiter(mu *sync.Mutex) {
	mu.Lock()
	sink++
	mu.Unlock()
}

// preblockedWorkload blocks goroutines before the flight recorder starts:
// waiter A is released in the first generation (it appears lazily, without
// a stack), waiter B after a generation switch (it appears in the status
// events with its full stack), and waiter C is still blocked when the window
// is written (its wait is open at the window's end).
func preblockedWorkload(out io.Writer) error {
	var muA, muB, muC sync.Mutex
	relA, relB, relC := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for _, x := range []struct {
		mu  *sync.Mutex
		rel chan struct{}
	}{{&muA, relA}, {&muB, relB}, {&muC, relC}} {
		locked := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); preblockedHolder(x.mu, locked, x.rel) }()
		<-locked
		if x.mu == &muC {
			go func() { defer wg.Done(); stuckWaiter(x.mu) }()
		} else {
			go func() { defer wg.Done(); preblockedWaiter(x.mu) }()
		}
	}
	time.Sleep(20 * time.Millisecond) // let the waiters park

	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: time.Minute})
	if err := fr.Start(); err != nil {
		return err
	}
	time.Sleep(10 * time.Millisecond)
	close(relA)
	time.Sleep(10 * time.Millisecond)
	// WriteTo forces a generation switch: B is still blocked across it.
	if _, err := fr.WriteTo(io.Discard); err != nil {
		return err
	}
	time.Sleep(10 * time.Millisecond)
	close(relB)
	time.Sleep(10 * time.Millisecond)
	_, err := fr.WriteTo(out)
	fr.Stop()
	close(relC)
	wg.Wait()
	return err
}
