package httpdiag

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
)

// FuzzHandler sends arbitrary paths and queries: the handler never panics,
// never answers 500, and answers every error in plain text. (POST is left
// out: a valid one takes a snapshot; its parameters are fuzzed below.)
func FuzzHandler(f *testing.F) {
	m, err := diag.New(diag.Config{Dir: diag.DirOff, Rules: diag.RulesOff, Interval: 50 * time.Millisecond, Trace: diag.TraceOff})
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Stop)
	if _, err := m.Snapshot(f.Context(), diag.SnapshotOptions{}); err != nil {
		f.Fatal(err)
	}
	h := Handler(m, Options{})
	for _, seed := range []string{
		"/debug/locks", "/debug/locks?format=json", "/debug/locks/snapshots/latest", "/debug/locks/snapshots/latest.zip",
		"/debug/locks/snapshots/latest/meta.json", "/debug/locks/snapshots/..%2f..%2fetc%2fpasswd", "/debug/locks/snapshots/latest/%2e%2e",
		"/debug/locks/metrics?x", "/debug/locks/stream?every=0", "/debug/locks/ui?token=a&token=b", "/debug/locks/snapshots?format=%zz",
	} {
		f.Add(uint8(0), seed)
	}
	methods := []string{"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
	f.Fuzz(func(t *testing.T, method uint8, target string) {
		u, err := url.Parse(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		r := httptest.NewRequest(methods[int(method)%len(methods)], "/", nil)
		r.URL = u
		r.RequestURI = target
		r.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, target, w.Code, w.Body)
		}
		if w.Code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("%s %s: error %d as %q", r.Method, target, w.Code, w.Header().Get("Content-Type"))
		}
	})
}

// FuzzPostParams checks the POST parameters' validation on its own.
func FuzzPostParams(f *testing.F) {
	for _, seed := range []string{"wall=1s", "wall=-1s", "wall=31s", "format=json&wall=2s", "wall=1e400h", "x=1", "%zz", "wall=1s&wall=2s"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := &http.Request{Method: "POST", URL: &url.URL{Path: Prefix + "/snapshots", RawQuery: query}, Header: http.Header{}}
		q, err := params(r, "format", "wall")
		if err != nil {
			return
		}
		if _, err := wantJSON(r, q); err != nil {
			return
		}
		for k := range q {
			if k != "format" && k != "wall" && k != "token" {
				t.Fatalf("params let %q through", k)
			}
		}
	})
}
