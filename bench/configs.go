package main

import (
	"context"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/flightrec"
)

// A config is what runs beside a workload: nothing, the bare flight
// recorder, or lockdiag.
type config struct {
	name  string
	start func() (*running, error)
}

// running is a started config.
type running struct {
	started time.Time
	rec     *flightrec.Recorder
	mon     *diag.Monitor
	stop    func()
}

// traceRate returns the bytes per second the recorder wrote since it
// started, measured with a snapshot (only meaningful while the window
// still holds everything since the start, i.e. in the first 10s), or 0.
func (r *running) traceRate() float64 {
	if r.rec == nil {
		return 0
	}
	data, err := r.rec.Window(context.Background())
	if err != nil {
		return 0
	}
	return float64(len(data)) / time.Since(r.started).Seconds()
}

func nothingConfig(name string) config {
	return config{name: name, start: func() (*running, error) {
		return &running{started: time.Now(), stop: func() {}}, nil
	}}
}

// bareRecorderConfig is the stdlib flight recorder alone, at the
// defaults lockdiag uses (10s window, 10 MiB).
func bareRecorderConfig() config {
	return config{name: "bare recorder", start: func() (*running, error) {
		r := flightrec.New(flightrec.Config{})
		t := time.Now()
		if err := r.Start(); err != nil {
			return nil, err
		}
		return &running{started: t, rec: r, stop: r.Stop}, nil
	}}
}

// fullConfig is lockdiag at its defaults with the recorder always on (its
// memory and snapshot worst case: a full window), writing snapshots under
// dir.
func fullConfig(dir string) config {
	return monitorConfig("full defaults", diag.Config{Dir: dir, Trace: diag.TraceOn})
}

func monitorConfig(name string, cfg diag.Config) config {
	return config{name: name, start: func() (*running, error) {
		m, err := diag.New(cfg)
		if err != nil {
			return nil, err
		}
		t := time.Now()
		if err := m.Start(); err != nil {
			return nil, err
		}
		return &running{started: t, mon: m, stop: m.Stop}, nil
	}}
}
