package main

import (
	"archive/zip"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
	"github.com/lockdiag/lockdiag/lockreport"
)

// newServer serves a running diag.Monitor with httpdiag on a loopback
// test server.
func newServer(t *testing.T, opts httpdiag.Options) (*diag.Monitor, *httptest.Server) {
	t.Helper()
	m, err := diag.New(diag.Config{
		Dir:         t.TempDir(),
		Rules:       diag.RulesOff,
		Interval:    20 * time.Millisecond,
		WallProfile: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpdiag.Handler(m, opts))
	t.Cleanup(func() {
		srv.Close()
		m.Stop()
	})
	return m, srv
}

var takeIDPattern = regexp.MustCompile(`(?m)^snapshot (\d{8}-\d{6}-\d{3}) \(took `)

// takeSnapshot runs "lockdiag take" and returns the new snapshot's id.
func takeSnapshot(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, nil, append([]string{"take"}, args...)...)
	m := takeIDPattern.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil {
		t.Fatalf("take %s: got %v", strings.Join(args, " "), r)
	}
	return m[1]
}

func TestRemote(t *testing.T) {
	_, srv := newServer(t, httpdiag.Options{})
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	r := runCLI(t, nil, nil, "snapshots", srv.URL)
	if r.code != exitOK || !strings.Contains(r.stdout, "no snapshots yet; take one with: lockdiag take "+srv.URL) {
		t.Errorf("snapshots of an empty service: got %v", r)
	}
	r = runCLI(t, nil, nil, "snapshot", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "404 Not Found") || !strings.Contains(r.stderr, "/debug/locks/snapshots/latest") {
		t.Errorf("snapshot of an empty service: want exit 1 with the 404 and the URL; got %v", r)
	}

	id := takeSnapshot(t, nil, hostPort) // host:port only
	r = runCLI(t, nil, nil, "take", srv.URL)
	if !strings.Contains(r.stdout, "report: lockdiag snapshot "+srv.URL+" ") || !strings.Contains(r.stdout, "bundle: lockdiag fetch "+srv.URL+" ") {
		t.Errorf("take: want the commands to see the snapshot; got %v", r)
	}

	for _, u := range []string{srv.URL, srv.URL + "/", srv.URL + "/debug/locks", srv.URL + "/debug/locks/", srv.URL + "/debug/locks/snapshots", hostPort} {
		r = runCLI(t, nil, nil, "snapshots", u)
		if r.code != exitOK || !strings.Contains(r.stdout, id+"  manual") {
			t.Errorf("snapshots %s: want a line for %s; got %v", u, id, r)
		}
	}
	r = runCLI(t, nil, nil, "snapshots", "-json", srv.URL)
	var list []diag.SnapshotInfo
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Errorf("snapshots -json: want a list of 2; got %v (%v)", r, err)
	}

	r = runCLI(t, nil, nil, "snapshot", srv.URL+"/debug/locks", id)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "lockdiag snapshot "+id) {
		t.Errorf("snapshot URL %s: want its report; got %v", id, r)
	}
	r = runCLI(t, nil, nil, "snapshot", srv.URL, id, "-json")
	var rep lockreport.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Headline == "" || rep.Window == nil {
		t.Errorf("snapshot -json: want report.json of %s; got %v (%v)", id, r, err)
	}
	r = runCLI(t, nil, nil, "snapshot", srv.URL, "20000101-000000-000")
	if r.code != exitFailure || !strings.Contains(r.stderr, "404 Not Found: not found") {
		t.Errorf("snapshot of an unknown id: want exit 1 and the server's text; got %v", r)
	}

	// fetch: default name from the server (latest resolved), -o FILE, -o -.
	dir := t.TempDir()
	t.Chdir(dir)
	r = runCLI(t, nil, nil, "fetch", srv.URL)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "wrote lockdiag-") {
		t.Fatalf("fetch: got %v", r)
	}
	latest := strings.Fields(r.stdout)[1]
	checkBundle(t, latest)
	if latest == "lockdiag-latest.zip" {
		t.Errorf("fetch latest wrote %s; want the resolved id in the name", latest)
	}
	r = runCLI(t, nil, nil, "fetch", srv.URL, id)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "wrote lockdiag-"+id+".zip (") {
		t.Errorf("fetch URL ID: got %v", r)
	}
	checkBundle(t, "lockdiag-"+id+".zip")
	out := filepath.Join(dir, "sub.zip")
	r = runCLI(t, nil, nil, "fetch", "-o", out, srv.URL, id)
	if r.code != exitOK {
		t.Errorf("fetch -o: got %v", r)
	}
	checkBundle(t, out)
	if fi, err := os.Stat(out); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("fetched bundle's mode: %v %v; want readable by group and others (0644 less the umask)", fi.Mode(), err)
	}
	r = runCLI(t, nil, nil, "fetch", "-o", "-", srv.URL, id)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "PK\x03\x04") {
		t.Errorf("fetch -o -: want the zip on stdout; got exit %d, %d bytes, stderr %s", r.code, len(r.stdout), r.stderr)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("fetch left a temporary file %s", e.Name())
		}
	}
	r = runCLI(t, nil, nil, "fetch", "-o", filepath.Join(dir, "no", "such", "dir.zip"), srv.URL, id)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("fetch into a missing directory: got %v", r)
	}

	// The fetched bundle analyzes.
	r = runCLI(t, nil, nil, "analyze", "lockdiag-"+id+".zip")
	if r.code != exitOK || !strings.Contains(r.stdout, "snapshot "+id) {
		t.Errorf("analyze of the fetched bundle: got %v", r)
	}

	// take with a wall-clock profile; and a value the server refuses.
	id2 := takeSnapshot(t, nil, "-wall", "50ms", srv.URL)
	if id2 == "" {
		t.Error("take -wall: no id")
	}
	r = runCLI(t, nil, nil, "take", "-wall", "1m", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "400 Bad Request: wall must be a duration from 0 to 30s") {
		t.Errorf("take -wall 1m: want exit 1 with the server's rule; got %v", r)
	}
}

// checkBundle checks that name is a zip with a report in it.
func checkBundle(t *testing.T, name string) {
	t.Helper()
	zr, err := zip.OpenReader(name)
	if err != nil {
		t.Errorf("fetched bundle %s: %v", name, err)
		return
	}
	defer zr.Close()
	if _, err := zr.Open("report.txt"); err != nil {
		t.Errorf("fetched bundle %s has no report.txt: %v", name, err)
	}
}

func TestRemoteToken(t *testing.T) {
	_, srv := newServer(t, httpdiag.Options{Token: "s3cret"})

	r := runCLI(t, nil, nil, "snapshots", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "401 Unauthorized") || !strings.Contains(r.stderr, "give -token or set LOCKDIAG_TOKEN") {
		t.Errorf("snapshots without the token: got %v", r)
	}
	r = runCLI(t, nil, nil, "snapshots", "-token", "wrong", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "401 Unauthorized") || !strings.Contains(r.stderr, "the token was refused") {
		t.Errorf("snapshots with a wrong token: got %v", r)
	}
	env := map[string]string{"LOCKDIAG_TOKEN": "s3cret"}
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"-token", "s3cret", srv.URL}},
		{env, []string{srv.URL}},
		{nil, []string{srv.URL + "/debug/locks?token=s3cret"}},
	} {
		r = runCLI(t, tc.env, nil, append([]string{"snapshots"}, tc.args...)...)
		if r.code != exitOK {
			t.Errorf("snapshots %s (env %v): got %v", strings.Join(tc.args, " "), tc.env, r)
		}
	}
	id := takeSnapshot(t, env, srv.URL)
	r = runCLI(t, nil, nil, "snapshot", "-token", "s3cret", srv.URL, id)
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "lockdiag snapshot "+id) {
		t.Errorf("snapshot with the token: got %v", r)
	}
	r = runCLI(t, nil, nil, "take", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "POST "+srv.URL+"/debug/locks/snapshots") || !strings.Contains(r.stderr, "401") {
		t.Errorf("take without the token: got %v", r)
	}
	r = runCLI(t, env, nil, "fetch", "-o", filepath.Join(t.TempDir(), "b.zip"), srv.URL, id)
	if r.code != exitOK {
		t.Errorf("fetch with the token: got %v", r)
	}
}

func TestRemoteUnreachable(t *testing.T) {
	// A port nobody listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := runCLI(t, nil, nil, "snapshots", addr)
	if r.code != exitFailure || !strings.Contains(r.stderr, "GET http://"+addr+"/debug/locks/snapshots") || !strings.Contains(r.stderr, "refused") {
		t.Errorf("snapshots of a closed port: got %v", r)
	}

	// A server that is not lockdiag.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	r = runCLI(t, nil, nil, "snapshots", other.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "404 Not Found") {
		t.Errorf("snapshots of a server without lockdiag: got %v", r)
	}
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}))
	defer junk.Close()
	r = runCLI(t, nil, nil, "snapshots", junk.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not what lockdiag sends") {
		t.Errorf("snapshots of a server answering HTML: got %v", r)
	}
}

func TestParseServiceURL(t *testing.T) {
	for _, tc := range []struct{ in, want, token, err string }{
		{"127.0.0.1:6061", "http://127.0.0.1:6061/debug/locks", "", ""},
		{"localhost:6061/", "http://localhost:6061/debug/locks", "", ""},
		{"http://127.0.0.1:6061", "http://127.0.0.1:6061/debug/locks", "", ""},
		{"https://svc.example.com/debug/locks/", "https://svc.example.com/debug/locks", "", ""},
		{"http://h:1/debug/locks/snapshots/latest?format=json", "http://h:1/debug/locks", "", ""},
		{"http://h:1/app/debug/locks/ui", "http://h:1/app/debug/locks", "", ""},
		{"http://h:1/app", "http://h:1/app/debug/locks", "", ""},
		{"ws://h:1/debug/locks/stream", "http://h:1/debug/locks", "", ""},
		{"wss://h/debug/locks/stream?token=t", "https://h/debug/locks", "t", ""},
		{"  http://[::1]:6061  ", "http://[::1]:6061/debug/locks", "", ""},
		{"", "", "", "empty URL"},
		{"ftp://h/", "", "", "the scheme must be http or https"},
		{"http:///debug/locks", "", "", "no host"},
		{"http://h:notaport", "", "", "bad URL"},
	} {
		u, token, err := parseServiceURL(tc.in)
		got, gotErr := "", ""
		if u != nil {
			got = u.String()
		}
		if err != nil {
			gotErr = err.Error()
		}
		if got != tc.want || token != tc.token || (tc.err == "") != (err == nil) || !strings.Contains(gotErr, tc.err) {
			t.Errorf("parseServiceURL(%q) = %q, %q, %v; want %q, %q, error with %q", tc.in, got, token, err, tc.want, tc.token, tc.err)
		}
	}
}

func TestBundleFileName(t *testing.T) {
	for _, tc := range []struct{ disp, id, want string }{
		{`attachment; filename="lockdiag-20261122-043741-859.zip"`, "latest", "lockdiag-20261122-043741-859.zip"},
		{`attachment; filename="../../etc/passwd"`, "latest", "lockdiag-latest.zip"},
		{`attachment; filename="lockdiag-../x.zip"`, "20261122-043741-859", "lockdiag-20261122-043741-859.zip"},
		{"", "20261122-043741-859", "lockdiag-20261122-043741-859.zip"},
	} {
		if got := bundleFileName(tc.disp, tc.id); got != tc.want {
			t.Errorf("bundleFileName(%q, %q) = %q; want %q", tc.disp, tc.id, got, tc.want)
		}
	}
}
