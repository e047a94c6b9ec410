package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
)

const watchAbout = `
Watch follows a service's stream (/debug/locks/stream): one line per sample
with the lock-wait signals, and a line for every breach, recovery and snapshot
as it happens, with the URLs to fetch the snapshot. On a terminal the sample
line is redrawn in place. When the connection drops, watch reconnects with
backoff. Ctrl-C ends it.
` + urlHelp

const (
	// streamReadTimeout is how long the stream may stay silent: the
	// server pings every 54s.
	streamReadTimeout = 90 * time.Second
	streamWriteWait   = 5 * time.Second
	// closeWait is how long to wait for the server's answer to our close.
	closeWait   = time.Second
	maxBackoff  = 10 * time.Second
	initBackoff = 250 * time.Millisecond
)

func (c *cli) watch(ctx context.Context, args []string) int {
	fs := newFlagSet("watch", "[-token T] [-every N] [-n N] URL", watchAbout)
	token := fs.String("token", "", "bearer `TOKEN` (default $LOCKDIAG_TOKEN)")
	every := fs.Int("every", 1, "show every `N`th sample (1 to 600)")
	count := fs.Int("n", 0, "stop after `N` samples (0: until interrupted)")
	pos, code, ok := c.parse(fs, args, 1, "URL")
	if !ok {
		return code
	}
	if *every < 1 || *every > 600 {
		return c.usageError(fs, "-every must be from 1 to 600, not %d", *every)
	}
	if *count < 0 {
		return c.usageError(fs, "-n cannot be negative")
	}
	r, err := c.newRemote(pos[0], *token)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}
	defer r.close()
	w := &watcher{
		cli:    c,
		r:      r,
		every:  *every,
		limit:  *count,
		out:    &statusPrinter{w: c.stdout, errw: c.stderr, terminal: c.terminal, columns: c.columns},
		latest: map[diag.Signal]float64{},
		rules:  map[string]string{},
	}
	defer w.out.finish()
	return w.run(ctx)
}

// watcher is one watch command: it reconnects until its context ends or
// it has shown limit samples.
type watcher struct {
	cli   *cli
	r     *remote
	every int
	limit int // 0: no limit

	out     *statusPrinter
	samples int // sample lines shown, across connections
	// latest holds each signal's last measured value: slow signals
	// (lock_waiters, futex_waiters) are not measured in every sample.
	latest map[diag.Signal]float64
	// rules maps a rule's text to its state, from the hello frame and
	// the breach and recovered events since.
	rules     map[string]string
	ruleOrder []string
}

// streamURL is the websocket URL of the stream.
func (w *watcher) streamURL() *url.URL {
	u := *w.r.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path += "/stream"
	if w.every != 1 {
		u.RawQuery = url.Values{"every": {strconv.Itoa(w.every)}}.Encode()
	}
	return &u
}

// fatalError marks connection errors that reconnecting cannot fix.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func (w *watcher) run(ctx context.Context) int {
	backoff := w.cli.backoff
	if backoff <= 0 {
		backoff = initBackoff
	}
	delay := backoff
	connected := false
	for {
		conn, err := w.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			var fe fatalError
			if !connected || errors.As(err, &fe) {
				w.out.clearStatus()
				return w.cli.fail("watch", err)
			}
			w.out.note(fmt.Sprintf("lockdiag watch: %v; retrying in %v", err, delay))
		} else {
			wasConnected := connected
			connected = true
			done, gotHello, err := w.session(ctx, conn, wasConnected)
			if done {
				return exitOK
			}
			if gotHello {
				delay = backoff
			}
			w.out.note(fmt.Sprintf("lockdiag watch: connection lost (%v); reconnecting in %v", err, delay))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return exitOK
		case <-t.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}

// dial opens the stream. Answers that are not a websocket upgrade become
// errors with the server's text; those that reconnecting cannot fix are
// fatalErrors.
func (w *watcher) dial(ctx context.Context) (*websocket.Conn, error) {
	u := w.streamURL()
	shown := u.Redacted()
	hdr := http.Header{"User-Agent": {"lockdiag-cli"}}
	if w.r.token != "" {
		hdr.Set("Authorization", "Bearer "+w.r.token)
	}
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: dialTimeout,
		NetDialContext:   (&net.Dialer{Timeout: dialTimeout}).DialContext,
	}
	conn, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err == nil {
		return conn, nil
	}
	if resp == nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot connect to %s: %v", shown, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &httpError{method: "GET", url: shown, status: resp.StatusCode, statusText: resp.Status, msg: serverMessage(body)}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.hint = "the token was refused"
		if w.r.token == "" {
			e.hint = "give -token or set LOCKDIAG_TOKEN"
		}
		return nil, fatalError{e}
	case http.StatusNotFound:
		e.hint = "is lockdiag served at " + w.r.base.Redacted() + "? streams need lockdiag with httpdiag's stream"
		return nil, fatalError{e}
	case http.StatusBadRequest, http.StatusForbidden:
		return nil, fatalError{e}
	}
	return nil, e
}

// session reads one connection's frames until the context ends, the limit
// is reached (done is then true) or the connection fails.
func (w *watcher) session(ctx context.Context, conn *websocket.Conn, reconnected bool) (done, gotHello bool, err error) {
	defer conn.Close()
	var closing atomic.Bool
	conn.SetReadLimit(32 << 20) // the hello frame carries up to 3000 samples
	conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
	conn.SetPingHandler(func(data string) error {
		if !closing.Load() {
			conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(streamWriteWait))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	// sayBye sends a close frame once and gives the server closeWait to
	// answer it.
	sayBye := func() {
		if closing.Swap(true) {
			return
		}
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(streamWriteWait))
		conn.SetReadDeadline(time.Now().Add(closeWait))
	}
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-ctx.Done():
			sayBye()
		case <-ended:
		}
	}()

	for {
		var f httpdiag.Message
		if err := conn.ReadJSON(&f); err != nil {
			if closing.Load() {
				// Our close was answered, or the answer did not come in time.
				return true, gotHello, nil
			}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				return false, gotHello, fmt.Errorf("a frame that is not lockdiag's JSON: %v", err)
			}
			return false, gotHello, describeReadError(err)
		}
		conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
		switch f.Type {
		case "hello":
			gotHello = true
			w.hello(&f, reconnected)
		case "sample":
			if f.Sample == nil {
				continue
			}
			w.samples++
			w.out.status(w.sampleLine(&f))
			if w.limit > 0 && w.samples >= w.limit {
				sayBye()
				// Read until the server answers the close (or closeWait).
				for {
					if _, _, err := conn.NextReader(); err != nil {
						return true, gotHello, nil
					}
				}
			}
		default:
			w.event(&f)
		}
	}
}

func describeReadError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Text != "" {
			return fmt.Errorf("the server closed the stream: %s", ce.Text)
		}
		return fmt.Errorf("the server closed the stream (code %d)", ce.Code)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("nothing received for %v", streamReadTimeout)
	}
	return err
}

func (w *watcher) hello(f *httpdiag.Message, reconnected bool) {
	verb := "connected to"
	if reconnected {
		verb = "reconnected to"
	}
	s := fmt.Sprintf("lockdiag watch: %s %s (samples every %s", verb, w.r.base.Redacted(), f.Interval)
	if f.Every > 1 {
		s += fmt.Sprintf(", showing every %d", f.Every)
	}
	s += ")"
	if f.Trace != "" {
		s += "; trace " + f.Trace
	}
	w.out.event(s)
	w.rules = map[string]string{}
	w.ruleOrder = w.ruleOrder[:0]
	var rules []string
	for _, r := range f.Rules {
		w.rules[r.Rule] = string(r.State)
		w.ruleOrder = append(w.ruleOrder, r.Rule)
		rules = append(rules, fmt.Sprintf("%s (%s)", r.Rule, r.State))
	}
	if len(rules) > 0 {
		w.out.event("rules: " + strings.Join(rules, "; "))
	} else {
		w.out.event("rules: none")
	}
	if n := len(f.Snapshots); n > 0 {
		last := f.Snapshots[n-1]
		if f.Snapshots[0].Time.After(last.Time) {
			last = f.Snapshots[0]
		}
		w.out.event(fmt.Sprintf("%d snapshots stored; the latest, %s: %s", n, last.ID, last.Headline))
	}
	// Start the signal values from the history, so that slow signals
	// show their last value at once.
	for _, s := range f.Timeline {
		w.remember(&s)
	}
}

func (w *watcher) remember(s *diag.Sample) {
	for _, sig := range diag.Signals() {
		if v, ok := s.Get(sig); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			w.latest[sig] = v
		}
	}
}

// sampleLine is one sample, e.g.
//
//	04:37:41  mutex_wait 9.53 s/s  lock_waiters 12  sched p99 1.2ms  goroutines 92 (75 waiting)  futex 0  [rule ...: breached]
func (w *watcher) sampleLine(f *httpdiag.Message) string {
	w.remember(f.Sample)
	val := func(s diag.Signal, format func(float64) string) string {
		v, ok := w.latest[s]
		if !ok {
			return "-"
		}
		return format(v)
	}
	count := func(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', -1, 64) }
	var b strings.Builder
	b.WriteString(f.Sample.Time.Local().Format("15:04:05"))
	fmt.Fprintf(&b, "  mutex_wait %s", val(diag.MutexWait, func(v float64) string { return fmt.Sprintf("%.2f s/s", v) }))
	fmt.Fprintf(&b, "  lock_waiters %s", val(diag.LockWaiters, count))
	fmt.Fprintf(&b, "  sched p99 %s", val(diag.SchedLatencyP99, fmtSeconds))
	fmt.Fprintf(&b, "  goroutines %s (%s waiting)", val(diag.Goroutines, count), val(diag.GoroutinesWaiting, count))
	if _, ok := w.latest[diag.FutexWaiters]; ok {
		fmt.Fprintf(&b, "  futex %s", val(diag.FutexWaiters, count))
	}
	if f.Dropped > 0 {
		fmt.Fprintf(&b, "  dropped %d", f.Dropped)
	}
	for _, r := range w.ruleOrder {
		if st := w.rules[r]; st == "breached" {
			fmt.Fprintf(&b, "  [rule %s: %s]", clip(r, 25), st)
		}
	}
	return b.String()
}

// event prints a breach, recovery or snapshot on its own line(s).
func (w *watcher) event(f *httpdiag.Message) {
	at := f.Time.Local().Format("15:04:05")
	line := func(tag, s string) string { return fmt.Sprintf("%s  %-10s %s", at, tag, s) }
	indent := strings.Repeat(" ", len(at)+2+11)
	var lines []string
	switch f.Type {
	case "breach":
		if b := f.Breach; b != nil {
			if _, ok := w.rules[b.Rule]; !ok {
				w.ruleOrder = append(w.ruleOrder, b.Rule)
			}
			w.rules[b.Rule] = "breached"
			s := fmt.Sprintf("%s: %s = %s > %s", b.Rule, b.Signal, fmtSignal(b.Signal, b.Value), fmtSignal(b.Signal, b.Threshold))
			if b.Baseline != 0 {
				s += fmt.Sprintf(" (baseline %s)", fmtSignal(b.Signal, b.Baseline))
			}
			if b.Snapshot {
				s += "; a snapshot follows"
			}
			lines = append(lines, line("BREACH", s))
		}
	case "recovered":
		if b := f.Breach; b != nil {
			if _, ok := w.rules[b.Rule]; ok {
				w.rules[b.Rule] = "ok"
			}
			s := b.Rule + ": cleared"
			if b.Peak != 0 {
				s += ", peak " + fmtSignal(b.Signal, b.Peak)
			}
			if b.Duration > 0 {
				s += ", breached for " + fmtSeconds(b.Duration.Seconds())
			}
			lines = append(lines, line("RECOVERED", s))
		}
	case "snapshot":
		if s := f.Snapshot; s != nil {
			head := s.ID + " (" + string(s.Trigger.Kind)
			if s.Trigger.Breach != nil {
				head += " " + s.Trigger.Breach.Rule
			}
			head += fmt.Sprintf(", took %v)", s.Took)
			if s.Partial {
				head += ", analysis partial"
			}
			lines = append(lines, line("SNAPSHOT", head))
			if s.Headline != "" {
				lines = append(lines, indent+s.Headline)
			}
			lines = append(lines,
				indent+"report: "+w.link(s.Report),
				indent+"bundle: "+w.link(s.Zip))
		}
	case "snapshot_skipped", "snapshot_failed":
		tag := "SKIPPED"
		what := "snapshot skipped"
		if f.Type == "snapshot_failed" {
			tag, what = "FAILED", "snapshot failed"
		}
		if f.Breach != nil {
			what += " for " + f.Breach.Rule
		}
		if f.Reason != "" {
			what += ": " + f.Reason
		}
		lines = append(lines, line(tag, what))
	case "named_locks":
		// The named locks' state, about once a second: the status line
		// and the breaches say what matters of it.
	case "lock_order_inversion":
		if inv := f.Inversion; inv != nil {
			lines = append(lines, line("INVERSION", fmt.Sprintf("potential deadlock: %q then %q by goroutine %d, %q then %q by goroutine %d",
				inv.A, inv.B, inv.GoroutineAB, inv.B, inv.A, inv.GoroutineBA)))
		}
	default:
		// A frame type this version does not know.
		lines = append(lines, line(strings.ToUpper(f.Type), ""))
	}
	for _, l := range lines {
		w.out.event(l)
	}
}

// link turns a path the server sent (/debug/locks/...) into a URL, keeping
// any path prefix the service is served under.
func (w *watcher) link(p string) string {
	u := *w.r.base
	u.Path = strings.TrimSuffix(u.Path, httpdiag.Prefix)
	path, query, _ := strings.Cut(p, "?")
	u.Path += path
	u.RawQuery = query
	u.User = nil
	return u.String()
}

// fmtSignal formats a value of the named signal in its unit.
func fmtSignal(name string, v float64) string {
	if s, ok := diag.ParseSignal(name); ok && s.Unit() == "s" {
		return fmtSeconds(v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// fmtSeconds formats seconds as a duration with about three significant
// digits: 1.23ms, 524µs, 2.5s.
func fmtSeconds(v float64) string {
	d := time.Duration(v * float64(time.Second))
	var r time.Duration
	switch {
	case d >= 100*time.Second:
		r = time.Second
	case d >= 10*time.Second:
		r = 100 * time.Millisecond
	case d >= time.Second:
		r = 10 * time.Millisecond
	case d >= 100*time.Millisecond:
		r = time.Millisecond
	case d >= 10*time.Millisecond:
		r = 100 * time.Microsecond
	case d >= time.Millisecond:
		r = 10 * time.Microsecond
	case d >= 100*time.Microsecond:
		r = time.Microsecond
	default:
		r = 100 * time.Nanosecond
	}
	return d.Round(r).String()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// statusPrinter writes sample lines and event lines. On a terminal the
// sample line is redrawn in place ("\r", clear to the end of the line) and
// events are printed above it; otherwise every line is a plain line.
type statusPrinter struct {
	w, errw  io.Writer
	terminal bool
	columns  int    // the terminal's width; 0: ask it
	last     string // the status line on screen, on a terminal
}

const clearLine = "\r\x1b[K"

func (p *statusPrinter) status(s string) {
	if !p.terminal {
		fmt.Fprintln(p.w, s)
		return
	}
	cols := p.columns
	if cols <= 0 {
		cols = terminalWidth()
	}
	if w := cols - 1; len([]rune(s)) > w {
		// Narrow terminal: single spaces, then cut.
		s = clip(strings.ReplaceAll(s, "  ", " "), w)
	}
	p.last = s
	fmt.Fprint(p.w, clearLine+s)
}

func (p *statusPrinter) event(s string) {
	if !p.terminal {
		fmt.Fprintln(p.w, s)
		return
	}
	fmt.Fprint(p.w, clearLine+s+"\n")
	if p.last != "" {
		fmt.Fprint(p.w, p.last)
	}
}

// note writes a message about the connection to stderr, clearing the
// status line first when both go to a terminal.
func (p *statusPrinter) note(s string) {
	p.clearStatus()
	fmt.Fprintln(p.errw, s)
	if p.terminal && p.last != "" {
		fmt.Fprint(p.w, p.last)
	}
}

func (p *statusPrinter) clearStatus() {
	if p.terminal && p.last != "" {
		fmt.Fprint(p.w, clearLine)
	}
}

// finish ends the status line so that the shell prompt starts on a fresh
// line.
func (p *statusPrinter) finish() {
	if p.terminal && p.last != "" {
		fmt.Fprint(p.w, "\n")
		p.last = ""
	}
}

// terminalWidth is the width of the terminal on stdout, from the system
// where it can be asked, else $COLUMNS, else 80.
func terminalWidth() int {
	if n := ttyWidth(os.Stdout); n > 0 {
		return n
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 20 {
		return n
	}
	return 80
}
