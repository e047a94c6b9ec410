package httpdiag

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMonitor(t testing.TB) *diag.Monitor {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m, err := diag.New(diag.Config{
		Interval:            20 * time.Millisecond,
		LockWaitersInterval: 50 * time.Millisecond,
		TraceWindow:         2 * time.Second,
		Dir:                 t.TempDir(),
		// Record every contention: the windows of these tests are short.
		MutexProfileFraction: 1,
		Rules:                diag.RulesOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// do sends a request to h as if from remote.
func do(t testing.TB, h http.Handler, method, target, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const local = "127.0.0.1:5555"

func TestHandlerRoutes(t *testing.T) {
	m := newMonitor(t)
	h := Handler(m, Options{})

	post := do(t, h, "POST", "/debug/locks/snapshots?format=json", local, nil)
	if post.Code != http.StatusCreated {
		t.Fatalf("POST snapshots: %d %s", post.Code, post.Body)
	}
	var info diag.SnapshotInfo
	if err := json.Unmarshal(post.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if loc := post.Header().Get("Location"); loc != "/debug/locks/snapshots/"+info.ID {
		t.Errorf("Location = %q", loc)
	}
	id := info.ID

	tests := []struct {
		method, target string
		hdr            map[string]string
		code           int
		ctype          string
		body           string // a substring of the body
	}{
		{"GET", "/debug/locks", nil, 200, "text/plain", "SIGNAL"},
		{"GET", "/debug/locks/", nil, 200, "text/plain", "mutex_wait"},
		{"GET", "/debug/locks?format=json", nil, 200, "application/json", `"rules"`},
		{"GET", "/debug/locks", map[string]string{"Accept": "application/json"}, 200, "application/json", `"now"`},
		{"GET", "/debug/locks?format=xml", nil, 400, "text/plain", "format must be text or json"},
		{"GET", "/debug/locks?format=json&format=text", nil, 400, "text/plain", "given 2 times"},
		{"GET", "/debug/locks?verbose=1", nil, 400, "text/plain", `unknown parameter "verbose"`},
		{"GET", "/debug/locks?%zz", nil, 400, "text/plain", "malformed query"},
		{"GET", "/debug/locks/snapshots", nil, 200, "text/plain", id},
		{"GET", "/debug/locks/snapshots?format=json", nil, 200, "application/json", `"id": "` + id},
		{"GET", "/debug/locks/snapshots/" + id, nil, 200, "text/plain", "lockdiag snapshot " + id},
		{"GET", "/debug/locks/snapshots/latest", nil, 200, "text/plain", "lockdiag snapshot " + id},
		{"GET", "/debug/locks/snapshots/latest?format=json", nil, 200, "application/json", `"headline"`},
		{"GET", "/debug/locks/snapshots/" + id + ".zip", nil, 200, "application/zip", "meta.json"},
		{"GET", "/debug/locks/snapshots/latest.zip", nil, 200, "application/zip", "report.txt"},
		{"GET", "/debug/locks/snapshots/" + id + "/meta.json", nil, 200, "application/json", `"pid"`},
		{"GET", "/debug/locks/snapshots/" + id + "/trace.out", nil, 200, "application/octet-stream", "go 1."},
		{"GET", "/debug/locks/snapshots/" + id + "/mutex.pb.gz", nil, 200, "application/gzip", ""},
		{"GET", "/debug/locks/snapshots/" + id + "/nope.txt", nil, 404, "text/plain", `no such file in the bundle: "nope.txt"`},
		{"GET", "/debug/locks/snapshots/20200101-000000-000", nil, 404, "text/plain", "not found"},
		{"GET", "/debug/locks/snapshots/..%2f..%2fetc%2fpasswd", nil, 404, "text/plain", "not a snapshot id"},
		{"GET", "/debug/locks/snapshots/" + id + "/..%2fmeta.json", nil, 400, "text/plain", "not a file name"},
		{"GET", "/debug/locks/snapshots/bogus.zip", nil, 404, "text/plain", "not a snapshot id"},
		{"GET", "/debug/locks/snapshots/" + id + "?x=1", nil, 400, "text/plain", "unknown parameter"},
		{"POST", "/debug/locks/snapshots?wall=1h", nil, 400, "text/plain", "wall must be a duration from 0 to 30s"},
		{"POST", "/debug/locks/snapshots?wall=abc", nil, 400, "text/plain", "wall must be a duration"},
		{"POST", "/debug/locks/snapshots", map[string]string{"Origin": "http://evil.example"}, 403, "text/plain", "may not change state"},
		{"DELETE", "/debug/locks/snapshots/" + id, nil, 405, "text/plain", "use GET"},
		{"PUT", "/debug/locks", nil, 405, "text/plain", "use GET"},
		{"DELETE", "/debug/locks/snapshots", nil, 405, "text/plain", "use GET or POST"},
		{"GET", "/debug/locks/nothing", nil, 404, "text/plain", "no such path"},
		{"GET", "/debug/locks/ui/", nil, 301, "", ""},
		{"GET", "/debug/locks/metrics", nil, 404, "text/plain", "promdiag.Handler(m)"},
		{"GET", "/debug/locks/metrics?x=1", nil, 400, "text/plain", "takes none"},
	}
	for _, tt := range tests {
		w := do(t, h, tt.method, tt.target, local, tt.hdr)
		if w.Code != tt.code {
			t.Errorf("%s %s: code = %d, want %d (%s)", tt.method, tt.target, w.Code, tt.code, w.Body)
			continue
		}
		if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, tt.ctype) {
			t.Errorf("%s %s: Content-Type = %q, want %q", tt.method, tt.target, got, tt.ctype)
		}
		if !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: body lacks %q:\n%.600s", tt.method, tt.target, tt.body, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("X-Content-Type-Options") != "nosniff" && w.Code != 405 {
			t.Errorf("%s %s: error without nosniff", tt.method, tt.target)
		}
	}
	// GET never changes state.
	if n := len(m.Snapshots()); n != 1 {
		t.Errorf("%d snapshots after the GETs, want 1", n)
	}
}

func TestAccess(t *testing.T) {
	m := newMonitor(t)
	open := Handler(m, Options{})
	locked := Handler(m, Options{Token: "s3cret"})
	tests := []struct {
		name   string
		h      http.Handler
		remote string
		hdr    map[string]string
		target string
		code   int
	}{
		{"loopback v4", open, "127.0.0.1:1", nil, "/debug/locks", 200},
		{"loopback v6", open, "[::1]:1", nil, "/debug/locks", 200},
		{"remote refused", open, "10.1.2.3:1", nil, "/debug/locks", 403},
		{"remote refused on every path", open, "10.1.2.3:1", nil, "/debug/locks/snapshots/latest.zip", 403},
		{"garbage remote refused", open, "nonsense", nil, "/debug/locks", 403},
		{"token: remote with token", locked, "10.1.2.3:1", map[string]string{"Authorization": "Bearer s3cret"}, "/debug/locks", 200},
		{"token: scheme is case-insensitive", locked, "10.1.2.3:1", map[string]string{"Authorization": "bearer s3cret"}, "/debug/locks", 200},
		{"token: query parameter", locked, "10.1.2.3:1", nil, "/debug/locks?token=s3cret", 200},
		{"token: wrong", locked, "10.1.2.3:1", map[string]string{"Authorization": "Bearer s3cre"}, "/debug/locks", 401},
		{"token: basic auth is not a bearer", locked, "10.1.2.3:1", map[string]string{"Authorization": "Basic czNjcmV0"}, "/debug/locks", 401},
		{"token: missing, even from loopback", locked, "127.0.0.1:1", nil, "/debug/locks", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, tt.h, "GET", tt.target, tt.remote, tt.hdr)
			if w.Code != tt.code {
				t.Errorf("code = %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if w.Code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Error("401 without WWW-Authenticate: Bearer")
			}
		})
	}
}

func TestAllowOrigins(t *testing.T) {
	m := newMonitor(t)
	h := Handler(m, Options{AllowOrigins: []string{"https://ops.example.com"}})
	for _, tt := range []struct {
		origin string
		code   int
	}{
		{"https://ops.example.com", 201},
		{"http://evil.example", 403},
	} {
		r := httptest.NewRequest("POST", "/debug/locks/snapshots", nil)
		r.RemoteAddr = local
		r.Header.Set("Origin", tt.origin)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.code {
			t.Errorf("origin %s: code %d, want %d", tt.origin, w.Code, tt.code)
		}
	}
	// Same origin as the Host is always allowed.
	r := httptest.NewRequest("POST", "http://127.0.0.1:6061/debug/locks/snapshots", nil)
	r.RemoteAddr = local
	r.Header.Set("Origin", "http://127.0.0.1:6061")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 201 {
		t.Errorf("same origin: code %d: %s", w.Code, w.Body)
	}
}

func TestRegister(t *testing.T) {
	m := newMonitor(t)
	mux := http.NewServeMux()
	if err := Register(mux, m, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Register(mux, m, Options{}); err == nil {
		t.Error("second Register succeeded")
	}
	other := http.NewServeMux()
	other.HandleFunc("/debug/locks/", func(http.ResponseWriter, *http.Request) {})
	if err := Register(other, m, Options{}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("Register over a host's pattern: %v", err)
	}
	if err := Register(nil, m, Options{}); err == nil {
		t.Error("Register(nil mux) succeeded")
	}
	w := do(t, mux, "GET", "/debug/locks", local, nil)
	if w.Code != 200 {
		t.Errorf("registered mux answers %d", w.Code)
	}
}

func TestBodyBounded(t *testing.T) {
	m := newMonitor(t)
	h := Handler(m, Options{})
	r := httptest.NewRequest("POST", "/debug/locks/snapshots", strings.NewReader(strings.Repeat("x", 4096)))
	r.RemoteAddr = local
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d", w.Code)
	}
	w = do(t, h, "GET", "/debug/locks?format="+strings.Repeat("j", 2000), local, nil)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "longer than 1024") {
		t.Errorf("long query: %d %s", w.Code, w.Body)
	}
}

// TestEndToEnd drives the whole path a user takes: real contention, a real
// server on loopback, POST a snapshot, download the bundle, open both
// artifacts and read the report.
func TestEndToEnd(t *testing.T) {
	m := newMonitor(t)
	srv := httptest.NewServer(Handler(m, Options{}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 8, 200*time.Microsecond)
	defer func() { cancel(); wait() }()

	testkit.WaitFor(t, 10*time.Second, "status to show mutex_wait > 0", func() bool {
		var st diag.Status
		if err := getJSON(srv.URL+"/debug/locks?format=json", &st); err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Minute {
			if s.Signal == "mutex_wait" && s.Max > 0 {
				return true
			}
		}
		return false
	})
	resp, err := http.Post(srv.URL+"/debug/locks/snapshots", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %s", resp.Status)
	}
	cancel()
	wait()

	zipData := get(t, srv.URL+"/debug/locks/snapshots/latest.zip")
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	for _, want := range []string{"meta.json", "trace.out", "mutex.pb.gz", "goroutines.txt", "timeline.json", "report.txt", "report.json"} {
		if !names[want] {
			t.Errorf("bundle lacks %s", want)
		}
	}
	p, err := profile.Parse(bytes.NewReader(get(t, srv.URL+"/debug/locks/snapshots/latest/mutex.pb.gz")))
	if err != nil {
		t.Fatalf("mutex.pb.gz: %v", err)
	}
	if !strings.Contains(p.String(), "contention.HotLockWorker") {
		t.Error("mutex profile does not name contention.HotLockWorker")
	}
	if tr := get(t, srv.URL+"/debug/locks/snapshots/latest/trace.out"); !bytes.HasPrefix(tr, []byte("go 1.")) {
		t.Errorf("trace.out starts %q", tr[:min(len(tr), 16)])
	}
	var rep struct {
		Headline string          `json:"headline"`
		Sites    json.RawMessage `json:"sites"`
	}
	if err := getJSON(srv.URL+"/debug/locks/snapshots/latest?format=json", &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Headline, "HotLockWorker") || !strings.Contains(string(rep.Sites), "HotLockWorker") {
		t.Errorf("report does not name HotLockWorker: headline %q", rep.Headline)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, data)
	}
	return data
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
