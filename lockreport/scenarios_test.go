package lockreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/stacks"
	"github.com/lockdiag/lockdiag/lockreport"
)

// The incident scenarios of testdata/scenarios: bundles taken while
// real libraries and real blocking contended, with the ground truth in
// out/expect.json (regenerate both with `go run .` there). The tests read
// names and ids from expect.json and assert on the first lines of the
// report: the headline and the first finding.

const scenarioDir = "../testdata/scenarios/out"

type expectFile struct {
	Scenarios map[string]expectScenario `json:"scenarios"`
}

type expectScenario struct {
	Finding string `json:"finding"`
	Caller  string `json:"caller"`
	Lock    *struct {
		Kind     string   `json:"kind"`
		Module   string   `json:"module"`
		Site     string   `json:"site"`
		Address  string   `json:"address"`
		Wrappers []string `json:"wrappers"`
	} `json:"lock"`
	Holder *struct {
		Function     string  `json:"function"`
		Caller       string  `json:"caller"`
		GoroutineIDs []int64 `json:"goroutine_ids"`
		Thread       int     `json:"thread"`
	} `json:"holder"`
	Waiters *struct {
		Function     string  `json:"function"`
		Count        int     `json:"count"`
		GoroutineIDs []int64 `json:"goroutine_ids"`
	} `json:"waiters"`
	Time *struct {
		OnsetS       float64  `json:"onset_s"`
		EndS         *float64 `json:"end_s"`
		TraceFirstS  float64  `json:"trace_first_s"`
		TraceLastS   float64  `json:"trace_last_s"`
		WindowStartS float64  `json:"window_start_s"`
	} `json:"time"`
	Extra json.RawMessage `json:"extra"`
}

func readExpect(t *testing.T) expectFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(scenarioDir, "expect.json"))
	if err != nil {
		t.Skipf("no scenario ground truth (regenerate testdata/scenarios): %v", err)
	}
	var e expectFile
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// analyzeScenario analyzes a scenario's bundle as `lockdiag analyze`
// does: bundle.Open, its Options, its trace.
func analyzeScenario(t *testing.T, name string) (*lockreport.Report, expectScenario) {
	t.Helper()
	exp, ok := readExpect(t).Scenarios[name]
	if !ok {
		t.Fatalf("expect.json has no scenario %q", name)
	}
	data, err := os.ReadFile(filepath.Join(scenarioDir, name+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := b.Options()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(bundle.TraceFile)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rep, err := lockreport.Analyze(context.Background(), rc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var text bytes.Buffer
			rep.WriteText(&text)
			t.Logf("report of %s:\n%s", name, text.String())
		}
	})
	return rep, exp
}

// firstLines is what a reader sees first: the headline and the first
// finding's summary.
func firstLines(rep *lockreport.Report) string {
	s := rep.Headline
	if len(rep.Findings) > 0 {
		s += "\n" + rep.Findings[0].Summary
	}
	return s
}

// short is how the report names a function of expect.json.
func short(fn string) string { return stacks.Short(fn) }

func wantIn(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not mention %q:\n%s", what, w, text)
		}
	}
}

func wantNotIn(t *testing.T, what, text string, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(text, w) {
			t.Errorf("%s mentions %q:\n%s", what, w, text)
		}
	}
}

// checkLockScenario asserts the common shape: the first finding's kind,
// the lock's site in its package (and module), the program's caller and
// the critical section, all in the first lines.
func checkLockScenario(t *testing.T, rep *lockreport.Report, exp expectScenario, holder string) {
	t.Helper()
	lines := firstLines(rep)
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != exp.Finding {
		t.Errorf("first finding = %+v, want kind %q", rep.Findings, exp.Finding)
	}
	if len(rep.Sites) == 0 {
		t.Fatal("no lock site")
	}
	site := rep.Sites[0]
	if got, want := stacks.Package(site.Func), stacks.Package(exp.Lock.Site); got != want {
		t.Errorf("top site %s is in package %s, want %s (expect.json lock.site %s)", site.Func, got, want, exp.Lock.Site)
	}
	wantIn(t, "first lines", lines, short(site.Func), short(exp.Caller), holder)
	if mod, _, _ := strings.Cut(exp.Lock.Module, " "); mod != "std" && mod != "main" {
		wantIn(t, "headline", rep.Headline, "module "+mod)
	}
	if site.Caller != exp.Caller {
		t.Errorf("site's caller = %q, want %q", site.Caller, exp.Caller)
	}
	if site.Waiters < exp.Waiters.Count*3/4 || site.Waiters > exp.Waiters.Count+1 {
		t.Errorf("site's waiters = %d, want about %d", site.Waiters, exp.Waiters.Count)
	}
}

func TestScenarioLogrus(t *testing.T) {
	rep, exp := analyzeScenario(t, "logrus")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	site := rep.Sites[0]
	// logrus locks through its MutexWrap: the site is logrus's function
	// that called (*mutexWrap).Lock, never the wrapper itself.
	for _, w := range exp.Lock.Wrappers {
		if site.Func == w {
			t.Errorf("the site is the wrapper %s", w)
		}
	}
	if len(site.Via) == 0 || site.Via[0] != short(exp.Lock.Wrappers[0]) {
		t.Errorf("site.Via = %q, want %s walked past", site.Via, short(exp.Lock.Wrappers[0]))
	}
	// Held across the sink's network read, named where it happens.
	wantIn(t, "first lines", firstLines(rep), "network wait", "net.(*conn).Read", "main.(*ackSink).Write")
	wantNotIn(t, "headline", rep.Headline, "mutexWrap).Unlock")
}

func TestScenarioStdlog(t *testing.T) {
	rep, exp := analyzeScenario(t, "stdlog")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "first lines", firstLines(rep), "system call", "os.(*File).Write")
}

func TestScenarioZap(t *testing.T) {
	rep, exp := analyzeScenario(t, "zap")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "first lines", firstLines(rep), "system call", "os.(*File).Write")
}

func TestScenarioLRU(t *testing.T) {
	rep, exp := analyzeScenario(t, "lru")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	// Get wants the write lock; the holder is the read section Keys,
	// called from the program's exportKeys, and its hold is given.
	wantIn(t, "first lines", firstLines(rep), "write-locked", "read section", short(exp.Holder.Caller), "per hold")
	h := rep.Sites[0].Holders[0]
	if h.Holds == nil || h.Holds.P50 < time.Millisecond || h.Holds.Running+h.Holds.Runnable < 0.6 {
		t.Errorf("Keys' holds = %+v, want several ms each, on the CPU", h.Holds)
	}
}

func TestScenarioLRUExpirable(t *testing.T) {
	rep, exp := analyzeScenario(t, "lru-expirable")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	// The eviction callback runs inside Add with the lock held.
	wantIn(t, "first lines", firstLines(rep), "main.spillUser")
}

func TestScenarioGoCache(t *testing.T) {
	rep, exp := analyzeScenario(t, "gocache")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "first lines", firstLines(rep), short(exp.Holder.Caller), "per hold")
	wantNotIn(t, "headline", rep.Headline, "convoy")
}

func TestScenarioWrappers(t *testing.T) {
	rep, exp := analyzeScenario(t, "wrappers")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	site := rep.Sites[0]
	if site.Func != exp.Lock.Site {
		t.Errorf("site = %s, want %s past the wrappers", site.Func, exp.Lock.Site)
	}
	for _, w := range []string{"main.(*store).lock", "main.(*store).withLock", "main.(*Guarded[...]).With"} {
		found := false
		for _, v := range site.Via {
			found = found || v == w
		}
		if !found {
			t.Errorf("site.Via = %q, want %s walked past", site.Via, w)
		}
	}
	if h := site.Holders[0]; h.Func != exp.Holder.Function || h.Caller != exp.Holder.Caller {
		t.Errorf("critical section = %s (called from %s), want %s (called from %s)", h.Func, h.Caller, exp.Holder.Function, exp.Holder.Caller)
	}
	// The fsync in persistOrder, inside the closure.
	wantIn(t, "first lines", firstLines(rep), "os.(*File).Sync", "main.persistOrder")
	wantNotIn(t, "headline", rep.Headline, "(*store).unlock")
}

func TestScenarioCgo(t *testing.T) {
	rep, exp := analyzeScenario(t, "cgo")
	lines := firstLines(rep)
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != exp.Finding {
		t.Fatalf("first finding = %+v, want kind %q", rep.Findings, exp.Finding)
	}
	// The lock word, the program's caller, the holder goroutine and its
	// thread.
	wantIn(t, "first lines", lines, "pthread mutex", exp.Lock.Address, exp.Caller,
		fmt.Sprintf("goroutine %d in %s", exp.Holder.GoroutineIDs[0], exp.Holder.Caller),
		fmt.Sprintf("thread %d", exp.Holder.Thread))
	wantIn(t, "headline", rep.Headline, fmt.Sprintf("%d OS threads", exp.Waiters.Count))
}

func TestScenarioSQLite(t *testing.T) {
	rep, exp := analyzeScenario(t, "sqlite")
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != exp.Finding {
		t.Fatalf("first finding = %+v, want kind %q", rep.Findings, exp.Finding)
	}
	wantIn(t, "first lines", firstLines(rep), exp.Caller, exp.Holder.Caller, "cgo calls", "asleep")
}

func TestScenarioSaturated(t *testing.T) {
	rep, exp := analyzeScenario(t, "saturated")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "first lines", firstLines(rep), "saturated", "on the CPU in main.burnSHA")
	s := rep.Sites[0]
	h := s.Holders[0].Holds
	if s.Held < 0.9 || h == nil || h.P50 < 100*time.Microsecond || h.P50 > 2*time.Millisecond || h.Running < 0.6 {
		t.Errorf("held %.2f of the window, holds %+v: want ~100%%, ~200µs each, running", s.Held, h)
	}
}

func TestScenarioEnded(t *testing.T) {
	rep, exp := analyzeScenario(t, "ended")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "headline", rep.Headline, "Contention ended")
	// When: the waits stopped end_s before the snapshot, which the
	// trace's last event is trace_last_s after.
	s := rep.Sites[0]
	ago := rep.Window.Duration - s.Last
	want := time.Duration((exp.Time.TraceLastS - *exp.Time.EndS) * float64(time.Second))
	if d := ago - want; d < -time.Second || d > time.Second {
		t.Errorf("contention ended %v before the window's end, want about %v (expect.json end_s %v)", ago, want, *exp.Time.EndS)
	}
	if s.WaitingAtEnd != 0 {
		t.Errorf("%d still waiting at the end of an ended contention", s.WaitingAtEnd)
	}
}

func TestScenarioHTTPSleep(t *testing.T) {
	rep, exp := analyzeScenario(t, "http-sleep")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	// The sleep is the handler's own, not net/http's.
	wantIn(t, "first lines", firstLines(rep), "a sleep (time.Sleep in main.handlePrice)")
	wantNotIn(t, "first lines", firstLines(rep), "in net/http", "net/http call")
}

func TestScenarioBbolt(t *testing.T) {
	rep, exp := analyzeScenario(t, "bbolt")
	checkLockScenario(t, rep, exp, "bbolt.")
	wantIn(t, "first lines", firstLines(rep), "Fdatasync")
}

func TestScenarioTicker(t *testing.T) {
	rep, exp := analyzeScenario(t, "ticker")
	checkLockScenario(t, rep, exp, short(exp.Holder.Function))
	wantIn(t, "first lines", firstLines(rep), "net/http call", "main.fetchRates")
}

// lockdiag's own goroutines (the monitor loop, the recorder, snapshot
// collection) are in every bundle's trace; they must not be in the tables.
func TestScenarioLeavesOutLockdiag(t *testing.T) {
	rep, _ := analyzeScenario(t, "cgo")
	if rep.LockdiagWaits == 0 {
		t.Error("no waits of lockdiag's own goroutines were recognized")
	}
	var tables bytes.Buffer
	for _, list := range [][]lockreport.Site{rep.Sites, rep.SyncSites} {
		for _, s := range list {
			fmt.Fprintln(&tables, s.Func)
		}
	}
	for _, w := range rep.Waits {
		fmt.Fprintln(&tables, w.Site)
	}
	wantNotIn(t, "sites and waits", tables.String(), "lockdiag/diag.", "lockdiag/flightrec.", "(*Monitor).loop")
}

// stuckExpect is the part of expect.json the stuck-lock tests read.
type stuckExpect struct {
	Scenarios map[string]struct {
		Holder *struct {
			Function     string  `json:"function"`
			GoroutineIDs []int64 `json:"goroutine_ids"`
		} `json:"holder"`
		Cycle []struct {
			GoroutineID int64 `json:"goroutine_id"`
		} `json:"cycle"`
		Chain []struct {
			GoroutineID int64  `json:"goroutine_id"`
			Function    string `json:"function"`
		} `json:"chain"`
	} `json:"scenarios"`
}

func readStuckExpect(t *testing.T) stuckExpect {
	data, err := os.ReadFile(filepath.Join(scenarioDir, "expect.json"))
	if err != nil {
		t.Skipf("no scenario ground truth: %v", err)
	}
	var e stuckExpect
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestScenarioStuckHolders: for a lock held and not let go, the headline
// names the goroutine that holds it (the id the scenario recorded when its
// holder took the lock), its function and what it does.
func TestScenarioStuckHolders(t *testing.T) {
	for _, tt := range []struct{ name, doing string }{
		{"stuck-sleep", "sleep"},
		{"stuck-io", "IO wait"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, _ := analyzeScenario(t, tt.name)
			h := readStuckExpect(t).Scenarios[tt.name].Holder
			if h == nil || len(h.GoroutineIDs) == 0 {
				t.Fatalf("expect.json names no holder for %s", tt.name)
			}
			want := fmt.Sprintf("likely held by goroutine %d in %s", h.GoroutineIDs[0], stacks.Short(h.Function))
			if !strings.Contains(rep.Headline, want) || !strings.Contains(rep.Headline, tt.doing) {
				t.Errorf("headline = %q\nwant it to contain %q and %q", rep.Headline, want, tt.doing)
			}
		})
	}
}

// TestScenarioDeadlock: a lock-order deadlock leads the report, naming
// the goroutines of the cycle.
func TestScenarioDeadlock(t *testing.T) {
	rep, _ := analyzeScenario(t, "deadlock")
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != "deadlock" || !strings.HasPrefix(rep.Headline, "deadlock: ") {
		t.Fatalf("headline %q, findings %v; want a deadlock first", rep.Headline, rep.Findings)
	}
	for _, c := range readStuckExpect(t).Scenarios["deadlock"].Cycle {
		if want := fmt.Sprintf("goroutine %d in main.transfer", c.GoroutineID); !strings.Contains(rep.Headline, want) {
			t.Errorf("headline does not name %q: %q", want, rep.Headline)
		}
	}
}

// TestScenarioChain: the holder of the stuck lock waits for another lock;
// the headline follows the chain to the goroutine at its end.
func TestScenarioChain(t *testing.T) {
	rep, _ := analyzeScenario(t, "chain")
	chain := readStuckExpect(t).Scenarios["chain"].Chain
	if len(chain) < 3 {
		t.Fatalf("expect.json's chain: %+v", chain)
	}
	for _, step := range chain[1:] {
		want := fmt.Sprintf("goroutine %d in %s", step.GoroutineID, step.Function)
		if !strings.Contains(rep.Headline, want) {
			t.Errorf("headline does not name %q: %q", want, rep.Headline)
		}
	}
}
