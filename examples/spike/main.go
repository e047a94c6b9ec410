// Command spike is a service that runs healthy, then develops a lock-wait
// spike, and recovers: lockdiag notices the spike by itself and takes a
// snapshot whose report names the lock, the waiters and the holder.
//
// The service keeps a price cache behind one sync.Mutex. Every request
// reads it. A refresher reloads the cache from a backend: in the healthy
// phase it fetches outside the lock and swaps under it; in the incident
// phase (a "small refactor") it holds the lock across the slow backend call,
// and every request queues behind it.
//
//	go run ./examples/spike
//
// It runs two cycles (20s healthy, 8s incident each) and exits, about a
// minute in all; -cycles=0 runs until Ctrl-C. The first incident gets an
// automatic snapshot; the second one's breach is logged without one,
// because a rule takes at most one snapshot a minute (LOCKDIAG_COOLDOWN).
// The snapshots stay on disk after it exits: it prints the command that
// reads them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/diag/auto"
	"github.com/lockdiag/lockdiag/examples/internal/demo"
)

// Cache is the shared price cache.
type Cache struct {
	mu     sync.Mutex
	prices map[string]float64
}

// Get returns one price: the waiters' lock site.
func (c *Cache) Get(sku string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.prices[sku]
	return p, ok
}

// refresh fetches outside the lock and swaps under it: the healthy way.
func (c *Cache) refresh(ctx context.Context, backend string) error {
	prices, err := fetchPrices(ctx, backend)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.prices = prices
	c.mu.Unlock()
	return nil
}

// refreshHoldingLock holds the lock across the backend call: the bug.
func (c *Cache) refreshHoldingLock(ctx context.Context, backend string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prices, err := fetchPrices(ctx, backend)
	if err != nil {
		return err
	}
	c.prices = prices
	return nil
}

// fetchPrices calls the backend over HTTP.
func fetchPrices(ctx context.Context, backend string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, backend, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var prices map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&prices); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	return prices, nil
}

func main() {
	healthy := flag.Duration("healthy", 20*time.Second, "length of each healthy phase")
	incident := flag.Duration("incident", 8*time.Second, "length of each incident phase")
	cycles := flag.Int("cycles", 2, "healthy+incident cycles before exiting (0: until interrupted)")
	backendDelay := flag.Duration("backend-delay", 40*time.Millisecond, "how long the backend takes to answer")
	clients := flag.Int("clients", 16, "concurrent clients of the built-in load")
	flag.Parse()
	if err := run(*healthy, *incident, *cycles, *backendDelay, *clients); err != nil {
		log.Fatal(err)
	}
}

func run(healthy, incident time.Duration, cycles int, backendDelay time.Duration, clients int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// The events lockdiag reports, printed as they happen.
	m := auto.Monitor()
	if m == nil {
		return errors.New("spike: lockdiag is not running (is LOCKDIAG=off?)")
	}
	sub := m.Subscribe(64)
	defer sub.Close()
	go printEvents(sub, auto.Addr())

	backend, err := serve(ctx, "backend", backendHandler(backendDelay))
	if err != nil {
		return err
	}
	cache := &Cache{prices: map[string]float64{}}
	var incidentOn atomic.Bool
	front, err := serve(ctx, "service", frontHandler(cache))
	if err != nil {
		return err
	}
	ends := "runs until Ctrl-C"
	if cycles > 0 {
		total := time.Duration(cycles) * (healthy + incident)
		n := fmt.Sprintf("%d cycles", cycles)
		if cycles == 1 {
			n = "1 cycle"
		}
		ends = fmt.Sprintf("%s of %v healthy and %v incident, then it exits (%v in all; -cycles=0 runs until Ctrl-C)", n, healthy, incident, total)
	}
	demo.Intro("spike", ends, auto.Addr())
	fmt.Printf("spike: service on http://%s/price, backend on http://%s\n", front, backend)
	fmt.Println("spike: lines that start with time= are lockdiag's own log (LOCKDIAG_LOG=warn keeps only breaches); lines that start with lockdiag: are this demo's")
	start := time.Now()
	if old := len(m.Snapshots()); old > 0 {
		fmt.Printf("spike: %d snapshots of earlier runs are in %s; lockdiag lists them too (it keeps %d)\n", old, m.Config().Dir, m.Config().Keep)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		refresher(ctx, cache, "http://"+backend+"/prices", &incidentOn)
	}()
	var served atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load(ctx, "http://"+front+"/price?sku=sku-7", &served)
		}()
	}

	for c := 0; cycles == 0 || c < cycles; c++ {
		fmt.Printf("spike: healthy for %v (the refresher swaps under the lock)\n", healthy)
		if !sleep(ctx, healthy) {
			break
		}
		fmt.Printf("spike: INCIDENT for %v: the refresher now holds the lock across a %v backend call\n", incident, backendDelay)
		incidentOn.Store(true)
		ok := sleep(ctx, incident)
		incidentOn.Store(false)
		if !ok {
			break
		}
		fmt.Println("spike: incident over")
	}
	fmt.Println("spike: stopping")
	stop()
	wg.Wait()
	var mine []diag.SnapshotInfo
	for _, s := range m.Snapshots() {
		if !s.Time.Before(start) {
			mine = append(mine, s)
		}
	}
	var results []demo.Result
	for i := len(mine) - 1; i >= 0; i-- {
		results = append(results, demo.Result{Snapshot: mine[i]})
	}
	if len(results) == 0 {
		fmt.Println("\nspike: done, without a snapshot (was the incident too short, or LOCKDIAG_SLO off?)")
		return nil
	}
	demo.Done("spike", m, results...)
	return nil
}

// refresher reloads the cache every 50ms, the healthy or the buggy way.
func refresher(ctx context.Context, c *Cache, backend string, incident *atomic.Bool) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if incident.Load() {
			err = c.refreshHoldingLock(ctx, backend)
		} else {
			err = c.refresh(ctx, backend)
		}
		if err != nil && ctx.Err() == nil {
			log.Printf("spike: refresh: %v", err)
		}
	}
}

func frontHandler(c *Cache) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/price", func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.Get(r.URL.Query().Get("sku"))
		if !ok {
			http.Error(w, "unknown sku", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%.2f\n", p)
	})
	return mux
}

func backendHandler(delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		prices := make(map[string]float64, 16)
		for i := range 16 {
			prices[fmt.Sprintf("sku-%d", i)] = 9.99 + float64(i)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(prices)
	})
}

// serve starts h on a loopback port until ctx ends.
func serve(ctx context.Context, name string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("spike: %s: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return ln.Addr().String(), nil
}

// load sends requests one after another until ctx ends, pausing a little
// between them as real clients do.
func load(ctx context.Context, url string, served *atomic.Int64) {
	// A transport per client: a shared one's connection pool is a lock of
	// its own, and this demo is about the cache's.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			served.Add(1)
		}
		sleep(ctx, 2*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func printEvents(sub *diag.Subscription, addr string) {
	for ev := range sub.C() {
		switch ev.Type {
		case diag.EventBreach:
			b := ev.Breach
			fmt.Printf("lockdiag: BREACH of %q: %s = %.2f > %.2f\n", b.Rule, b.Signal, b.Value, b.Threshold)
		case diag.EventRecovered:
			b := ev.Breach
			fmt.Printf("lockdiag: recovered: %q after %v (peak %.2f)\n", b.Rule, b.Duration.Round(time.Millisecond), b.Peak)
		case diag.EventSnapshotSkipped:
			fmt.Printf("lockdiag: no snapshot for this breach: %s\n", ev.Reason)
		case diag.EventSnapshot:
			s := ev.Snapshot
			how := "taken on request"
			if s.Trigger.Kind == bundle.TriggerRule {
				how = "taken automatically"
			}
			fmt.Printf("lockdiag: SNAPSHOT %s %s (%v)\n  %s\n", s.ID, how, s.Took, s.Headline)
			if addr != "" {
				fmt.Printf("  report: curl http://%s/debug/locks/snapshots/%s\n  bundle: curl -o s.zip http://%s/debug/locks/snapshots/%s.zip\n", addr, s.ID, addr, s.ID)
			}
		}
	}
}
