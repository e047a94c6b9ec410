package httpdiag

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit"
)

func streamServer(t *testing.T, cfg diag.Config, opts Options) (*diag.Monitor, *httptest.Server) {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Rules == "" {
		cfg.Rules = diag.RulesOff
	}
	m, err := diag.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(m, opts))
	t.Cleanup(func() {
		srv.Close()
		m.Stop()
	})
	return m, srv
}

func wsURL(srv *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/debug/locks/stream" + query
}

func dial(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var f Message
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// readUntil reads frames until one of type ty arrives.
func readUntil(t *testing.T, c *websocket.Conn, ty string) Message {
	t.Helper()
	for {
		if f := readFrame(t, c); f.Type == ty {
			return f
		}
	}
}

func TestStreamFrames(t *testing.T) {
	m, srv := streamServer(t, diag.Config{Rules: "goroutines > 0", Warmup: -1, Cooldown: -1}, Options{})
	c := dial(t, wsURL(srv, ""), nil)

	hello := readFrame(t, c)
	if hello.Type != "hello" || hello.Version != StreamVersion || hello.Interval != "20ms" || hello.Every != 1 {
		t.Fatalf("hello = %+v", hello)
	}
	if len(hello.Signals) != len(diag.Signals()) || hello.Signals[0].Name != "mutex_wait" || hello.Signals[0].Unit != "s/s" {
		t.Errorf("hello signals = %+v", hello.Signals)
	}
	if len(hello.Rules) != 1 || hello.Rules[0].Rule != "goroutines > 0" {
		t.Errorf("hello rules = %+v", hello.Rules)
	}

	// Samples arrive in order; the rule breaches at once and its snapshot
	// follows with links.
	var last time.Time
	var breach, snap *Message
	// The rule can breach before the stream connects: the hello then
	// shows it breached instead of a breach frame.
	breachedBefore := len(hello.Rules) == 1 && hello.Rules[0].State != diag.RuleOK && hello.Rules[0].State != diag.RuleWarmingUp
	for (breach == nil && !breachedBefore) || snap == nil {
		f := readFrame(t, c)
		switch f.Type {
		case "sample":
			if f.Sample == nil || !f.Sample.Time.After(last) {
				t.Fatalf("sample out of order or empty: %+v after %v", f.Sample, last)
			}
			last = f.Sample.Time
			if v, ok := f.Sample.Get(diag.Goroutines); !ok || v < 1 {
				t.Errorf("sample without goroutines: %+v", f.Sample)
			}
		case "breach":
			breach = &f
			if f.Breach.Rule != "goroutines > 0" || !f.Breach.Snapshot {
				t.Errorf("breach = %+v", f.Breach)
			}
		case "snapshot":
			if breach == nil && !breachedBefore {
				t.Fatal("snapshot frame before the breach frame")
			}
			snap = &f
			s := f.Snapshot
			if s.Trigger.Kind != "rule" || s.Report != "/debug/locks/snapshots/"+s.ID || s.Zip != s.Report+".zip" || s.Headline == "" {
				t.Errorf("snapshot frame = %+v", s)
			}
		case "snapshot_failed":
			t.Fatalf("snapshot failed: %s", f.Reason)
		}
	}
	// The link works.
	resp, err := http.Get(srv.URL + snap.Snapshot.Report)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %s", snap.Snapshot.Report, resp.Status)
	}

	// A second client gets the history in its hello.
	c2 := dial(t, wsURL(srv, "?every=5"), nil)
	h2 := readFrame(t, c2)
	if h2.Every != 5 || len(h2.Timeline) == 0 || len(h2.Snapshots) == 0 {
		t.Errorf("second hello: every %d, %d samples, %d snapshots", h2.Every, len(h2.Timeline), len(h2.Snapshots))
	}
	// Decimation: consecutive sample frames are ~5 intervals apart.
	a := readUntil(t, c2, "sample")
	b := readUntil(t, c2, "sample")
	if gap := b.Sample.Time.Sub(a.Sample.Time); gap < 80*time.Millisecond {
		t.Errorf("with every=5 at 20ms, samples %v apart", gap)
	}

	// Stopping the monitor closes the stream with a close frame.
	m.Stop()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("stream ended with %v, want a going-away close", err)
			}
			break
		}
	}
}

// smallBuffers makes a listener's connections buffer little, so that a
// client that does not read blocks the server's writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestStreamSlowClientDoesNotBlockOthers(t *testing.T) {
	m, err := diag.New(diag.Config{Interval: 10 * time.Millisecond, Dir: t.TempDir(), Rules: diag.RulesOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Handler(m, Options{}))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { srv.Close(); m.Stop() })

	// A client with a small receive buffer that stops reading after the
	// hello frame.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	slow, _, err := d.Dial(wsURL(srv, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	readFrame(t, slow)

	fast := dial(t, wsURL(srv, ""), nil)
	readFrame(t, fast) // hello
	// The fast client keeps getting every sample while the slow one sits,
	// for 6s (less than the 10s write timeout that would drop it).
	start := time.Now()
	got := 0
	var prev time.Time
	for time.Since(start) < 6*time.Second {
		f := readUntil(t, fast, "sample")
		if !prev.IsZero() && f.Sample.Time.Sub(prev) > time.Second {
			t.Fatalf("sampler stalled: %v between samples", f.Sample.Time.Sub(prev))
		}
		prev = f.Sample.Time
		got++
	}
	if got < 200 {
		t.Errorf("fast client got %d samples in 6s", got)
	}
	if s, _ := m.Latest(); time.Since(s.Time) > time.Second {
		t.Errorf("sampler is behind: last sample %v ago", time.Since(s.Time))
	}
	// Now the slow client reads: it is told what it lost.
	var f Message
	for n := 0; f.Dropped == 0; n++ {
		f = readFrame(t, slow)
		if n > 2000 {
			t.Fatal("2000 frames and no drop reported")
		}
	}
	t.Logf("slow client: %d frames dropped", f.Dropped)
}

func TestStreamRefusals(t *testing.T) {
	_, srv := streamServer(t, diag.Config{}, Options{MaxStreamClients: 2, AllowOrigins: []string{"https://ops.example"}})

	// Cross-origin is refused; the allowed origin and same origin pass.
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("cross-origin: err %v, resp %v", err, resp)
	}
	a := dial(t, wsURL(srv, ""), http.Header{"Origin": {"https://ops.example"}})
	b := dial(t, wsURL(srv, ""), http.Header{"Origin": {srv.URL}})
	readFrame(t, a)
	readFrame(t, b)
	// Over the limit: 503, cleanly.
	_, resp, err = websocket.DefaultDialer.Dial(wsURL(srv, ""), nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("third client: err %v, resp %v; want 503", err, resp)
	}
	// A closed client frees its place.
	a.Close()
	testkit.WaitFor(t, 10*time.Second, "a place after a client closed", func() bool {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil)
		if err == nil {
			c.Close()
			return true
		}
		if resp == nil || resp.StatusCode != 503 {
			t.Fatalf("after a close: %v %v", err, resp)
		}
		return false
	})

	for _, tt := range []struct {
		query string
		code  int
		body  string
	}{
		{"?every=0", 400, "every must be a whole number from 1 to 600"},
		{"?every=x", 400, "every must be"},
		{"?foo=1", 400, "unknown parameter"},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, tt.query), nil)
		if err == nil || resp == nil || resp.StatusCode != tt.code {
			t.Errorf("%s: err %v resp %v", tt.query, err, resp)
		}
	}
	// A plain GET is told what the path is.
	resp, err = http.Get(srv.URL + "/debug/locks/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain GET: %s", resp.Status)
	}
}

func TestStreamToken(t *testing.T) {
	_, srv := streamServer(t, diag.Config{}, Options{Token: "tok"})
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("no token: %v %v", err, resp)
	}
	c := dial(t, wsURL(srv, "?token=tok"), nil)
	if f := readFrame(t, c); f.Type != "hello" {
		t.Errorf("with the token in the query: %+v", f)
	}
	c2 := dial(t, wsURL(srv, ""), http.Header{"Authorization": {"Bearer tok"}})
	if f := readFrame(t, c2); f.Type != "hello" {
		t.Errorf("with the token in the header: %+v", f)
	}
}

func TestFrameJSON(t *testing.T) {
	// The documented schema: type, time and dropped always; the rest by type.
	data, err := json.Marshal(frameOf(diag.Event{Type: diag.EventSnapshotSkipped, Time: time.Unix(0, 0).UTC(), Reason: "cooldown: 41s left"}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"snapshot_skipped","time":"1970-01-01T00:00:00Z","dropped":0,"reason":"cooldown: 41s left"}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
}
