package lockreport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/flightrec"
)

type liveStore struct {
	mu sync.Mutex
	n  int
}

//go:noinline
func liveWaiterLock(s *liveStore) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

//go:noinline
func liveHolderCritical(s *liveStore) {
	s.mu.Lock()
	end := time.Now().Add(300 * time.Microsecond)
	for time.Now().Before(end) {
		s.n++
		runtime.Gosched() // let the waiters run and park, even with GOMAXPROCS=1
	}
	s.mu.Unlock()
}

func readProfile(t *testing.T, name string) *profile.Profile {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&b, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func profileDelta(t *testing.T, before, after *profile.Profile) *profile.Profile {
	t.Helper()
	neg := before.Copy()
	neg.Scale(-1)
	d, err := profile.Merge([]*profile.Profile{after, neg})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startRecorder starts a flight recorder for a live test, stopped when
// the test ends, or skips the test when the process cannot have one.
func startRecorder(t *testing.T) *flightrec.Recorder {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("tracing is already enabled (go test -trace?)")
	}
	rec := flightrec.New(flightrec.Config{MinAge: time.Second})
	if err := rec.Start(); err != nil {
		if errors.Is(err, flightrec.ErrUnavailable) {
			t.Skipf("flight recorder unavailable: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(rec.Stop)
	return rec
}

// TestAnalyzeLive runs contention under the process's flight recorder,
// snapshots it and checks that the analysis names the fixture functions
// as the lock site and the holder, and joins the profiles with them.
func TestAnalyzeLive(t *testing.T) {
	if testing.Short() {
		t.Skip("live contention for about half a second")
	}
	rec := startRecorder(t)
	prevFrac := runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	t.Cleanup(func() {
		runtime.SetMutexProfileFraction(prevFrac)
		runtime.SetBlockProfileRate(0)
	})
	mutex0, block0 := readProfile(t, "mutex"), readProfile(t, "block")

	s := &liveStore{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			untilClosed(stop, func() {
				liveWaiterLock(s)
				time.Sleep(50 * time.Microsecond)
			})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		untilClosed(stop, func() {
			liveHolderCritical(s)
			time.Sleep(200 * time.Microsecond)
		})
	}()
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()

	data, err := rec.Window(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mutex, block := profileDelta(t, mutex0, readProfile(t, "mutex")), profileDelta(t, block0, readProfile(t, "block"))
	rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{MutexProfile: encode(mutex), BlockProfile: encode(block), MutexFraction: 1, BlockRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s", text.String())
		}
	})

	site := findSite(rep, "Mutex.Lock", ".liveWaiterLock")
	if site == nil {
		t.Fatalf("no Mutex.Lock site at liveWaiterLock; sites: %+v", rep.Sites)
	}
	if h := site.Holders[0]; !strings.HasSuffix(h.Func, ".liveHolderCritical") || h.Op != "Mutex.Unlock" {
		t.Errorf("top holder = %s in %s, want Mutex.Unlock in liveHolderCritical", h.Op, h.Func)
	}
	if !strings.Contains(rep.Headline, "liveWaiterLock") || !strings.Contains(rep.Headline, "liveHolderCritical") {
		t.Errorf("headline = %q", rep.Headline)
	}

	// The mutex profile's Unlock site is the trace's holder, the block
	// profile's wait site the trace's site.
	var holder *Holder
	for i := range site.Holders {
		if strings.HasSuffix(site.Holders[i].Func, ".liveHolderCritical") {
			holder = &site.Holders[i]
		}
	}
	if holder == nil || holder.MutexProfile == nil {
		t.Errorf("mutex profile not joined to the holder: %+v; profile holders %+v", holder, rep.Profiles.Holders)
	}
	if site.BlockProfile == nil {
		t.Fatalf("block profile not joined to the site; profile waiters %+v", rep.Profiles.Waiters)
	}
	// With block rate 1 the block profile sees every park at the site, as
	// the trace does: their totals agree.
	ratio := float64(site.Total) / float64(site.BlockProfile.Delay)
	t.Logf("site %s: trace %v in %d waits, block profile %v in %d; ratio %.3f",
		site.Func, site.Total, site.Waits, site.BlockProfile.Delay, site.BlockProfile.Count, ratio)
	if ratio < 0.75 || ratio > 1.25 {
		t.Errorf("trace total %v and block profile %v differ by more than 25%%", site.Total, site.BlockProfile.Delay)
	}

	if runtime.GOOS == "linux" {
		// Trace thread IDs are kernel thread IDs: the process's threads
		// seen in the window still exist (Go rarely exits threads).
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Skipf("no /proc/self/task: %v", err)
		}
		live := map[int64]bool{}
		for _, e := range tasks {
			id, _ := strconv.ParseInt(e.Name(), 10, 64)
			live[id] = true
		}
		found := 0
		for _, th := range rep.Threads {
			if live[th.Thread] {
				found++
			}
		}
		if found == 0 || found*2 < len(rep.Threads) {
			t.Errorf("only %d of %d trace thread IDs are in /proc/self/task (%d tasks)", found, len(rep.Threads), len(tasks))
		}
	}
}

//go:noinline
func liveCounterHit(s *liveStore) {
	s.mu.Lock()
	s.n++
	for i := 0; i < 200; i++ {
		s.n ^= i // a little work under the lock
	}
	s.mu.Unlock()
}

// TestAnalyzeLiveHotCounter: a counter behind one Mutex that 16 goroutines
// bump back to back, the plain hot lock, gets a finding about it, the
// first (its holds are short: not saturated or long-held by the classes
// of the site candidates; the counter example had no finding at all).
func TestAnalyzeLiveHotCounter(t *testing.T) {
	if testing.Short() {
		t.Skip("live contention for about half a second")
	}
	rec := startRecorder(t)
	s := &liveStore{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { untilClosed(stop, func() { liveCounterHit(s) }) })
	}
	timer := time.NewTimer(400 * time.Millisecond)
	<-timer.C
	close(stop)
	wg.Wait()
	rep, text, site := analyzeLiveSite(t, rec, ".liveCounterHit")
	if len(rep.Findings) == 0 || rep.Findings[0].Site != siteOf(*site) {
		t.Errorf("the first finding is not about the counter's lock %s:\n%s", siteOf(*site), text.String())
	}
}

// untilClosed calls f again and again until stop is closed.
func untilClosed(stop <-chan struct{}, f func()) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		f()
	}
}

// analyzeLiveSite analyzes the recorder's window, and returns the report,
// its text and its Mutex.Lock site in the function whose name ends in fn.
func analyzeLiveSite(t *testing.T, rec *flightrec.Recorder, fn string) (*Report, *bytes.Buffer, *Site) {
	t.Helper()
	data, err := rec.Window(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	site := findSite(rep, "Mutex.Lock", fn)
	if site == nil {
		t.Fatalf("no Mutex.Lock site at %s:\n%s", fn, text.String())
	}
	return rep, &text, site
}

//go:noinline
func liveStarvedHold(s *liveStore) {
	s.mu.Lock()
	// Some 0.3-1 ms of work under the lock, with no call in it: a call's
	// prologue is where a goroutine marked for preemption stops at
	// once, so with calls in it a short section is preempted just
	// outside, and the holder does not lose the CPU while it holds the
	// lock.
	for i := 0; i < 1_000_000; i++ {
		s.n ^= i * 7
	}
	s.mu.Unlock()
}

// TestAnalyzeLiveStarvedHolders: with one P and goroutines that burn CPU
// beside the lock's users, a holder that loses the CPU inside its short
// critical section waits for it behind the burners while the lock's other
// users queue. The report must say the holders were starved of CPU, not
// call the section long or the lock saturated: its code is short.
func TestAnalyzeLiveStarvedHolders(t *testing.T) {
	if testing.Short() {
		t.Skip("live contention for about a second")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rec := startRecorder(t)
	s := &liveStore{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // burners: no lock, all CPU
		wg.Go(func() {
			x := 0
			for {
				select {
				case <-stop:
					s.mu.Lock()
					s.n += x & 1
					s.mu.Unlock()
					return
				default:
				}
				for i := 0; i < 100000; i++ {
					x ^= i
				}
			}
		})
	}
	for range 6 { // the lock's users
		wg.Go(func() { untilClosed(stop, func() { liveStarvedHold(s) }) })
	}
	timer := time.NewTimer(time.Second)
	<-timer.C
	close(stop)
	wg.Wait()
	rep, text, site := analyzeLiveSite(t, rec, ".liveStarvedHold")
	var kinds []string
	for _, f := range rep.Findings {
		if f.Site == siteOf(*site) {
			kinds = append(kinds, f.Kind)
		}
	}
	if !slices.Contains(kinds, "cpu-starved") || slices.Contains(kinds, "long-critical-section") || slices.Contains(kinds, "saturated-lock") {
		t.Errorf("findings about the lock: %v, want cpu-starved and neither long-critical-section nor saturated-lock:\n%s", kinds, text.String())
	}
	if !strings.Contains(rep.Headline, "short of CPU") {
		t.Errorf("headline %q does not say the process was short of CPU", rep.Headline)
	}
}
