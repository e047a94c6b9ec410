package lockreport

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// On `go test -trace` of sync's RWMutex benchmarks (4 goroutines per
// RunParallel, each both reading and writing), one writer's Unlock can
// wake at most 3 readers. A convoy burst counts the distinct readers of
// one Unlock call, so it can never exceed that, nor the goroutines alive.
func TestConvoyCountsOnRWMutexBenchmarks(t *testing.T) {
	dir := "../testdata/scenarios/out"
	data, err := os.ReadFile(filepath.Join(dir, "sync-rwmutex.trace"))
	if err != nil {
		t.Skipf("no scenario trace (regenerate testdata/scenarios): %v", err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Scenarios map[string]struct {
			Extra struct {
				AtMost     int `json:"readers_woken_per_unlock_at_most"`
				MaxAlive   int `json:"max_goroutines_alive"`
				PerParalel int `json:"goroutines_per_parallel"`
			} `json:"extra"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(js, &exp); err != nil {
		t.Fatal(err)
	}
	x := exp.Scenarios["sync-rwmutex"].Extra
	if x.AtMost == 0 || x.MaxAlive == 0 {
		t.Fatalf("expect.json lacks sync-rwmutex's extra: %+v", x)
	}

	a := newAnalyzer(Options{}.withDefaults())
	if err := a.run(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	readers := 0
	for _, s := range a.sites.list {
		if s.kind != kindRLock {
			continue
		}
		readers += s.waits
		if s.burstMax > x.AtMost || s.burstMax > x.MaxAlive {
			t.Errorf("%s: a burst of %d readers woken by one Unlock; at most %d can wait (%d goroutines alive at most)",
				s.frame.Func, s.burstMax, x.AtMost, x.MaxAlive)
		}
	}
	if readers == 0 {
		t.Fatal("no RLock waits in the trace")
	}

	rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	upTo := regexp.MustCompile(`up to (\d+), of`)
	for _, f := range rep.Findings {
		if f.Kind != "reader-convoy" {
			continue
		}
		for _, m := range upTo.FindAllStringSubmatch(f.Summary, -1) {
			if n, _ := strconv.Atoi(m[1]); n > x.AtMost {
				t.Errorf("convoy finding counts %d readers at once, more than the %d that exist: %s", n, x.AtMost, f.Summary)
			}
		}
	}
}
