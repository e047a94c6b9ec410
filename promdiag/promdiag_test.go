package promdiag

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/locks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMonitor(t testing.TB, rules string) *diag.Monitor {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	m, err := diag.New(diag.Config{
		Interval:            20 * time.Millisecond,
		LockWaitersInterval: 100 * time.Millisecond,
		TraceWindow:         2 * time.Second,
		WallProfile:         -1,
		Dir:                 diag.DirOff,
		Rules:               rules,
		Warmup:              -1,
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

// contend runs lock contention until the test ends.
func contend(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	wait := contention.Mutex(ctx, 6, time.Millisecond)
	t.Cleanup(func() { cancel(); wait() })
}

// TestCollector checks the families, their types and labels, the counts
// that follow a breach and a manual snapshot, and lints the exposition
// with client_golang's promlint.
func TestCollector(t *testing.T) {
	m := newMonitor(t, "mutex_wait > 0.5 for 40ms")
	contend(t)
	testkit.WaitFor(t, 20*time.Second, "a breach and its snapshot", func() bool {
		c := m.Counters()
		return c.Breaches[m.Status().Rules[0].Rule] > 0 && c.Snapshots["rule"] > 0
	})
	if _, err := m.Snapshot(context.Background(), diag.SnapshotOptions{Reason: "test"}); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(m))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType().String()
		if strings.HasPrefix(mf.GetName(), "go_") || !strings.HasPrefix(mf.GetName(), "lockdiag_") {
			t.Errorf("family %s: every name must start with lockdiag_", mf.GetName())
		}
	}
	for name, typ := range map[string]string{
		"lockdiag_mutex_wait_seconds_total":  "COUNTER",
		"lockdiag_rule_breaches_total":       "COUNTER",
		"lockdiag_snapshots_total":           "COUNTER",
		"lockdiag_snapshots_skipped_total":   "COUNTER",
		"lockdiag_snapshots_failed_total":    "COUNTER",
		"lockdiag_mutex_wait_ratio":          "GAUGE",
		"lockdiag_sched_latency_p99_seconds": "GAUGE",
		"lockdiag_goroutines":                "GAUGE",
		"lockdiag_lock_waiters":              "GAUGE",
		"lockdiag_rule_breached":             "GAUGE",
		"lockdiag_snapshots_stored":          "GAUGE",
		"lockdiag_info":                      "GAUGE",
	} {
		if types[name] != typ {
			t.Errorf("%s: type %q, want %s", name, types[name], typ)
		}
	}

	h := Handler(m)
	text := scrape(t, h, "")
	for _, want := range []string{
		`lockdiag_rule_breaches_total{rule="mutex_wait > 0.5 for 40ms"} `,
		`lockdiag_snapshots_total{trigger="manual"} 1`,
		`lockdiag_snapshots_total{trigger="rule"} `,
		`lockdiag_snapshots_skipped_total{reason="cooldown"} `,
		`lockdiag_info{go_version="go1.`,
		`trace="auto"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
	om := scrape(t, h, "application/openmetrics-text; version=1.0.0")
	for _, want := range []string{"# UNIT lockdiag_mutex_wait_seconds seconds", "# TYPE lockdiag_mutex_wait_seconds counter", "lockdiag_snapshots_created{trigger=\"manual\"}", "# EOF"} {
		if !strings.Contains(om, want) {
			t.Errorf("OpenMetrics exposition lacks %q:\n%s", want, om)
		}
	}
	if bad, _ := strconv.ParseFloat(valueOf(text, "lockdiag_mutex_wait_seconds_total"), 64); bad <= 0 {
		t.Errorf("lockdiag_mutex_wait_seconds_total = %v under contention", bad)
	}
}

func scrape(t testing.TB, h http.Handler, accept string) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/debug/locks/metrics", nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

func valueOf(exposition, name string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestTraceModeLabel: the info metric's trace label is the mode, and
// lockdiag_trace_recording says whether the recorder records.
func TestTraceModeLabel(t *testing.T) {
	for _, mode := range []string{diag.TraceOn, diag.TraceArmed} {
		m, err := diag.New(diag.Config{Dir: diag.DirOff, Rules: diag.RulesOff, Trace: mode})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		text := scrape(t, Handler(m), "")
		m.Stop()
		if !strings.Contains(text, `trace="`+mode+`"`) {
			t.Errorf("mode %s: no trace label with it:\n%s", mode, text)
		}
		want := "lockdiag_trace_recording 1"
		if mode == diag.TraceArmed {
			want = "lockdiag_trace_recording 0"
		}
		if !strings.Contains(text, want) {
			t.Errorf("mode %s: want %q in:\n%s", mode, want, text)
		}
	}
}

// TestPromtoolCheckMetrics runs Prometheus's own linter over the text
// exposition that /debug/locks/metrics serves.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testkit.LookPath("promtool")
	testkit.NeedTool(t, promtool != "", "promtool", "apt-get install prometheus")
	m := newMonitor(t, "")
	contend(t)
	// A named lock, so that its histograms are checked too.
	var mu locks.Mutex
	mu.SetName("promtool_check")
	enforceDurations(&mu, "promtool_check", 3, time.Millisecond)
	defer goruntime.KeepAlive(&mu)
	testkit.WaitFor(t, 10*time.Second, "a sample with lock_waiters", func() bool {
		s, ok := m.Latest()
		_, measured := s.Get(diag.LockWaiters)
		return ok && measured
	})
	text := scrape(t, Handler(m), "")
	if !strings.Contains(text, `lockdiag_lock_wait_duration_seconds_bucket{lock_id="promtool_check"`) {
		t.Errorf("no named lock in the exposition:\n%s", text)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\nexposition:\n%s", err, out, text)
	}
}

// TestPromtoolCheckRules checks the alert rules file in the repository.
func TestPromtoolCheckRules(t *testing.T) {
	promtool := testkit.LookPath("promtool")
	testkit.NeedTool(t, promtool != "", "promtool", "apt-get install prometheus")
	out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	t.Logf("%s", out)
}

const rulesFile = "../deploy/prometheus/lockdiag-rules.yml"

// TestPrometheusScrapes starts a real Prometheus that scrapes this
// process's /debug/locks/metrics on loopback while it contends on a lock,
// and asks Prometheus's query API for the rate of the lock-wait counter.
func TestPrometheusScrapes(t *testing.T) {
	bin := testkit.LookPath("prometheus")
	testkit.NeedTool(t, bin != "", "prometheus", "apt-get install prometheus")
	m := newMonitor(t, "")
	contend(t)
	srv := httptest.NewServer(mux(m)) // 127.0.0.1
	t.Cleanup(srv.Close)
	target := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: lockdiag
    metrics_path: /debug/locks/metrics
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var log syncBuffer
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log // one writer, but read while it runs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	query := func(q string) (float64, bool) {
		u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q)
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		body, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(body, &r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	var rate float64
	deadline := 60 * time.Second
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	testkit.WaitFor(t, deadline, "Prometheus to report a positive rate of lockdiag_mutex_wait_seconds_total", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		v, ok := query(`rate(lockdiag_mutex_wait_seconds_total{job="lockdiag"}[10s])`)
		rate = v
		return ok && v > 0
	})
	t.Logf("Prometheus: rate(lockdiag_mutex_wait_seconds_total[10s]) = %.3g s/s after %v", rate, time.Since(start).Round(time.Millisecond))
	if v, ok := query(`lockdiag_info{trace="auto"}`); !ok || v != 1 {
		t.Errorf("lockdiag_info{trace=\"auto\"} = %v, %v", v, ok)
	}
	testkit.WaitFor(t, 20*time.Second, "the recording rule to evaluate", func() bool {
		v, ok := query(`instance:lockdiag_mutex_wait_seconds:rate1m`)
		return ok && v > 0
	})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// mux serves m as diag/auto does, metrics through this package.
func mux(m *diag.Monitor) http.Handler {
	mux := http.NewServeMux()
	if err := httpdiag.Register(mux, m, httpdiag.Options{Metrics: Handler(m)}); err != nil {
		panic(err)
	}
	return mux
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func BenchmarkScrape(b *testing.B) {
	m := newMonitor(b, "")
	testkit.WaitFor(b, 5*time.Second, "a sample", func() bool { _, ok := m.Latest(); return ok })
	h := Handler(m)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/debug/locks/metrics", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// TestCoreDoesNotLinkClientGolang: only this package (and diag/auto, which
// wires it in) may link client_golang.
func TestCoreDoesNotLinkClientGolang(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	core := []string{"diag", "httpdiag", "flightrec", "lockreport", "bundle", "cmd/lockdiag"}
	args := []string{"list", "-deps"}
	for _, p := range core {
		args = append(args, "github.com/lockdiag/lockdiag/"+p)
	}
	out, err := exec.Command(filepath.Join(goruntime.GOROOT(), "bin", "go"), args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/prometheus/") {
			t.Errorf("%s link %s", strings.Join(core, ", "), dep)
		}
	}
}
