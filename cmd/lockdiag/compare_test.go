package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestAgreesWithBlockProfile runs stdlib sync benchmarks that park
// goroutines on locks under "go test -trace -blockprofile
// -blockprofilerate=1", then checks that "lockdiag analyze -json" on the
// trace finds the same total Mutex/RWMutex wait as the block profile of the
// same run, within 25 %.
//
// The block profile records one event per runtime semacquire call that
// parked, from its entry to the semrelease that last readied it
// (runtime/sema.go: t0 and releasetime), so a waiter that is woken, finds
// the semaphore taken and parks again inside the same call is one wait
// that includes the moment in between. The trace merges such re-parks
// (within 5µs of running, lockreport.s mergeWindow) the same way. A waiter
// that gets the semaphore but loses the lock and spins before calling
// semacquire again makes a new wait in both. With a 20µs merge window
// those retries were merged too, and the trace read 5-41 % more than the
// profile; with 5µs it read 0-5 % more (MutexSlack, MutexWorkSlack,
// RWMutexWorkWrite10, three runs each).
// Locks taken by spinning, without parking, are in neither.
//
// The equivalent by hand:
//
//	go test -run='^$' -bench='^BenchmarkMutexSlack$' -benchtime=200ms -cpu=4 \
//	    -trace t.out -blockprofile b.out -blockprofilerate=1 sync
//	lockdiag analyze -json t.out | jq .lock_wait
//	go tool pprof -top -sample_index=delay -focus='sync\.\(\*(RW)?Mutex\)\.R?Lock' b.out
func TestAgreesWithBlockProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sync package's benchmarks")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, tc := range []struct{ bench, cpu string }{
		{"BenchmarkMutexSlack", "4"},
		{"BenchmarkMutexWorkSlack", "4"},
		{"BenchmarkRWMutexWorkWrite10", "4"},
	} {
		t.Run(tc.bench, func(t *testing.T) {
			dir := t.TempDir()
			traceFile, blockFile := filepath.Join(dir, "t.out"), filepath.Join(dir, "b.out")
			cmd := exec.CommandContext(ctx, goTool, "test", "-run=^$", "-bench=^"+tc.bench+"$", "-benchtime=200ms", "-cpu="+tc.cpu,
				"-trace="+traceFile, "-blockprofile="+blockFile, "-blockprofilerate=1", "-o="+filepath.Join(dir, "sync.test"), "sync")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
			}

			rep := decodeReport(t, runCLI(t, nil, nil, "analyze", "-json", traceFile))
			if rep.Partial {
				t.Fatalf("the analysis is partial: %s", rep.PartialReason)
			}
			f, err := os.Open(blockFile)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := profile.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			blockWait, blockCount := lockDelay(t, p)
			traceWait := rep.LockWait
			if blockWait < 10*time.Millisecond {
				t.Fatalf("the block profile has only %v of lock wait (%d waits): the benchmark did not contend", blockWait, blockCount)
			}
			ratio := float64(traceWait) / float64(blockWait)
			t.Logf("%s -cpu=%s: trace %v in %d waits, block profile %v in %d waits, ratio %.3f", tc.bench, tc.cpu,
				traceWait, rep.LockWaits, blockWait, blockCount, ratio)
			if ratio < 0.75 || ratio > 1.25 {
				t.Errorf("trace lock wait %v and block profile lock delay %v differ by more than 25%% (ratio %.3f)", traceWait, blockWait, ratio)
			}
		})
	}
}

// lockDelay sums the block profile's delay and contentions of samples
// whose stack is in sync.Mutex.Lock, RWMutex.Lock or RWMutex.RLock.
func lockDelay(t *testing.T, p *profile.Profile) (time.Duration, int64) {
	t.Helper()
	delayIdx, countIdx := -1, -1
	for i, st := range p.SampleType {
		switch st.Type {
		case "delay":
			delayIdx = i
		case "contentions":
			countIdx = i
		}
	}
	if delayIdx < 0 || countIdx < 0 {
		t.Fatalf("not a block profile: sample types %v", p.SampleType)
	}
	var delay, count int64
	for _, s := range p.Sample {
		if inLock(s) {
			delay += s.Value[delayIdx]
			count += s.Value[countIdx]
		}
	}
	return time.Duration(delay), count
}

func inLock(s *profile.Sample) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function == nil {
				continue
			}
			switch l.Function.Name {
			case "sync.(*Mutex).Lock", "sync.(*RWMutex).Lock", "sync.(*RWMutex).RLock":
				return true
			}
		}
	}
	return false
}
