package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func init() {
	register(section{
		name: "detect",
		help: "breach onset to trigger latency over repeated spikes, default rules",
		run:  runDetect,
	})
}

// runDetect starts a monitor at its defaults, lets it warm up on a quiet
// process, then starts and stops a lock-wait spike again and again, and
// times each spike's onset to the breach that reports it.
func runDetect(w io.Writer, quick bool) error {
	spikes := 15
	if quick {
		spikes = 4
	}
	dir, err := os.MkdirTemp("", "lockdiag-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	m, err := diag.New(diag.Config{Dir: dir})
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	defer m.Stop()
	sub := m.Subscribe(1 << 14)
	defer sub.Close()

	// Warm-up: the default rules need 10s and their baselines.
	quiet(sub, 11*time.Second)

	var sample, receipt []float64
	missed := 0
	for i := range spikes {
		ctx, cancel := context.WithCancel(context.Background())
		onset := time.Now()
		wait := contention.Mutex(ctx, 12, time.Millisecond)
		ev, ok := awaitEvent(sub, diag.EventBreach, 5*time.Second)
		got := time.Now()
		// Keep the spike going a little, as real ones do, then stop it
		// and wait for the rule to clear.
		hold := time.NewTimer(time.Second)
		<-hold.C
		cancel()
		wait()
		if !ok {
			missed++
			fmt.Fprintf(os.Stderr, "bench: detect: spike %d: no breach within 5s\n", i)
			continue
		}
		sample = append(sample, float64(ev.Time.Sub(onset))/1e6)
		receipt = append(receipt, float64(got.Sub(onset))/1e6)
		if _, ok := awaitEvent(sub, diag.EventRecovered, 10*time.Second); !ok {
			return fmt.Errorf("spike %d never recovered", i)
		}
		quiet(sub, time.Second)
	}

	fmt.Fprintf(w, "## Detection latency\n\n")
	fmt.Fprintf(w, "A monitor at its defaults (100ms interval, default rules `%s`) on a quiet process; then %d times: 12 goroutines start\n", diag.DefaultRules, spikes)
	fmt.Fprintf(w, "taking turns on one `sync.Mutex` held 1ms each (mutex_wait jumps from ~0 to ~10), for 1s after the breach, then stop.\n")
	fmt.Fprintf(w, "Latency is from the spike's first Lock to the sample that breached (trigger), and to the breach event reaching a subscriber.\n\n")
	fmt.Fprintf(w, "| measure | median | p95 | max | goal |\n|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| onset → trigger (breaching sample) | %s | %s | %s | ≤ 250 ms median |\n", ms(median(sample)), ms(percentile(sample, 95)), ms(percentile(sample, 100)))
	fmt.Fprintf(w, "| onset → breach event delivered | %s | %s | %s | |\n", ms(median(receipt)), ms(percentile(receipt, 95)), ms(percentile(receipt, 100)))
	fmt.Fprintf(w, "\nSpikes detected: %d of %d.\n\n", len(sample), spikes)
	return nil
}

// quiet drains events for d.
func quiet(sub *diag.Subscription, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-sub.C():
		case <-t.C:
			return
		}
	}
}

// awaitEvent returns the next event of type ty, or false after timeout.
func awaitEvent(sub *diag.Subscription, ty diag.EventType, timeout time.Duration) (diag.Event, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return diag.Event{}, false
			}
			if ev.Type == ty {
				return ev, true
			}
		case <-t.C:
			return diag.Event{}, false
		}
	}
}
