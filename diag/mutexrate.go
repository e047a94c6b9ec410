package diag

import (
	"runtime"
	"time"

	"github.com/lockdiag/lockdiag/internal/profdelta"
)

// Adapting the mutex profile fraction. With the mutex profile on, the
// runtime times every contended sync.Mutex hand-off and records 1 in
// fraction of them with a stack walk of a few microseconds, on the
// unlocker's path that the waiters wait for: on a lock whose every
// acquisition parks, the default fraction of 100 cost 20 % of the
// throughput (BenchmarkContended cs=yield g=64 with sync.Mutex,
// -mutexprofilefraction 100 against none, 6 runs in turns: 330 against 271
// ns per operation). So where contention is heavy, the monitor raises the
// fraction until it samples about mutexSamplesPerSec events a second, and
// lowers it back as contention ebbs; the profile's values stay scaled to
// all events (the runtime scales each sample by the fraction in force when
// it records it). Only the default fraction adapts; one set in
// Config.MutexProfileFraction (other than 100) is kept.
const (
	// mutexSamplesPerSec is the sampled contention events a second the
	// adapted fraction aims at: enough for a profile delta over a trace
	// window to show the lock sites, a cost of well under a percent.
	mutexSamplesPerSec = 50
	// defaultMutexRate is the default fraction, the one that adapts (a
	// fraction set to another value is kept).
	defaultMutexRate = 100
	// maxMutexRate bounds the fraction.
	maxMutexRate = 1 << 20
	// adaptWaitRate is the lock wait (s/s) below which the profile is not
	// looked at (unless the fraction was raised): light contention costs
	// little at any fraction.
	adaptWaitRate = 0.25
)

// adaptMutexRate sets the mutex profile fraction from the contention events
// between two profile reads. It runs on the sampling goroutine; it acts
// only where the monitor set the fraction itself.
func (m *Monitor) adaptMutexRate(prev, cur rawProfiles) {
	base := defaultMutexRate
	if f := m.cfg.MutexProfileFraction; f != 0 && f != base {
		return // a fraction of the host's choosing is kept
	}
	m.mu.Lock()
	rate, own := m.mutexRate, m.setMutexRate
	m.mu.Unlock()
	dt := cur.time.Sub(prev.time).Seconds()
	if !own || rate <= 0 || dt <= 0 || prev.mutex.Data == nil || cur.mutex.Data == nil {
		return
	}
	if wait := (cur.wait - prev.wait) / dt; rate <= base && !(wait >= adaptWaitRate) {
		return
	}
	d, err := profdelta.Delta(prev.mutex, cur.mutex)
	if err != nil {
		return
	}
	events := float64(profdelta.Total(d, "contentions")) / dt // scaled: all events
	want := mutexRateFor(events, base)
	if want < 2*rate && 2*want > rate {
		return // within a factor of 2: leave it
	}
	if runtime.SetMutexProfileFraction(-1) != rate {
		return // someone else changed it meanwhile
	}
	runtime.SetMutexProfileFraction(want)
	m.mu.Lock()
	m.mutexRate = want
	m.mu.Unlock()
	m.log.Info("diag: mutex profile fraction adapted to the contention", "fraction", want, "was", rate,
		"contention_events_per_second", int64(events), "over", time.Duration(dt*float64(time.Second)).Round(time.Second))
}

// mutexRateFor returns the fraction that samples about mutexSamplesPerSec
// of events contention events a second, at least base.
func mutexRateFor(events float64, base int) int {
	want := base
	if r := events / mutexSamplesPerSec; r > float64(want) {
		want = int(min(r, maxMutexRate))
	}
	return want
}
