// Command counter is the classic lock-contention bug: every request of an
// HTTP service updates a global map behind one sync.Mutex, and does its
// slow work while holding it. With -load (the default) it also loads
// itself, so one command shows lockdiag at work:
//
//	go run ./examples/counter
//	curl 127.0.0.1:6061/debug/locks
//	curl -X POST 127.0.0.1:6061/debug/locks/snapshots
//	curl 127.0.0.1:6061/debug/locks/snapshots/latest
package main

import (
	"context"
	"crypto/sha256"
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

	"github.com/lockdiag/lockdiag/diag/auto"
	"github.com/lockdiag/lockdiag/examples/internal/demo"
)

var (
	mu     sync.Mutex
	counts = make(map[string]int)
)

// countHit is the hot spot: it holds the one global lock while it
// computes a checksum that does not need the lock at all.
func countHit(key string, work int) [32]byte {
	mu.Lock()
	defer mu.Unlock()
	counts[key]++
	sum := sha256.Sum256([]byte(key))
	for range work {
		sum = sha256.Sum256(sum[:])
	}
	return sum
}

func handleHit(work int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("k")
		sum := countHit(key, work)
		fmt.Fprintf(w, "%x\n", sum[:4])
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the service listens on")
	load := flag.Bool("load", true, "load the service from inside the process")
	clients := flag.Int("clients", 32, "concurrent clients of the built-in load")
	work := flag.Int("work", 200, "sha256 rounds done while holding the lock (about 0.3µs each)")
	duration := flag.Duration("duration", 0, "stop after this long (0 runs until interrupted)")
	flag.Parse()
	if err := run(*addr, *load, *clients, *work, *duration); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, load bool, clients, work int, duration time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("counter: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hit", handleHit(work))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Printf("counter: serving on http://%s/hit\n", ln.Addr())

	ends := "runs until Ctrl-C"
	if duration > 0 {
		ends = fmt.Sprintf("runs for %v, then exits (or until Ctrl-C)", duration)
	}
	demo.Intro("counter", ends, auto.Addr())
	start := time.Now()
	if d := auto.Addr(); d != "" {
		fmt.Printf(`lockdiag is watching. In another terminal:
  curl %[1]s/debug/locks                                  # status: mutex_wait, waiters, sites
  curl -X POST %[1]s/debug/locks/snapshots                # take a snapshot now
  curl %[1]s/debug/locks/snapshots/latest                 # its report
  curl -o s.zip %[1]s/debug/locks/snapshots/latest.zip    # the bundle (trace.out, mutex.pb.gz, ...)
`, "http://"+d)
	} else {
		fmt.Println("lockdiag has no listener of its own (see LOCKDIAG_ADDR)")
	}

	var wg sync.WaitGroup
	var done atomic.Int64
	if load {
		url := fmt.Sprintf("http://%s/hit", ln.Addr())
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hammer(ctx, client, fmt.Sprintf("%s?k=key%d", url, i%4), &done)
			}()
		}
		go report(ctx, &done)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("counter: %w", err)
	}
	wg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("counter: shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("counter: %w", err)
	}
	fmt.Printf("counter: %d requests served\n", done.Load())
	var results []demo.Result
	if m := auto.Monitor(); m != nil {
		for _, s := range m.Snapshots() {
			if !s.Time.Before(start) {
				results = append(results, demo.Result{Snapshot: s})
			}
		}
		if len(results) > 0 {
			demo.Done("counter", m, results...)
		}
	}
	return nil
}

// hammer sends requests until ctx ends.
func hammer(ctx context.Context, client *http.Client, url string, done *atomic.Int64) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			log.Printf("counter: %v", err)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Printf("counter: %v", err)
				time.Sleep(100 * time.Millisecond) // back off; the server may be restarting
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done.Add(1)
	}
}

// report prints the request rate every 5 seconds.
func report(ctx context.Context, done *atomic.Int64) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n := done.Load()
			fmt.Printf("counter: %d requests/s\n", (n-last)/5)
			last = n
		}
	}
}
