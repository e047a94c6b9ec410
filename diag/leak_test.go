package diag

import (
	"context"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/testkit"
)

// TestSnapshotGoroutineLeak leaks a goroutine on a channel that nothing
// else can reach: on Go >= 1.27 the snapshot carries goroutineleak.pb.gz
// naming it; before, the bundle notes that the profile is off. (A channel,
// not a Mutex: the goroutine stays for the rest of the test binary, and a
// goroutine parked on a Mutex for good would be in the lock reports of
// every later test.)
func TestSnapshotGoroutineLeak(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dir = DirOff
	m := startMonitor(t, cfg)
	// The goroutine stays parked for the life of the test binary (TestMain
	// tells goleak): once the runtime has found it leaked, waking it is a
	// fatal error ("bad g->status in ready", go1.27.3), so nothing may
	// send on the channel, not even through a weak pointer.
	leakReceiver()
	testkit.WaitFor(t, 5*time.Second, "the goroutine to park on the channel", func() bool {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		return strings.Contains(s, "[chan receive") && strings.Contains(s, "receiveForever")
	})
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bundle(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	var note bundle.Note
	for _, n := range b.Meta().Collection {
		if n.Part == bundle.GoroutineLeakFile {
			note = n
		}
	}
	if pprof.Lookup("goroutineleak") == nil {
		if note.Status != "off" || b.Has(bundle.GoroutineLeakFile) {
			t.Errorf("%s without the profile: note %+v, file present %v", runtime.Version(), note, b.Has(bundle.GoroutineLeakFile))
		}
		return
	}
	data, err := b.File(bundle.GoroutineLeakFile)
	if err != nil {
		t.Fatalf("%s: %v (note %+v)", runtime.Version(), err, note)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	if !profileHasFunc(p, "receiveForever") {
		t.Errorf("goroutineleak.pb.gz does not name receiveForever (note %+v):\n%s", note, p)
	}
}

// leakReceiver parks a goroutine on a channel that only that goroutine
// can reach.
//
//go:noinline
func leakReceiver() {
	go receiveForever(make(chan int))
}

//go:noinline
func receiveForever(c chan int) {
	<-c
}
