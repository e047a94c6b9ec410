package main

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
)

// sampleLine matches a sample line of watch's plain output.
var sampleLine = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  mutex_wait (\d+\.\d\d s/s|-)  lock_waiters \S+  sched p99 \S+  goroutines \S+ \(\S+ waiting\)`)

func TestWatchSamples(t *testing.T) {
	_, srv := newServer(t, httpdiag.Options{})
	r := runCLI(t, nil, nil, "watch", "-n", "5", srv.URL)
	if r.code != exitOK {
		t.Fatalf("watch -n 5: got %v", r)
	}
	if n := len(sampleLine.FindAllString(r.stdout, -1)); n != 5 {
		t.Errorf("watch -n 5: %d sample lines; want 5:\n%s", n, r.stdout)
	}
	if !strings.HasPrefix(r.stdout, "lockdiag watch: connected to "+srv.URL+"/debug/locks (samples every 20ms)") || !strings.Contains(r.stdout, "\nrules: none\n") {
		t.Errorf("watch: want a first line saying where it connected and the rules; got\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "\r") || strings.Contains(r.stdout, "\x1b") {
		t.Errorf("watch to a non-terminal wrote terminal controls: %q", r.stdout)
	}

	r = runCLI(t, nil, nil, "watch", "-n", "2", "-every", "3", srv.URL)
	if r.code != exitOK || len(sampleLine.FindAllString(r.stdout, -1)) != 2 || !strings.Contains(r.stdout, "showing every 3") {
		t.Errorf("watch -n 2 -every 3: got %v", r)
	}
}

func TestWatchSnapshotEvent(t *testing.T) {
	_, srv := newServer(t, httpdiag.Options{})
	out, errb := newNotifyBuffer(), newNotifyBuffer()
	c := &cli{stdout: out, stderr: errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() { done <- c.run(ctx, []string{"watch", srv.URL}) }()

	// Once the hello frame is shown the client is subscribed: a snapshot
	// taken now must be announced.
	out.waitFor(t, "connected to", 20*time.Second)
	id := takeSnapshot(t, nil, srv.URL)
	out.waitFor(t, "SNAPSHOT   "+id+" (manual, took ", 20*time.Second)
	out.waitFor(t, "bundle: "+srv.URL+"/debug/locks/snapshots/"+id+".zip", 20*time.Second)
	if !strings.Contains(out.String(), "report: "+srv.URL+"/debug/locks/snapshots/"+id+"\n") {
		t.Errorf("no report URL for the snapshot:\n%s", out.String())
	}

	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("watch interrupted: exit %d; want 0; stderr: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end after its context was canceled")
	}
	if errb.String() != "" {
		t.Errorf("watch printed to stderr: %s", errb.String())
	}
}

func TestWatchToken(t *testing.T) {
	_, srv := newServer(t, httpdiag.Options{Token: "s3cret"})
	r := runCLI(t, nil, nil, "watch", "-n", "1", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "401 Unauthorized") || !strings.Contains(r.stderr, "give -token or set LOCKDIAG_TOKEN") {
		t.Errorf("watch without the token: got %v", r)
	}
	r = runCLI(t, map[string]string{"LOCKDIAG_TOKEN": "s3cret"}, nil, "watch", "-n", "2", srv.URL)
	if r.code != exitOK || len(sampleLine.FindAllString(r.stdout, -1)) != 2 {
		t.Errorf("watch with the token: got %v", r)
	}
}

func TestWatchBadURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := runCLI(t, nil, nil, "watch", addr)
	if r.code != exitFailure || !strings.Contains(r.stderr, "cannot connect to ws://"+addr+"/debug/locks/stream") || !strings.Contains(r.stderr, "refused") {
		t.Errorf("watch of a closed port: got %v", r)
	}

	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	r = runCLI(t, nil, nil, "watch", other.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "404 Not Found") || !strings.Contains(r.stderr, "is lockdiag served at") {
		t.Errorf("watch of a server without lockdiag: got %v", r)
	}

}

// fakeStream is a stream server that plays scripted frames: each
// connection gets the next script; a script ending with close=true drops
// the connection after its frames.
type fakeStream struct {
	t       *testing.T
	mu      sync.Mutex
	scripts [][]httpdiag.Message
	drop    []bool
	conns   int
	wg      sync.WaitGroup
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	if r.URL.Path != "/debug/locks/stream" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	i := f.conns
	f.conns++
	f.mu.Unlock()
	if i >= len(f.scripts) {
		http.Error(w, "lockdiag: too many stream clients (the limit is 0)", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for _, fr := range f.scripts[i] {
		data, err := json.Marshal(fr)
		if err != nil {
			f.t.Error(err)
			return
		}
		if err := conn.WriteMessage(websocket.TextMessage, data); err != nil {
			return
		}
	}
	if f.drop[i] {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "lockdiag stopped"), time.Now().Add(time.Second))
		return
	}
	// Wait for the client's close (answered by the default handler).
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

func sample(t time.Time, mutexWait, waiters, goroutines, waiting float64) *diag.Sample {
	s := &diag.Sample{Time: t}
	for i := range s.Values {
		s.Values[i] = math.NaN()
	}
	s.Values[diag.MutexWait] = mutexWait
	s.Values[diag.LockWaiters] = waiters
	s.Values[diag.Goroutines] = goroutines
	s.Values[diag.GoroutinesWaiting] = waiting
	s.Values[diag.SchedLatencyP99] = 0.0012
	return s
}

func TestWatchReconnectAndEvents(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 4, 37, 41, 0, time.Local)
	rule := "mutex_wait > 4x baseline min 1 for 100ms"
	breach := &diag.Breach{Breach: bundle.Breach{Rule: rule, Signal: "mutex_wait", Value: 9.53, Threshold: 1, Baseline: 0.00125}, Snapshot: true}
	recovered := &diag.Breach{Breach: bundle.Breach{Rule: rule, Signal: "mutex_wait"}, Peak: 22.7, Duration: 20 * time.Second}
	snap := &httpdiag.SnapshotLink{
		SnapshotInfo: diag.SnapshotInfo{ID: "20261122-043741-859", Trigger: bundle.Trigger{Kind: bundle.TriggerRule, Breach: &breach.Breach}, Headline: "16 goroutines waited 2.62s on the Mutex", Took: 1028 * time.Millisecond},
		Report:       "/debug/locks/snapshots/20261122-043741-859",
		Zip:          "/debug/locks/snapshots/20261122-043741-859.zip",
	}
	hello := httpdiag.Message{Type: "hello", Time: t0, Interval: "100ms", Every: 1, Trace: "recording",
		Rules:    []diag.RuleStatus{{Rule: rule, State: "ok"}},
		Timeline: []diag.Sample{*sample(t0.Add(-time.Second), 0, 3, 90, 70)}}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	fs := &fakeStream{t: t,
		scripts: [][]httpdiag.Message{
			{hello,
				{Type: "sample", Time: at(0), Sample: sample(at(0), 0.01, math.NaN(), 92, 75)},
				{Type: "sample", Time: at(100 * time.Millisecond), Sample: sample(at(100*time.Millisecond), 0.02, 4, 92, 75)}},
			{hello,
				{Type: "breach", Time: at(time.Second), Breach: breach},
				{Type: "sample", Time: at(time.Second), Sample: sample(at(time.Second), 9.53, 12, 92, 75), Dropped: 3},
				{Type: "snapshot", Time: at(2 * time.Second), Snapshot: snap},
				{Type: "snapshot_skipped", Time: at(3 * time.Second), Breach: breach, Reason: "cooldown: 58s left"},
				{Type: "recovered", Time: at(4 * time.Second), Breach: recovered},
				{Type: "sample", Time: at(4 * time.Second), Sample: sample(at(4*time.Second), 0.1, math.NaN(), 92, 75), Dropped: 3},
				{Type: "sample", Time: at(5 * time.Second), Sample: sample(at(5*time.Second), 0.1, 0, 92, 75), Dropped: 3}},
		},
		drop: []bool{true, false},
	}
	srv := httptest.NewServer(fs)
	defer func() {
		srv.Close()
		fs.wg.Wait()
	}()

	for _, mode := range []struct {
		terminal bool
		columns  int
	}{{false, 0}, {true, 200}, {true, 60}} {
		terminal := mode.terminal
		fs.mu.Lock()
		fs.conns = 0
		fs.mu.Unlock()
		out, errb := newNotifyBuffer(), newNotifyBuffer()
		c := &cli{stdout: out, stderr: errb, getenv: func(string) string { return "" }, terminal: terminal, columns: mode.columns, backoff: time.Millisecond}
		code := c.run(context.Background(), []string{"watch", "-n", "5", srv.URL})
		got := out.String()
		if code != exitOK {
			t.Fatalf("watch (terminal %v): exit %d; stdout:\n%s\nstderr:\n%s", terminal, code, got, errb.String())
		}
		if !strings.Contains(errb.String(), "lockdiag watch: connection lost (the server closed the stream: lockdiag stopped); reconnecting in 1ms") {
			t.Errorf("terminal %v: want the lost connection on stderr; got %q", terminal, errb.String())
		}
		switch {
		case terminal && mode.columns == 200:
			if !strings.Contains(got, clearLine+"04:37:41  mutex_wait 0.01 s/s  lock_waiters 3  sched p99 1.2ms  goroutines 92 (75 waiting)"+clearLine) ||
				!strings.Contains(got, clearLine+"04:37:42  BREACH     ") || !strings.HasSuffix(got, "\n") {
				t.Errorf("terminal: want sample lines redrawn with %q, events on their own lines and a final newline; got %q", clearLine, got)
			}
			continue
		case terminal:
			// 60 columns: single spaces, cut to 59.
			if !strings.Contains(got, clearLine+"04:37:41 mutex_wait 0.01 s/s lock_waiters 3 sched p99 1.2m…"+clearLine) {
				t.Errorf("narrow terminal: want compact lines cut to 59 columns; got %q", got)
			}
			continue
		}
		for _, want := range []string{
			"lockdiag watch: connected to " + srv.URL + "/debug/locks (samples every 100ms); trace recording\n",
			"rules: " + rule + " (ok)\n",
			// lock_waiters was NaN: the last value (from the hello's timeline) is shown.
			"04:37:41  mutex_wait 0.01 s/s  lock_waiters 3  sched p99 1.2ms  goroutines 92 (75 waiting)\n",
			"lockdiag watch: reconnected to " + srv.URL,
			"04:37:42  BREACH     " + rule + ": mutex_wait = 9.53 > 1 (baseline 0.00125); a snapshot follows\n",
			"04:37:42  mutex_wait 9.53 s/s  lock_waiters 12  sched p99 1.2ms  goroutines 92 (75 waiting)  dropped 3  [rule mutex_wait > 4x baseline…: breached]\n",
			"04:37:43  SNAPSHOT   20261122-043741-859 (rule " + rule + ", took 1.028s)\n",
			"           16 goroutines waited 2.62s on the Mutex\n",
			"           report: " + srv.URL + "/debug/locks/snapshots/20261122-043741-859\n",
			"           bundle: " + srv.URL + "/debug/locks/snapshots/20261122-043741-859.zip\n",
			"04:37:44  SKIPPED    snapshot skipped for " + rule + ": cooldown: 58s left\n",
			"04:37:45  RECOVERED  " + rule + ": cleared, peak 22.7, breached for 20s\n",
			"04:37:45  mutex_wait 0.10 s/s  lock_waiters 12  sched p99 1.2ms  goroutines 92 (75 waiting)  dropped 3\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("no %q in:\n%s", want, got)
			}
		}
		if n := len(sampleLine.FindAllString(got, -1)); n != 5 {
			t.Errorf("%d sample lines; want 5 (-n 5 across the reconnection):\n%s", n, got)
		}
	}
}

func TestWatchRetries(t *testing.T) {
	// After a drop, watch retries with growing delays until interrupted.
	t0 := time.Now()
	fs := &fakeStream{t: t,
		scripts: [][]httpdiag.Message{{{Type: "hello", Time: t0, Interval: "20ms"}, {Type: "sample", Time: t0, Sample: sample(t0, 0, 0, 1, 0)}}},
		drop:    []bool{true},
	}
	srv := httptest.NewServer(fs)
	defer func() {
		srv.Close()
		fs.wg.Wait()
	}()
	out, errb := newNotifyBuffer(), newNotifyBuffer()
	c := &cli{stdout: out, stderr: errb, getenv: func(string) string { return "" }, backoff: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() { done <- c.run(ctx, []string{"watch", srv.URL}) }()
	// The second connection is refused with 503: watch keeps trying.
	errb.waitFor(t, "503 Service Unavailable: too many stream clients (the limit is 0); retrying in 2ms", 20*time.Second)
	errb.waitFor(t, "retrying in 4ms", 20*time.Second)
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("watch interrupted while reconnecting: exit %d; want 0", code)
	}
}

func TestFmtSeconds(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0s"}, {0.0000123, "12.3µs"}, {0.000524, "524µs"}, {0.0012, "1.2ms"}, {0.01234, "12.3ms"},
		{0.5236, "524ms"}, {2.5, "2.5s"}, {12.34, "12.3s"}, {123.4, "2m3s"},
	} {
		if got := fmtSeconds(tc.v); got != tc.want {
			t.Errorf("fmtSeconds(%v) = %q; want %q", tc.v, got, tc.want)
		}
	}
}
