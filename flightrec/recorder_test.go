package flightrec

import (
	"bytes"
	"context"
	"errors"
	"runtime/trace"
	"sync"
	"testing"

	xtrace "golang.org/x/exp/trace"
)

func skipIfTraced(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
}

func TestRecorderLifecycle(t *testing.T) {
	skipIfTraced(t)
	r := New(Config{})
	if c := r.cfg; c.MinAge == 0 || c.MaxBytes != 10<<20 {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := r.Window(context.Background()); !errors.Is(err, ErrNotRecording) {
		t.Errorf("Snapshot before Start: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if !r.Enabled() {
		t.Error("not enabled")
	}
	var buf bytes.Buffer
	if n, err := r.WriteTo(&buf); err != nil || n == 0 || int(n) != buf.Len() {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if _, err := xtrace.NewReader(&buf); err != nil {
		t.Errorf("the window does not parse: %v", err)
	}
	r.Stop()
	r.Stop()
	if r.Enabled() {
		t.Error("enabled after Stop")
	}
	// A restart works.
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
}

func TestRecorderOwnedElsewhere(t *testing.T) {
	skipIfTraced(t)
	host := trace.NewFlightRecorder(trace.FlightRecorderConfig{})
	if err := host.Start(); err != nil {
		t.Skipf("cannot start a flight recorder: %v", err)
	}
	defer host.Stop()
	r := New(Config{})
	err := r.Start()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start while the host records: %v, want ErrUnavailable", err)
	}
	if r.Enabled() || !host.Enabled() {
		t.Errorf("enabled: ours %v, host's %v", r.Enabled(), host.Enabled())
	}
}

// TestRecorderSharedSnapshots: concurrent callers all get the window; the
// runtime itself refuses overlapping writes, so they must share.
func TestRecorderSharedSnapshots(t *testing.T) {
	skipIfTraced(t)
	r := New(Config{})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			data, err := r.Window(context.Background())
			if err == nil && len(data) == 0 {
				err = errors.New("empty window")
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// A caller whose context ends gets its error; the write goes on.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Window(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Snapshot: %v", err)
	}
}
