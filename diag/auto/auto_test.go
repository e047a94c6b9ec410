package auto

import (
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/diag"
)

// The import already started the default runtime in this test binary
// (with whatever environment the tests run in): its goroutines live as long
// as the process, by design, and are not leaks.
func TestMain(m *testing.M) {
	if os.Getenv("LOCKDIAG_TEST_CHILD") == "1" {
		if os.Getenv("LOCKDIAG_TEST_HOST_FR") != "" {
			coexistChild()
		}
		child()
		return
	}
	if name := os.Getenv("LOCKDIAG_TEST_INCIDENT"); name != "" {
		incidentChild(name)
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// childReport is what a child process says about its init.
type childReport struct {
	Running    bool   `json:"running"`
	Addr       string `json:"addr"`
	DefaultMux int    `json:"default_mux"` // status of GET /debug/locks on http.DefaultServeMux
	Own        int    `json:"own"`         // status of GET /debug/locks on the own listener
	Config     string `json:"config"`
	// Stopped says that after Stop the listener refused connections and
	// the monitor was not running (with LOCKDIAG_TEST_STOP=1).
	Stopped bool `json:"stopped"`
}

// child runs in a subprocess: init has run with the environment the
// parent chose. It reports what it sees on stdout and exits.
func child() {
	rep := childReport{Running: Monitor() != nil && Monitor().Enabled(), Addr: Addr()}
	r := httptest.NewRequest("GET", "/debug/locks", nil)
	r.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	http.DefaultServeMux.ServeHTTP(w, r)
	rep.DefaultMux = w.Code
	if rep.Addr != "" {
		resp, err := http.Get("http://" + rep.Addr + "/debug/locks")
		if err == nil {
			rep.Own = resp.StatusCode
			resp.Body.Close()
		}
	}
	if m := Monitor(); m != nil {
		c := m.Config()
		rep.Config = fmt.Sprintf("interval=%v rules=%q", c.Interval, c.Rules)
	}
	if os.Getenv("LOCKDIAG_TEST_STOP") == "1" && rep.Addr != "" {
		Stop()
		Stop()
		_, err := net.Dial("tcp", rep.Addr)
		rep.Stopped = err != nil && !Monitor().Enabled()
	}
	Stop()
	json.NewEncoder(os.Stdout).Encode(rep)
	os.Exit(0)
}

// runChild starts this test binary as a child with env added, and returns
// its report and its stderr.
func runChild(t *testing.T, env ...string) (childReport, string) {
	t.Helper()
	_, stderr, out := runChildRaw(t, env...)
	var rep childReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child output %q: %v\nstderr:\n%s", out, err, stderr)
	}
	return rep, stderr
}

// runChildRaw starts this test binary as a child with env added and
// returns its exit error, its stderr and its stdout.
func runChildRaw(t *testing.T, env ...string) (error, string, []byte) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCKDIAG_TEST_CHILD=1", "LOCKDIAG_DIR=off", "LOCKDIAG_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\nstderr:\n%s", err, stderr.String())
	}
	return err, stderr.String(), out
}

func TestInitDefaults(t *testing.T) {
	rep, stderr := runChild(t)
	if !rep.Running || rep.Addr == "" || rep.Own != 200 || rep.DefaultMux != 200 {
		t.Errorf("report = %+v\nstderr:\n%s", rep, stderr)
	}
	if n := strings.Count(stderr, "status at http://"+rep.Addr+"/debug/locks"); n != 1 {
		t.Errorf("want one log line saying where /debug/locks is, got %d:\n%s", n, stderr)
	}
}

func TestInitOff(t *testing.T) {
	rep, stderr := runChild(t, "LOCKDIAG=off")
	if rep.Running || rep.Addr != "" || rep.DefaultMux != 404 {
		t.Errorf("LOCKDIAG=off: report = %+v", rep)
	}
	if stderr != "" {
		t.Errorf("LOCKDIAG=off logged:\n%s", stderr)
	}
}

func TestInitNoDefaultMuxNoListener(t *testing.T) {
	rep, stderr := runChild(t, "LOCKDIAG_DEFAULT_MUX=off", "LOCKDIAG_ADDR=off")
	if !rep.Running || rep.Addr != "" || rep.DefaultMux != 404 {
		t.Errorf("report = %+v", rep)
	}
	if !strings.Contains(stderr, "no HTTP endpoint") {
		t.Errorf("stderr does not say there is no endpoint:\n%s", stderr)
	}
}

func TestInitBusyPortIsNotFatal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rep, stderr := runChild(t, "LOCKDIAG_ADDR="+ln.Addr().String())
	if !rep.Running || rep.Addr != "" || rep.DefaultMux != 200 {
		t.Errorf("report = %+v", rep)
	}
	if !strings.Contains(stderr, "own listener not started") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr does not explain the busy port:\n%s", stderr)
	}
}

func TestInitBadValuesFallBack(t *testing.T) {
	rep, stderr := runChild(t, "LOCKDIAG_INTERVAL=fast", "LOCKDIAG_SLO=mutex_wait >> 3", "LOCKDIAG_ADDR=nonsense")
	if !rep.Running {
		t.Fatalf("not running: %+v\n%s", rep, stderr)
	}
	if !strings.Contains(rep.Config, "interval=100ms") || !strings.Contains(rep.Config, diag.DefaultRules) {
		t.Errorf("config = %s, want the defaults", rep.Config)
	}
	for _, want := range []string{"LOCKDIAG_INTERVAL", "LOCKDIAG_SLO", "LOCKDIAG_ADDR"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %s:\n%s", want, stderr)
		}
	}
	// The fallback address is the default, 127.0.0.1:6061, which another
	// process may hold: the child ran either way.
}

func TestInitToken(t *testing.T) {
	rep, _ := runChild(t, "LOCKDIAG_TOKEN=s3cret")
	if rep.Own != 401 || rep.DefaultMux != 401 {
		t.Errorf("with a token, unauthenticated requests got own=%d mux=%d, want 401", rep.Own, rep.DefaultMux)
	}
}

func TestReadSettings(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		env     func(string) (string, bool)
		want    settings
		wantErr string
	}{
		{env(), settings{addr: DefaultAddr, defaultMux: true}, ""},
		{env("LOCKDIAG", "off"), settings{off: true, addr: DefaultAddr, defaultMux: true}, ""},
		{env("LOCKDIAG", "perhaps"), settings{addr: DefaultAddr, defaultMux: true}, "LOCKDIAG=\"perhaps\": must be on or off"},
		{env("LOCKDIAG_ADDR", "off"), settings{defaultMux: true}, ""},
		{env("LOCKDIAG_ADDR", ":7000"), settings{addr: ":7000", defaultMux: true}, ""},
		{env("LOCKDIAG_ADDR", "7000"), settings{addr: DefaultAddr, defaultMux: true}, "LOCKDIAG_ADDR=\"7000\": must be host:port or off"},
		{env("LOCKDIAG_DEFAULT_MUX", "0"), settings{addr: DefaultAddr}, ""},
		{env("LOCKDIAG_DEFAULT_MUX", "x"), settings{addr: DefaultAddr, defaultMux: true}, "LOCKDIAG_DEFAULT_MUX"},
		{env("LOCKDIAG_TOKEN", " t "), settings{addr: DefaultAddr, defaultMux: true, token: "t"}, ""},
		{env("LOCKDIAG_ALLOW_ORIGINS", "https://a, ,https://b"), settings{addr: DefaultAddr, defaultMux: true, allowOrigins: []string{"https://a", "https://b"}}, ""},
		{env("LOCKDIAG_LOCK_ORDER", "on"), settings{addr: DefaultAddr, defaultMux: true, lockOrderSet: true, lockOrder: true}, ""},
		{env("LOCKDIAG_LOCK_ORDER", "off"), settings{addr: DefaultAddr, defaultMux: true, lockOrderSet: true}, ""},
		{env("LOCKDIAG_LOCK_ORDER", "sometimes"), settings{addr: DefaultAddr, defaultMux: true}, "LOCKDIAG_LOCK_ORDER=\"sometimes\": must be on or off"},
	}
	for i, tt := range tests {
		got, err := readSettings(tt.env)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%d: got %+v, want %+v", i, got, tt.want)
		}
		if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%d: err = %v, want %q", i, err, tt.wantErr)
		}
	}
}

// TestREADMEConfigurationTable keeps the README's configuration table in
// step with the settings tables: the same variables, with the same
// defaults.
func TestREADMEConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	inREADME := map[string]string{} // variable -> default, as the README shows them
	row := regexp.MustCompile("^\\|\\s*`(LOCKDIAG[A-Z_]*)`\\s*\\|([^|]*)\\|")
	for _, line := range strings.Split(string(readme), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			inREADME[m[1]] = html.UnescapeString(strings.Trim(strings.TrimSpace(m[2]), "`"))
		}
	}
	inCode := map[string]string{}
	for _, k := range table {
		inCode[k.Env] = k.Default
	}
	for _, v := range diag.EnvVars() {
		inCode[v.Name] = v.Default
	}
	for name, def := range inCode {
		got, ok := inREADME[name]
		switch {
		case !ok:
			t.Errorf("README.md's configuration table does not list %s", name)
		case got != def:
			t.Errorf("README.md says %s defaults to %q; the code says %q", name, got, def)
		}
	}
	for name := range inREADME {
		if _, ok := inCode[name]; !ok {
			t.Errorf("README.md lists %s, which nothing reads", name)
		}
	}
}

// TestStop stops the runtime of a child: its listener closes and its
// monitor stops.
func TestStop(t *testing.T) {
	rep, stderr := runChild(t, "LOCKDIAG_TEST_STOP=1")
	if !rep.Stopped {
		t.Errorf("after Stop: %+v\nstderr:\n%s", rep, stderr)
	}
}
