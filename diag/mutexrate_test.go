package diag

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func TestMutexRateFor(t *testing.T) {
	for _, tt := range []struct {
		events float64
		want   int
	}{
		{0, 100}, {4000, 100}, {5000, 100}, {50_000, 1000}, {700_000, 14_000}, {1e12, maxMutexRate},
	} {
		if got := mutexRateFor(tt.events, 100); got != tt.want {
			t.Errorf("mutexRateFor(%v) = %d, want %d", tt.events, got, tt.want)
		}
	}
}

// TestMutexRateAdapts: under heavy contention the default mutex profile
// fraction rises until it samples about mutexSamplesPerSec events a
// second, and it comes back down when contention ends; a fraction of the
// host's choosing is kept.
func TestMutexRateAdapts(t *testing.T) {
	old := runtime.SetMutexProfileFraction(-1)
	defer runtime.SetMutexProfileFraction(old)
	for _, tt := range []struct {
		name  string
		cfg   int
		adapt bool
	}{{"default", 0, true}, {"chosen", 7, false}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.MutexProfileFraction = tt.cfg
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// What Start sets up for the profiles, without the sampler,
			// so that the captures run here.
			base := tt.cfg
			if base == 0 {
				base = defaultMutexRate
			}
			runtime.SetMutexProfileFraction(base)
			m.mutexRate, m.setMutexRate = base, true
			m.resetSampler()

			t0 := time.Now()
			m.metrics.cumWait = 0
			m.captureProfiles(t0)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			contention.Yielding(ctx, 32)()
			cancel()
			// Pretend a second passed with 10s of lock wait: heavy.
			m.metrics.cumWait = 10
			m.captureProfiles(t0.Add(time.Second))
			raised := m.mutexRate
			if got := runtime.SetMutexProfileFraction(-1); got != raised {
				t.Errorf("the runtime's fraction is %d, the monitor says %d", got, raised)
			}
			if !tt.adapt {
				if raised != base {
					t.Errorf("fraction %d changed to %d; want it kept", base, raised)
				}
				return
			}
			if raised < 4*base {
				t.Fatalf("fraction %d after heavy contention, want at least %d", raised, 4*base)
			}
			// Each read records the fraction in force since the one
			// before, and a span across the change lists both, which the
			// snapshot's report then gives.
			if r := m.latestProfiles().mutex.Rate; r != base {
				t.Errorf("the read before the change recorded fraction %d, want %d", r, base)
			}
			if got := m.mutexFractions(t0, raised); !slices.Equal(got, []int{base, raised}) {
				t.Errorf("fractions since the first read: %v, want [%d %d]", got, base, raised)
			}
			if got := m.mutexFractions(t0.Add(time.Second), raised); got != nil {
				t.Errorf("fractions since the change: %v, want none (one fraction)", got)
			}
			// A quiet second: back to the default.
			m.captureProfiles(t0.Add(2 * time.Second))
			if m.mutexRate != base || runtime.SetMutexProfileFraction(-1) != base {
				t.Errorf("fraction %d (runtime %d) after a quiet second, want %d", m.mutexRate, runtime.SetMutexProfileFraction(-1), base)
			}
		})
	}
}
