package httpdiag

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func TestPprofRoutes(t *testing.T) {
	m := newMonitor(t)
	h := Handler(m, Options{})
	noTrace, err := diag.New(diag.Config{Trace: diag.TraceOff, Dir: diag.DirOff, Rules: diag.RulesOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := noTrace.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(noTrace.Stop)
	leakCode, leakBody := 404, "needs Go 1.27 or later"
	if pprof.Lookup("goroutineleak") != nil {
		leakCode, leakBody = 200, ""
	}
	tests := []struct {
		h      http.Handler
		target string
		remote string
		code   int
		ctype  string
		body   string
	}{
		{h, "/debug/locks/pprof/", local, 200, "text/plain", "/debug/locks/pprof/mutex"},
		{h, "/debug/locks/pprof/mutex", local, 200, "application/octet-stream", ""},
		{h, "/debug/locks/pprof/block", local, 200, "application/octet-stream", ""},
		{h, "/debug/locks/pprof/goroutine", local, 200, "application/octet-stream", ""},
		{h, "/debug/locks/pprof/goroutine?debug=2", local, 200, "text/plain", "goroutine "},
		{h, "/debug/locks/pprof/mutex?debug=1", local, 200, "text/plain", "--- mutex:"},
		{h, "/debug/locks/pprof/goroutineleak", local, leakCode, "", leakBody},
		{h, "/debug/locks/pprof/heap", local, 404, "text/plain", `no profile "heap" here`},
		{h, "/debug/locks/pprof/mutex?seconds=0.5", local, 400, "text/plain", "seconds must be an integer from 0 to 300"},
		{h, "/debug/locks/pprof/mutex?seconds=301", local, 400, "text/plain", "seconds must be an integer from 0 to 300"},
		{h, "/debug/locks/pprof/mutex?seconds=1&debug=1", local, 400, "text/plain", "seconds works with debug=0 only"},
		{h, "/debug/locks/pprof/mutex?debug=2", local, 400, "text/plain", "debug must be an integer from 0 to 1"},
		{h, "/debug/locks/pprof/goroutineleak?seconds=1", local, 400, "text/plain", "goroutineleak takes no seconds"},
		{h, "/debug/locks/pprof/mutex?gc=1", local, 400, "text/plain", `unknown parameter "gc"`},
		{h, "/debug/locks/pprof/trace?seconds=3", local, 400, "text/plain", "the flight recorder keeps the last 2s"},
		{h, "/debug/locks/pprof/trace?seconds=x", local, 400, "text/plain", "seconds must be an integer"},
		{h, "/debug/locks/pprof/mutex", "10.1.2.3:5555", 403, "text/plain", "loopback clients only"},
		{h, "/debug/locks/pprof/trace", "10.1.2.3:5555", 403, "text/plain", "loopback clients only"},
		{Handler(noTrace, Options{}), "/debug/locks/pprof/trace?seconds=0", local, 503, "text/plain", "starts no second tracer"},
		{Handler(m, Options{Token: "s3cret"}), "/debug/locks/pprof/mutex", local, 401, "text/plain", "missing or wrong token"},
	}
	for _, tt := range tests {
		w := do(t, tt.h, "GET", tt.target, tt.remote, nil)
		if w.Code != tt.code {
			t.Errorf("GET %s: code = %d, want %d (%s)", tt.target, w.Code, tt.code, w.Body)
			continue
		}
		if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, tt.ctype) {
			t.Errorf("GET %s: Content-Type = %q, want %q", tt.target, got, tt.ctype)
		}
		if !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("GET %s: body lacks %q:\n%.400s", tt.target, tt.body, w.Body)
		}
	}
}

// TestPprofPullsOpenInGoTools pulls the profiles and the trace while a lock
// is contended, as a continuous profiler or a person with curl would, and
// checks that go tool pprof names the contended function in each and that
// go tool trace reads the trace (its sync profile names it too).
func TestPprofPullsOpenInGoTools(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool pprof and go tool trace")
	}
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m, err := diag.New(diag.Config{
		Interval:             50 * time.Millisecond,
		TraceWindow:          2 * time.Second,
		Dir:                  diag.DirOff,
		Rules:                diag.RulesOff,
		MutexProfileFraction: 1,
		BlockProfileRate:     1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	srv := httptest.NewServer(Handler(m, Options{}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 4, 200*time.Microsecond)
	t.Cleanup(func() { cancel(); wait() })

	dir := t.TempDir()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, data)
		}
		name := filepath.Join(dir, strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(path))
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	goTool := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"tool"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go tool %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	const fn = "contention.HotLockWorker"
	for _, path := range []string{
		"/debug/locks/pprof/mutex?seconds=1",
		"/debug/locks/pprof/block?seconds=1",
		"/debug/locks/pprof/mutex",
		"/debug/locks/pprof/goroutine",
	} {
		file := get(path)
		p, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := profile.ParseData(p); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		if out := goTool("pprof", "-top", file); !strings.Contains(out, fn) {
			t.Errorf("go tool pprof -top %s does not name %s:\n%s", path, fn, out)
		}
	}

	file := get("/debug/locks/pprof/trace?seconds=1")
	out := goTool("trace", "-pprof=sync", file)
	syncProf := filepath.Join(dir, "sync.pb")
	if err := os.WriteFile(syncProf, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if top := goTool("pprof", "-top", syncProf); !strings.Contains(top, fn) {
		t.Errorf("the pulled trace's sync profile (go tool trace -pprof=sync) does not name %s:\n%s", fn, top)
	}
}
