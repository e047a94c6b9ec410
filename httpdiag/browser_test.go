package httpdiag

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit"
	"github.com/lockdiag/lockdiag/internal/testkit/chromium"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
)

// TestUIInBrowser loads the live page in headless Chromium from a server
// whose monitor sees real contention: the plots fill, a rule breaches and
// its snapshot appears in the list, the button takes another, the breach
// recovers, goroutines parked on a held lock are listed, and the rule's
// snapshot opens its report. Then it saves a screenshot.
//
// The README's screenshot (docs/ui.png) is made by this test, during the
// incident:
//
//	LOCKDIAG_SCREENSHOT=$PWD/docs/ui.png go test -run TestUIInBrowser ./httpdiag
//
// Without Chromium (Debian: apt-get install chromium) the test is skipped,
// unless LOCKDIAG_CI is set (.ci/run sets it): then it fails.
func TestUIInBrowser(t *testing.T) {
	bin := chromium.Find()
	testkit.NeedTool(t, bin != "", "Chromium", "apt-get install chromium")
	if trace.IsEnabled() {
		t.Skip("the test binary is being traced")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()

	m, err := diag.New(diag.Config{
		Interval:            50 * time.Millisecond,
		LockWaitersInterval: 200 * time.Millisecond,
		ThreadsInterval:     200 * time.Millisecond,
		TraceWindow:         2 * time.Second,
		WallProfile:         200 * time.Millisecond,
		Dir:                 t.TempDir(),
		Rules:               "mutex_wait > 0.5 for 100ms; lock_waiters > 12 for 1s",
		Warmup:              -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last to first: browser, servers, monitor, then the
	// goroutines parked on the held lock (released after Stop so that
	// their wake-up breaches nothing).
	var releaseStuck func()
	t.Cleanup(func() {
		if releaseStuck != nil {
			releaseStuck()
		}
	})
	t.Cleanup(m.Stop)
	streams := &connTracker{h: Handler(m, Options{})}
	srv := httptest.NewServer(streams) // 127.0.0.1
	t.Cleanup(srv.Close)

	b, err := chromium.Launch(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	page := &pageDriver{t: t, ctx: ctx, b: b}

	// Tall enough to show the report under the plots in the screenshot.
	page.must(b.SetViewport(ctx, 1366, 1240))
	page.must(b.Navigate(ctx, srv.URL+"/debug/locks/ui"))
	page.waitFor("the stream to connect and a few healthy seconds plotted",
		`document.body.dataset.conn === "live" && +document.body.dataset.samples >= 60`)

	// Contention: the mutex_wait rule breaches and takes a snapshot; the
	// button takes another while it lasts, and the page opens its report.
	cctx, stop := context.WithCancel(ctx)
	wait := contention.Mutex(cctx, 6, time.Millisecond)
	var stopOnce sync.Once
	stopContention := func() { stopOnce.Do(func() { stop(); wait() }) }
	t.Cleanup(stopContention)
	page.waitFor("the breach to be shown", `+document.body.dataset.episodes >= 1`)
	page.waitFor("the rule's snapshot in the list", `document.querySelector('#snapshots button .kind-rule') !== null`)
	page.eval(`document.getElementById("snap").click()`, nil)
	page.waitFor("the manual snapshot in the list and its report",
		`document.querySelector('#snapshots button .kind-manual') !== null &&
		 document.body.dataset.posting === "false" &&
		 document.body.dataset.report === document.querySelector('#snapshots button .kind-manual').closest("button").dataset.id`)
	if notice := page.text(`document.getElementById("notice").textContent`); notice != "" {
		t.Errorf("notice after taking a snapshot: %q", notice)
	}
	// The "released by" panel says how many samples it stands on.
	page.waitFor("the released-by panel with its sample count",
		`[...document.querySelectorAll("#parked h3")].some(h => h.textContent.startsWith("Released by") && / \d+ samples?/.test(h.textContent))`)
	// Every state's badge fits its slot beside the rule text, "warming
	// up" the widest.
	var overflow []string
	page.eval(`(() => {
		const out = [];
		const rules = document.getElementById("rules");
		for (const [state, label] of [["warming_up", "warming up"], ["breached", "breached"], ["clearing", "clearing"], ["pending", "pending"]]) {
			const row = document.createElement("div");
			row.className = "rule";
			row.innerHTML = '<span class="badge st-' + state + '">' + label + '</span><div class="rule-body"><div class="rule-text">mutex_wait > 4x baseline min 1 for 100ms</div></div>';
			rules.append(row);
			const b = row.querySelector(".badge"), text = row.querySelector(".rule-text");
			if (b.scrollWidth > b.clientWidth || b.getBoundingClientRect().right > text.getBoundingClientRect().left) out.push(label);
			row.remove();
		}
		return out;
	})()`, &overflow)
	if len(overflow) > 0 {
		t.Errorf("badges overflow into the rule text: %q", overflow)
	}
	// The picture for the README: during the incident, with the breach
	// shaded, both snapshots listed and the manual one's report open.
	page.eval(`new Promise(r => requestAnimationFrame(() => setTimeout(r, 150)))`, nil)
	png, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "ui.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("LOCKDIAG_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", p)
	}
	stopContention()

	page.waitFor("the breach to recover", `document.body.dataset.openEpisodes === "0"`)
	page.waitFor("the rule back to ok", `document.querySelector('#rules .rule[data-state="ok"] .rule-text')?.textContent.startsWith("mutex_wait")`)

	// Goroutines parked on a lock that is held: listed, without a breach
	// (mutex_wait counts a wait only when it ends).
	ready, release := contention.Stuck(5)
	releaseStuck = release
	<-ready
	page.waitFor("the parked goroutines to be listed",
		`[...document.querySelectorAll("#parked td.where")].some(td => td.textContent.includes("StuckWaiter"))`)

	// Open the rule's snapshot.
	var id string
	page.eval(`(() => { const b = document.querySelector('#snapshots button .kind-rule').closest("button"); b.click(); return b.dataset.id })()`, &id)
	page.waitFor("the report of "+id,
		`document.body.dataset.report === `+jsString(id)+` &&
		 document.getElementById("report-text").textContent.startsWith("lockdiag snapshot "+`+jsString(id)+`)`)
	var links []string
	page.eval(`[...document.querySelectorAll("#report-links a")].map(a => a.getAttribute("href"))`, &links)
	for _, want := range []string{"/debug/locks/snapshots/" + id + ".zip", "/debug/locks/snapshots/" + id + "/trace.out", "/debug/locks/snapshots/" + id + "/mutex.pb.gz", "/debug/locks/snapshots/" + id + "/report.txt"} {
		if !contains(links, want) {
			t.Errorf("download links %q lack %q", links, want)
		}
	}
	var thresholds int
	page.eval(`document.querySelectorAll("#rules .rule").length`, &thresholds)
	if thresholds != 2 {
		t.Errorf("%d rules shown, want 2", thresholds)
	}
	page.checkLogs()

	// The pointer over a plot shows the values at its time; the window
	// buttons switch.
	var box struct{ X, Y, W, H float64 }
	page.eval(`(() => { const r = document.querySelector('[data-plot="mutex_wait"] canvas').getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height} })()`, &box)
	page.must(b.Call(ctx, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": box.X + box.W*0.7, "y": box.Y + box.H/2}, nil))
	page.waitFor("the readout to follow the pointer", `document.querySelector('[data-plot="mutex_wait"] .now').classList.contains("hovering")`)
	page.must(b.Call(ctx, "Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": 1, "y": 1}, nil))
	page.waitFor("the readout to let go", `!document.querySelector('[data-plot="mutex_wait"] .now').classList.contains("hovering")`)
	page.eval(`document.querySelector('[data-window="60"]').click()`, nil)
	page.waitFor("the 1 min window", `document.querySelector('[data-window="60"]').classList.contains("on")`)

	// The stream breaks: the page says so, reconnects with backoff and
	// starts again from the hello frame.
	streams.closeAll()
	page.waitFor("the page to notice the broken stream", `document.body.dataset.conn === "down"`)
	page.waitFor("the page to reconnect", `document.body.dataset.conn === "live" && document.body.dataset.hellos === "2"`)
	page.checkLogs()

	// With a token: the page passes it on to its assets, the stream (as a
	// query parameter) and its fetches (as a header).
	tsrv := httptest.NewServer(Handler(m, Options{Token: "s3cret"}))
	t.Cleanup(tsrv.Close)
	page.must(b.Navigate(ctx, tsrv.URL+"/debug/locks/ui?token=s3cret"))
	page.waitFor("the stream to connect with the token",
		`document.body.dataset.conn === "live" && document.querySelector('#parked td.where') !== null`)
	page.eval(`document.querySelector('#snapshots button').click()`, nil)
	page.waitFor("a report fetched with the token", `document.body.dataset.report !== "" && document.body.dataset.report !== undefined`)
	page.eval(`document.querySelector("#report-links a").getAttribute("href")`, &id)
	if !strings.HasSuffix(id, "?token=s3cret") {
		t.Errorf("download link %q does not carry the token", id)
	}
	page.checkLogs()
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// connTracker serves h and remembers the connections it hijacks (the
// stream's websockets), so that the test can break them.
type connTracker struct {
	h     http.Handler
	mu    sync.Mutex
	conns []net.Conn
}

func (c *connTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(&hijackRecorder{ResponseWriter: w, c: c}, r)
}

func (c *connTracker) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

type hijackRecorder struct {
	http.ResponseWriter
	c *connTracker
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.c.mu.Lock()
		h.c.conns = append(h.c.conns, conn)
		h.c.mu.Unlock()
	}
	return conn, rw, err
}

// pageDriver runs the test's steps against the page.
type pageDriver struct {
	t    *testing.T
	ctx  context.Context
	b    *chromium.Browser
	seen int // logs already checked
}

func (p *pageDriver) must(err error) {
	p.t.Helper()
	if err != nil {
		p.fail(err.Error())
	}
}

func (p *pageDriver) eval(expr string, result any) {
	p.t.Helper()
	p.must(p.b.Eval(p.ctx, expr, result))
}

func (p *pageDriver) text(expr string) string {
	p.t.Helper()
	var s string
	p.eval(expr, &s)
	return s
}

// waitFor polls a JavaScript condition until it is true or the test's
// deadline passes.
func (p *pageDriver) waitFor(what, cond string) {
	p.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	started := time.Now()
	for {
		var ok bool
		err := p.b.Eval(p.ctx, "Boolean("+cond+")", &ok)
		if err == nil && ok {
			p.t.Logf("%v: %s", time.Since(started).Round(time.Millisecond), what)
			return
		}
		select {
		case <-p.ctx.Done():
			p.fail("timed out waiting for " + what)
		case <-tick.C:
		}
	}
}

// fail reports the page's state and logs, then stops the test.
func (p *pageDriver) fail(msg string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var state map[string]any
	p.b.Eval(ctx, `({...document.body.dataset, notice: document.getElementById("notice").textContent, conn: document.getElementById("conn").textContent})`, &state)
	p.t.Fatalf("%s\npage state: %v\npage logs:\n%s", msg, state, strings.Join(p.b.Logs(), "\n"))
}

// checkLogs fails the test on any exception, console error or warning, or
// browser error (a Content-Security-Policy violation among them) since the
// last check.
func (p *pageDriver) checkLogs() {
	p.t.Helper()
	logs := p.b.Logs()
	for _, l := range logs[p.seen:] {
		if strings.HasPrefix(l, "exception") || strings.HasPrefix(l, "console.error") ||
			strings.HasPrefix(l, "console.warn") || strings.HasPrefix(l, "log error") || strings.HasPrefix(l, "log warning") {
			p.t.Errorf("page: %s", l)
		}
	}
	p.seen = len(logs)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
