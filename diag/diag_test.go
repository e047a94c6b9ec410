package diag

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.uber.org/goleak"
	xtrace "golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/lockreport"
)

// TestSnapshotGoroutineLeak leaves one goroutine parked for good, on
// purpose.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/lockdiag/lockdiag/diag.receiveForever"))
}

// testConfig is a fast configuration that writes to a test directory.
func testConfig(t *testing.T) Config {
	return Config{
		Interval:            20 * time.Millisecond,
		LockWaitersInterval: 50 * time.Millisecond,
		TraceWindow:         2 * time.Second,
		Dir:                 t.TempDir(),
		// Record every contention: the windows of these tests are short.
		MutexProfileFraction: 1,
		Rules:                RulesOff,
		AnalysisBudget:       10 * time.Second,
		// The trace is the window before each snapshot, as the tests
		// expect; the trace modes have tests of their own.
		Trace: TraceOn,
	}
}

func startMonitor(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func TestSnapshotEndToEnd(t *testing.T) {
	prev := runtime.SetMutexProfileFraction(-1)
	m := startMonitor(t, testConfig(t))
	if got := runtime.SetMutexProfileFraction(-1); got != 1 {
		t.Errorf("mutex profile fraction while running = %d, want 1", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 8, 200*time.Microsecond)
	defer func() { cancel(); wait() }()

	testkit.WaitFor(t, 10*time.Second, "mutex_wait > 0", func() bool {
		s, ok := m.Latest()
		v, measured := s.Get(MutexWait)
		return ok && measured && v > 0
	})
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Reason: "test", Wall: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	wait()

	if !ValidID(info.ID) {
		t.Errorf("id %q is not valid", info.ID)
	}
	if !info.OnDisk || !info.InMemory {
		t.Errorf("OnDisk=%v InMemory=%v, want both", info.OnDisk, info.InMemory)
	}
	data, err := bundleZip(m, "latest")
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, data)
	for _, name := range []string{"meta.json", "report.txt", "report.json", "trace.out", "mutex.pb.gz", "wall.pb.gz", "goroutines.txt", "timeline.json"} {
		if len(files[name]) == 0 {
			t.Errorf("bundle lacks %s (has %v)", name, keys(files))
		}
	}

	// trace.out parses and has sync blocks in the fixture.
	if n := countSyncBlocks(t, files["trace.out"], "contention.HotLockWorker"); n == 0 {
		t.Error("trace.out has no sync block in contention.HotLockWorker")
	}
	// mutex.pb.gz parses and names the fixture as the unlocker.
	p, err := profile.Parse(bytes.NewReader(files["mutex.pb.gz"]))
	if err != nil {
		t.Fatalf("mutex.pb.gz: %v", err)
	}
	if !profileHasFunc(p, "contention.HotLockWorker") {
		t.Errorf("mutex.pb.gz does not name contention.HotLockWorker")
	}
	if p.DurationNanos <= 0 {
		t.Errorf("mutex delta has no duration")
	}
	if _, err := profile.Parse(bytes.NewReader(files["wall.pb.gz"])); err != nil {
		t.Errorf("wall.pb.gz: %v", err)
	}
	// The report names the fixture.
	if !strings.Contains(string(files["report.txt"]), "HotLockWorker") {
		t.Errorf("report.txt does not name HotLockWorker:\n%s", files["report.txt"])
	}
	var meta bundle.Meta
	if err := json.Unmarshal(files["meta.json"], &meta); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	if meta.ID != info.ID || meta.PID != os.Getpid() || meta.MutexProfileFraction == 0 || meta.Trigger.Kind != "manual" {
		t.Errorf("meta = %+v", meta)
	}
	var tl struct {
		Samples []Sample `json:"samples"`
	}
	if err := json.Unmarshal(files["timeline.json"], &tl); err != nil {
		t.Fatalf("timeline.json: %v", err)
	}
	if len(tl.Samples) < 2 {
		t.Errorf("timeline has %d samples", len(tl.Samples))
	}

	// One file at a time, and the on-disk copy.
	rep, err := bundleFile(m, info.ID, "report.txt")
	if err != nil || !bytes.Equal(rep, files["report.txt"]) {
		t.Errorf("SnapshotFile(report.txt) = %d bytes, %v", len(rep), err)
	}
	if _, err := bundleFile(m, info.ID, "nope.txt"); !errors.Is(err, bundle.ErrNoFile) {
		t.Errorf("bundle file nope.txt: err = %v, want bundle.ErrNoFile", err)
	}
	if _, err := os.Stat(filepath.Join(m.Config().Dir, info.ID+".zip")); err != nil {
		t.Errorf("bundle not on disk: %v", err)
	}

	m.Stop()
	if got := runtime.SetMutexProfileFraction(-1); got != prev {
		t.Errorf("mutex profile fraction after Stop = %d, want the previous %d", got, prev)
	}
}

func TestLifecycle(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	if err := m.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if !m.Enabled() {
		t.Error("not enabled after Start")
	}
	m.Stop()
	m.Stop() // idempotent
	if m.Enabled() {
		t.Error("enabled after Stop")
	}
	if _, err := m.Snapshot(context.Background(), SnapshotOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Snapshot after Stop: %v, want ErrNotRunning", err)
	}
	// A restart works and samples again.
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	testkit.WaitFor(t, 5*time.Second, "a sample after restart", func() bool {
		s, ok := m.Latest()
		return ok && s.Time.After(before)
	})
	m.Stop()
}

func TestHostOwnsFlightRecorder(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	host := trace.NewFlightRecorder(trace.FlightRecorderConfig{})
	if err := host.Start(); err != nil {
		t.Skipf("cannot start a flight recorder: %v", err)
	}
	defer host.Stop()

	m := startMonitor(t, testConfig(t))
	st := m.Status()
	if !strings.HasPrefix(st.Trace, "unavailable") {
		t.Errorf("status trace = %q, want unavailable", st.Trace)
	}
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bundleFile(m, info.ID, "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rep), "unavailable") {
		t.Errorf("report does not say the trace is unavailable:\n%s", rep)
	}
	if _, err := bundleFile(m, info.ID, "trace.out"); !errors.Is(err, bundle.ErrNoFile) {
		t.Errorf("trace.out present without a recorder: %v", err)
	}
	if !host.Enabled() {
		t.Error("the host's flight recorder was stopped")
	}
}

func TestConcurrentSnapshotsShareOne(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	const n = 8
	ids := make(chan string, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			info, err := m.Snapshot(context.Background(), SnapshotOptions{Wall: 100 * time.Millisecond})
			ids <- info.ID
			errs <- err
		}()
	}
	close(start)
	distinct := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
		distinct[<-ids] = true
	}
	// Requests that arrive while one is in flight share it; a request
	// that arrives after it finished starts the next. Eight requests
	// released together must not make eight collections.
	if len(distinct) >= n/2 {
		t.Errorf("%d requests made %d snapshots; they should share", n, len(distinct))
	}
	if got := len(m.Snapshots()); got != len(distinct) {
		t.Errorf("stored %d snapshots, want %d", got, len(distinct))
	}
}

func TestSnapshotCanceledContextStillStores(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Snapshot(ctx, SnapshotOptions{})
	if !errors.Is(err, context.Canceled) {
		// The collection may finish before the select sees ctx; both
		// outcomes are allowed, the stored snapshot is what matters.
		t.Logf("Snapshot with a canceled context: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the snapshot to be stored", func() bool { return len(m.Snapshots()) == 1 })
}

func TestLockWaitersSignal(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	_, release := contention.Stuck(12)
	defer release()
	testkit.WaitFor(t, 10*time.Second, "lock_waiters >= 12", func() bool {
		s, ok := m.Latest()
		v, measured := s.Get(LockWaiters)
		return ok && measured && v >= 12
	})
	st := m.Status()
	if len(st.WaitSites) == 0 || !strings.HasSuffix(st.WaitSites[0].Func, "contention.StuckWaiter") || st.WaitSites[0].Waiters < 12 {
		t.Errorf("wait sites = %+v, want StuckWaiter with 12", st.WaitSites)
	}
	release()
}

// TestGoroutineGuardSkipsOnlyCostlySnapshotParts: above the guard the
// goroutine scans go on (lock_waiters has no blind range), and a snapshot
// skips only the wall-clock profile and the full dump.
func TestGoroutineGuardSkipsOnlyCostlySnapshotParts(t *testing.T) {
	cfg := testConfig(t)
	cfg.GoroutineGuard = 1 // every test process has more
	m := startMonitor(t, cfg)
	testkit.WaitFor(t, 5*time.Second, "lock_waiters measured", func() bool {
		s, ok := m.Latest()
		if !ok {
			return false
		}
		_, measured := s.Get(LockWaiters)
		return measured
	})
	info, err := m.Snapshot(context.Background(), SnapshotOptions{Wall: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, f := range info.Files {
		has[f.Name] = true
	}
	if has["wall.pb.gz"] || has["goroutines-full.txt"] || !has["goroutines.txt"] {
		t.Errorf("files above the goroutine guard: %v; want goroutines.txt, no wall.pb.gz nor goroutines-full.txt", has)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Keep: -1},
		{MaxDisk: -5},
		{History: time.Millisecond, Interval: time.Second},
		{BlockProfileRate: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		} else if !strings.HasPrefix(err.Error(), "diag: Config.") {
			t.Errorf("error %q does not name the field", err)
		}
	}
}

func TestBlockProfileRateOwned(t *testing.T) {
	cfg := testConfig(t)
	cfg.BlockProfileRate = 10_000
	m := startMonitor(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 4, 100*time.Microsecond)
	testkit.WaitFor(t, 10*time.Second, "two profile reads", func() bool {
		m.stateMu.Lock()
		defer m.stateMu.Unlock()
		return len(m.baselines) >= 1
	})
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	cancel()
	wait()
	if err != nil {
		t.Fatal(err)
	}
	data, err := bundleFile(m, info.ID, "block.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !profileHasFunc(p, "contention.HotLockWorker") {
		t.Error("block.pb.gz does not name the waiters' function")
	}
	m.Stop()
	// The runtime has no getter for the block rate; a fresh block
	// profile must not grow after Stop set it back to 0.
	before := blockCount(t)
	_, release := contention.Stuck(4)
	testkit.WaitFor(t, 5*time.Second, "4 parked waiters", func() bool {
		n, _ := newWaiterScanner().scan()
		return n >= 4
	})
	release() // four waits of real length, which a non-zero rate would record
	if after := blockCount(t); after != before {
		t.Errorf("block profile grew from %d to %d records after Stop", before, after)
	}
}

func blockCount(t *testing.T) int {
	var buf bytes.Buffer
	if err := pprof.Lookup("block").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range p.Sample {
		n += int(s.Value[0])
	}
	return n
}

func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func countSyncBlocks(t *testing.T, data []byte, fn string) int {
	t.Helper()
	r, err := xtrace.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("trace.out: %v", err)
	}
	n := 0
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("trace.out: %v", err)
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine || st.Reason != "sync" {
			continue
		}
		for f := range st.Stack.Frames() {
			if strings.HasSuffix(f.Func, fn) {
				n++
				break
			}
		}
	}
	return n
}

func profileHasFunc(p *profile.Profile, fn string) bool {
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function != nil && strings.HasSuffix(line.Function.Name, fn) {
					return true
				}
			}
		}
	}
	return false
}

func TestMutexFractionDefault(t *testing.T) {
	prev := runtime.SetMutexProfileFraction(-1)
	t.Cleanup(func() { runtime.SetMutexProfileFraction(prev) })
	for _, tt := range []struct{ host, cfg, running int }{
		{0, 0, 100}, // nobody set one: lockdiag's default
		{5, 0, 5},   // the host's rate is left alone
		{5, 50, 50}, // an explicit configuration wins
		{0, -1, 0},  // -1: never touch
	} {
		runtime.SetMutexProfileFraction(tt.host)
		cfg := testConfig(t)
		cfg.MutexProfileFraction = tt.cfg
		m := startMonitor(t, cfg)
		if got := runtime.SetMutexProfileFraction(-1); got != tt.running {
			t.Errorf("host %d, config %d: running with %d, want %d", tt.host, tt.cfg, got, tt.running)
		}
		if got := m.Status().MutexProfileFraction; got != tt.running {
			t.Errorf("host %d, config %d: status says %d", tt.host, tt.cfg, got)
		}
		m.Stop()
		if got := runtime.SetMutexProfileFraction(-1); got != tt.host {
			t.Errorf("host %d, config %d: after Stop %d", tt.host, tt.cfg, got)
		}
	}
}

func TestThreadSignalsAndSection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	m := startMonitor(t, testConfig(t))
	testkit.WaitFor(t, 10*time.Second, "thread signals", func() bool {
		s, ok := m.Latest()
		_, a := s.Get(FutexWaiters)
		_, b := s.Get(RunDelay)
		_, c := s.Get(CtxSwitches)
		return ok && a && b && c
	})
	info, err := m.Snapshot(context.Background(), SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := bundleFile(m, info.ID, "threads.json")
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		AtTrigger struct {
			Threads []struct {
				TID   int    `json:"tid"`
				Class string `json:"class"`
			} `json:"threads"`
		} `json:"at_trigger"`
		Series []json.RawMessage `json:"series"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		t.Fatal(err)
	}
	if len(tj.AtTrigger.Threads) < 2 || len(tj.Series) == 0 {
		t.Errorf("threads.json = %s", data)
	}
	rep, err := bundleFile(m, info.ID, "report.json")
	if err != nil {
		t.Fatal(err)
	}
	var r lockreport.Report
	if err := json.Unmarshal(rep, &r); err != nil {
		t.Fatal(err)
	}
	if r.OSThreads == nil || r.OSThreads.TraceMatched == 0 {
		t.Errorf("report threads = %+v; the trace should know some threads by tid", r.OSThreads)
	}
	txt, _ := bundleFile(m, info.ID, "report.txt")
	if !strings.Contains(string(txt), "OS THREADS") || !strings.Contains(string(txt), "sync.Mutex") {
		t.Errorf("report.txt lacks the thread section or its caveat:\n%s", txt)
	}
}

func TestStatusHolders(t *testing.T) {
	m := startMonitor(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 8, 200*time.Microsecond)
	defer func() { cancel(); wait() }()
	// Holders need two mutex profile reads, 5s apart.
	testkit.WaitFor(t, 15*time.Second, "holders in the status", func() bool {
		st := m.Status()
		for _, h := range st.Holders {
			if strings.HasSuffix(h.Func, "contention.HotLockWorker") && st.HoldersWindow > 0 {
				return true
			}
		}
		return false
	})
	var buf bytes.Buffer
	st := m.Status()
	if err := st.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "WHERE LOCKS WERE RELEASED") || !strings.Contains(buf.String(), "HotLockWorker") {
		t.Errorf("status text lacks the holders:\n%s", buf.String())
	}
}

// bundleFile returns one file of a stored snapshot.
func bundleFile(m *Monitor, id, name string) ([]byte, error) {
	b, err := m.Bundle(id)
	if err != nil {
		return nil, err
	}
	return b.File(name)
}

// bundleZip returns a stored snapshot's zip.
func bundleZip(m *Monitor, id string) ([]byte, error) {
	b, err := m.Bundle(id)
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
