package httpdiag

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/chromium"
	"github.com/lockdiag/lockdiag/lockreport"
	"github.com/lockdiag/lockdiag/locks"
)

// heldNamedLock names a lock, locks it and parks one goroutine on it until
// the test ends.
func heldNamedLock(t *testing.T, name string) *locks.Mutex {
	t.Helper()
	mu := new(locks.Mutex)
	mu.SetName(name)
	mu.Lock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		mu.Lock()
		mu.Unlock()
	}()
	t.Cleanup(func() {
		mu.Unlock()
		wg.Wait()
	})
	testkit.WaitFor(t, 10*time.Second, "a waiter on "+name, func() bool {
		for _, st := range locks.Read(nil) {
			if st.Name == name && st.Waiters == 1 {
				return true
			}
		}
		return false
	})
	return mu
}

func findNamed(list []lockreport.NamedLock, name string) *lockreport.NamedLock {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// TestStreamNamedLocks: the hello frame and the named_locks frames carry
// the named locks, in the schema's names and without stacks.
func TestStreamNamedLocks(t *testing.T) {
	mu := heldNamedLock(t, "httpdiag_test_stream")
	defer runtime.KeepAlive(mu)
	m, srv := streamServer(t, diag.Config{}, Options{})
	testkit.WaitFor(t, 10*time.Second, "the monitor to read the named lock", func() bool {
		return findNamed(m.Status().NamedLocks, "httpdiag_test_stream") != nil
	})
	c := dial(t, wsURL(srv, ""), nil)
	hello := readFrame(t, c)
	if nl := findNamed(hello.NamedLocks, "httpdiag_test_stream"); nl == nil || nl.Waiters != 1 || !nl.Held {
		t.Errorf("hello's named locks = %+v", hello.NamedLocks)
	}
	f := readUntil(t, c, "named_locks")
	nl := findNamed(f.NamedLocks, "httpdiag_test_stream")
	if nl == nil || nl.Waiters != 1 || !nl.Held || nl.Type != "mutex" || nl.AcquiredAt != nil || nl.HolderStack != nil {
		t.Errorf("named_locks frame = %+v", f.NamedLocks)
	}
	// The frame's JSON uses the schema's names.
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"type":"named_locks"`, `"lock.id":"httpdiag_test_stream"`, `"lock.type":"mutex"`, `"lock.wait.duration":{`, `"lock.held.duration":{`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("frame JSON has no %s: %s", key, data)
		}
	}
}

func TestInversionFrameJSON(t *testing.T) {
	inv := &lockreport.LockInversion{A: "a", B: "b", GoroutineAB: 7, GoroutineBA: 9, Time: time.Unix(0, 0).UTC()}
	data, err := json.Marshal(frameOf(diag.Event{Type: diag.EventInversion, Time: time.Unix(0, 0).UTC(), Inversion: inv}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"lock_order_inversion","time":"1970-01-01T00:00:00Z","dropped":0,"inversion":{"a":"a","b":"b","goroutine_ab":7,"stack_ab":null,"goroutine_ba":9,"stack_ba":null,"time":"1970-01-01T00:00:00Z"}}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
}

// TestUINamedLocks: the live page shows the named locks panel, with the
// held lock, only when the program names locks.
func TestUINamedLocks(t *testing.T) {
	bin := chromium.Find()
	testkit.NeedTool(t, bin != "", "Chromium", "apt-get install chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mu := heldNamedLock(t, "httpdiag_test_ui")
	defer runtime.KeepAlive(mu)
	m, err := diag.New(diag.Config{Interval: 50 * time.Millisecond, Dir: t.TempDir(), Rules: diag.RulesOff, Trace: diag.TraceOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	srv := httptest.NewServer(Handler(m, Options{}))
	t.Cleanup(srv.Close)
	b, err := chromium.Launch(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	page := &pageDriver{t: t, ctx: ctx, b: b}
	page.must(b.Navigate(ctx, srv.URL+"/debug/locks/ui"))
	page.waitFor("the named locks panel with the held lock",
		`!document.getElementById("named-panel").hidden && document.getElementById("named").textContent.includes("httpdiag_test_ui") &&
		 /held .* by g\d+/.test(document.getElementById("named").textContent)`)
	page.checkLogs()
}
