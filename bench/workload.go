package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// A workload runs in the background until closed and counts what it
// does; begin and end bracket a measurement window.
type workload struct {
	name string
	desc string
	unit string // "ops/s", "req/s"

	count func() int64 // operations so far
	// latOn and latOff, if set, start and stop keeping per-operation
	// latencies.
	latOn  func()
	latOff func() []time.Duration
	close  func()

	t0 time.Time
	n0 int64
	w0 float64
	c0 float64
}

// A window is what a workload did between begin and end.
type window struct {
	elapsed time.Duration
	ops     int64
	rate    float64         // ops per second
	cpu     float64         // CPUs this process used
	perCPU  float64         // ops per CPU-second of this process
	wait    float64         // seconds of lock wait per second (runtime/metrics)
	lat     []time.Duration // per-operation latencies, if kept
}

func (w *workload) begin() {
	if w.latOn != nil {
		w.latOn()
	}
	w.w0 = lockWaitSeconds()
	w.n0 = w.count()
	w.c0 = selfCPU()
	w.t0 = time.Now()
}

func (w *workload) end() window {
	n := w.count()
	el := time.Since(w.t0)
	cpu := selfCPU() - w.c0
	r := window{elapsed: el, ops: n - w.n0, rate: float64(n-w.n0) / el.Seconds(), wait: (lockWaitSeconds() - w.w0) / el.Seconds(), cpu: cpu / el.Seconds()}
	if cpu > 0 {
		r.perCPU = float64(r.ops) / cpu
	}
	if w.latOff != nil {
		r.lat = w.latOff()
	}
	return r
}

// p returns the p-th percentile of the window's latencies.
func (r window) p(pc float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	xs := make([]float64, len(r.lat))
	for i, d := range r.lat {
		xs[i] = float64(d)
	}
	return time.Duration(percentile(xs, pc))
}

var waitSample = []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}

// lockWaitSeconds returns the runtime's total of lock wait, in seconds.
func lockWaitSeconds() float64 {
	metrics.Read(waitSample)
	if waitSample[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return waitSample[0].Value.Float64()
}

// slot is a per-goroutine counter on its own cache line, so that counting
// does not add contention of its own.
type slot struct {
	n atomic.Int64
	_ [56]byte
}

type slots []slot

func (s slots) sum() int64 {
	var t int64
	for i := range s {
		t += s[i].n.Load()
	}
	return t
}

// sink keeps the results of spin alive.
var sink atomic.Uint64

// spin does n rounds of xorshift: CPU work that touches no memory.
//
//go:noinline
func spin(n int, x uint64) uint64 {
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var (
	calibrateOnce sync.Once
	roundsPerUs   int
)

// spinRounds returns how many rounds of spin take about d, measured once
// (the fastest of several runs, so that a preempted run does not count).
func spinRounds(d time.Duration) int {
	calibrateOnce.Do(func() {
		const n = 1 << 18
		best := time.Duration(1 << 62)
		for range 9 {
			t := time.Now()
			sink.Add(spin(n, 1))
			best = min(best, time.Since(t))
		}
		roundsPerUs = max(1, int(float64(n)*1e3/float64(best)))
	})
	return max(1, int(float64(roundsPerUs)*float64(d)/1e3))
}

// startFastPath runs 8 goroutines that take one sync.Mutex for a tiny
// critical section (an increment) and do about 100ns of work outside it:
// the lock is mostly taken on its fast path, rarely parked.
func startFastPath() *workload {
	const goroutines = 8
	outside := spinRounds(100 * time.Nanosecond)
	var (
		mu     sync.Mutex
		shared uint64
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	counts := make(slots, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(i + 1)
			for !stop.Load() {
				for range 64 {
					fastPathOp(&mu, &shared)
					x = spin(outside, x)
				}
				counts[i].n.Add(64)
			}
			sink.Add(x)
		}()
	}
	return &workload{
		name:  "fast-path mutex",
		desc:  fmt.Sprintf("%d goroutines, one sync.Mutex, critical section = one increment, ~100ns of work outside", goroutines),
		unit:  "ops/s",
		count: counts.sum,
		close: func() { stop.Store(true); wg.Wait() },
	}
}

//go:noinline
func fastPathOp(mu *sync.Mutex, shared *uint64) {
	mu.Lock()
	*shared++
	mu.Unlock()
}

// startParking runs 64 goroutines that take one sync.Mutex for about 1µs
// of work and do about 1µs outside it: most acquisitions park.
// denseWorkloads start the event-dense workloads, those where the
// recorder costs the most: parking-heavy and HTTP.
var denseWorkloads = []func() (*workload, error){
	func() (*workload, error) { return startParking(), nil },
	func() (*workload, error) { return startHTTP(16) },
}

func startParking() *workload {
	const goroutines = 64
	rounds := spinRounds(time.Microsecond)
	var (
		mu   sync.Mutex
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	counts := make(slots, goroutines)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(i + 1)
			for !stop.Load() {
				x = parkingOp(&mu, rounds, x)
				x = spin(rounds, x)
				counts[i].n.Add(1)
			}
			sink.Add(x)
		}()
	}
	return &workload{
		name:  "parking-heavy mutex",
		desc:  fmt.Sprintf("%d goroutines, one sync.Mutex held ~1µs, ~1µs of work outside", goroutines),
		unit:  "ops/s",
		count: counts.sum,
		close: func() { stop.Store(true); wg.Wait() },
	}
}

//go:noinline
func parkingOp(mu *sync.Mutex, rounds int, x uint64) uint64 {
	mu.Lock()
	x = spin(rounds, x)
	mu.Unlock()
	return x
}

// hitCounter is the service behind the HTTP workload: a map of hit
// counts behind one sync.Mutex, updated by every request, with about
// 1µs of work under the lock.
type hitCounter struct {
	mu     sync.Mutex
	hits   map[string]int
	rounds int
}

func (c *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, x := c.count(r.URL.Query().Get("k"))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d %04x\n", n, x&0xffff)
}

//go:noinline
func (c *hitCounter) count(key string) (int, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hits[key]++
	n := c.hits[key]
	return n, spin(c.rounds, uint64(n))
}

// latencies is one client's record of request latencies, kept only while
// a window is open.
type latencies struct {
	mu  sync.Mutex
	on  bool
	lat []time.Duration
	n   int64
	_   [32]byte
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.n++
	if l.on {
		l.lat = append(l.lat, d)
	}
	l.mu.Unlock()
}

// startHTTP serves hitCounter on a loopback port and runs clients that
// send requests back to back over keep-alive connections.
func startHTTP(clients int) (*workload, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	svc := &hitCounter{hits: make(map[string]int), rounds: spinRounds(time.Microsecond)}
	mux := http.NewServeMux()
	mux.Handle("GET /hit", svc)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	recs := make([]*latencies, clients)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range clients {
		recs[i] = &latencies{lat: make([]time.Duration, 0, 1<<14)}
		url := fmt.Sprintf("http://%s/hit?k=key%d", ln.Addr(), i%8)
		wg.Add(1)
		go func() {
			defer wg.Done()
			httpClient(ctx, client, url, recs[i], &failures)
		}()
	}
	return &workload{
		name: "HTTP service",
		desc: fmt.Sprintf("net/http server on loopback, handler updates a map behind one sync.Mutex (~1µs held); %d keep-alive clients in the same process, back to back", clients),
		unit: "req/s",
		count: func() int64 {
			var n int64
			for _, r := range recs {
				r.mu.Lock()
				n += r.n
				r.mu.Unlock()
			}
			return n
		},
		latOn: func() {
			for _, r := range recs {
				r.mu.Lock()
				r.on, r.lat = true, r.lat[:0]
				r.mu.Unlock()
			}
		},
		latOff: func() []time.Duration {
			var all []time.Duration
			for _, r := range recs {
				r.mu.Lock()
				r.on = false
				all = append(all, r.lat...)
				r.mu.Unlock()
			}
			return all
		},
		close: func() {
			cancel()
			wg.Wait()
			tr.CloseIdleConnections()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			srv.Shutdown(sctx)
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Printf("bench: http workload: %v", err)
			}
			if n := failures.Load(); n > 0 {
				log.Printf("bench: http workload: %d failed requests", n)
			}
		},
	}, nil
}

func httpClient(ctx context.Context, client *http.Client, url string, rec *latencies, failures *atomic.Int64) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			failures.Add(1)
			return
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				failures.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			failures.Add(1)
			continue
		}
		rec.add(time.Since(t0))
	}
}

// startWithIdle adds n idle goroutines to a workload (blocked on a
// channel, like idle connection handlers): the execution tracer records
// every goroutine's state at each generation switch, about once a second.
func startWithIdle(wl *workload, err error) func(n int) (*workload, error) {
	return func(n int) (*workload, error) {
		if err != nil {
			return nil, err
		}
		block := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); <-block }()
		}
		inner := wl.close
		wl.name = fmt.Sprintf("%s + %dk idle goroutines", wl.name, n/1000)
		wl.desc += fmt.Sprintf("; %d more goroutines blocked on a channel", n)
		wl.close = func() { inner(); close(block); wg.Wait() }
		return wl, nil
	}
}
