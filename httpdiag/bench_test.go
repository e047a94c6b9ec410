package httpdiag

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
)

// BenchmarkStatusHandler measures GET /debug/locks with a full minute of
// timeline (600 samples at 100ms) and a few stored snapshots.
func BenchmarkStatusHandler(b *testing.B) {
	m, err := diag.New(diag.Config{Dir: b.TempDir(), Rules: diag.DefaultRules, Interval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	for range 3 {
		if _, err := m.Snapshot(b.Context(), diag.SnapshotOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	// Let the timeline fill: 6s at 10ms is 600 samples.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		tick := time.NewTimer(100 * time.Millisecond)
		<-tick.C
	}
	h := Handler(m, Options{})
	for _, target := range []string{"/debug/locks", "/debug/locks?format=json"} { // metrics: promdiag
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", target, nil)
				r.RemoteAddr = "127.0.0.1:1"
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%s: %d", target, w.Code)
				}
			}
		})
	}
}
