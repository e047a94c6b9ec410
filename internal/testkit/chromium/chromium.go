// Package chromium drives a headless Chromium over the DevTools protocol,
// for the live page's browser test: launch it on loopback, attach to its
// page, call protocol methods, collect the page's exceptions and console
// errors, and shut it down with everything it started.
//
// It is a small client of its own over gorilla/websocket rather than a
// dependency: the test needs a handful of methods (Page.navigate,
// Runtime.evaluate, Emulation.setDeviceMetricsOverride,
// Page.captureScreenshot).
package chromium

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Find returns the path of a Chromium or Chrome binary, or "" if there is
// none: /usr/bin/chromium (Debian's package chromium), else chromium,
// chromium-browser, google-chrome or google-chrome-stable on PATH.
func Find() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// A Browser is a running headless Chromium with one page attached. Its
// methods are safe for concurrent use.
type Browser struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed when the process has exited
	conn   *websocket.Conn
	done   chan struct{} // closed when the reader has exited

	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan reply
	logs    []string
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

// Launch starts bin headless with a fresh profile under dir (which must
// exist and outlive the browser), listening for the DevTools protocol on
// a loopback port of its choosing, and attaches to its page. The browser
// is told not to reach the network on its own. Close it when done.
func Launch(ctx context.Context, bin, dir string) (*Browser, error) {
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--headless",
		"--no-sandbox", // tests may run as root, where the sandbox refuses to start
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--disable-default-apps",
		"--hide-scrollbars",
		"--mute-audio",
		"--user-data-dir="+profile,
		"--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0",
		"about:blank",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("chromium: starting %s: %w", bin, err)
	}
	b := &Browser{cmd: cmd, log: logf, exited: make(chan struct{}), done: make(chan struct{}), pending: make(map[int64]chan reply)}
	go func() {
		cmd.Wait()
		close(b.exited)
	}()
	if err := b.attach(ctx, profile); err != nil {
		b.Close()
		return nil, fmt.Errorf("%w\n%s", err, b.logTail())
	}
	return b, nil
}

// attach waits for the DevToolsActivePort file, finds the page target and
// connects to it.
func (b *Browser) attach(ctx context.Context, profile string) error {
	var port int
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for port == 0 {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err == nil {
			line, _, _ := strings.Cut(string(data), "\n")
			if p, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && p > 0 {
				port = p
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chromium: no DevToolsActivePort: %w", ctx.Err())
		case <-b.exited:
			return errors.New("chromium: the browser exited before it listened")
		case <-tick.C:
		}
	}
	wsURL, err := pageTarget(ctx, port)
	if err != nil {
		return err
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		return fmt.Errorf("chromium: connecting to the page: %w", err)
	}
	conn.SetReadLimit(256 << 20) // screenshots arrive as base64 in one message
	b.conn = conn
	go b.read()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := b.Call(ctx, m, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// pageTarget returns the websocket URL of the browser's page.
func pageTarget(ctx context.Context, port int) (string, error) {
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// A transport of its own, closed at the end, so that no keep-alive
	// goroutine outlives the test.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var lastErr error
	for range 50 {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/json/list", nil)
		resp, err := client.Do(req)
		if err == nil {
			var targets []struct {
				Type string `json:"type"`
				URL  string `json:"webSocketDebuggerUrl"`
			}
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
			for _, t := range targets {
				if t.Type == "page" && t.URL != "" {
					return t.URL, nil
				}
			}
			if err == nil {
				err = errors.New("no page target yet")
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("chromium: finding the page target: %w", lastErr)
}

// read dispatches replies to their callers and records the page's
// exceptions and console messages.
func (b *Browser) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.ReadMessage()
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var msg struct {
			ID     int64           `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			reply
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID != 0 {
			b.mu.Lock()
			ch := b.pending[msg.ID]
			delete(b.pending, msg.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- msg.reply
			}
			continue
		}
		if line := describeEvent(msg.Method, msg.Params); line != "" {
			b.mu.Lock()
			if len(b.logs) < 1000 {
				b.logs = append(b.logs, line)
			}
			b.mu.Unlock()
		}
	}
}

// describeEvent turns the events a test cares about into a line.
func describeEvent(method string, params json.RawMessage) string {
	switch method {
	case "Runtime.exceptionThrown":
		var p struct {
			Details struct {
				Text      string `json:"text"`
				URL       string `json:"url"`
				Line      int    `json:"lineNumber"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(params, &p)
		d := p.Details
		return fmt.Sprintf("exception: %s %s (%s:%d)", d.Text, d.Exception.Description, d.URL, d.Line+1)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		json.Unmarshal(params, &p)
		var parts []string
		for _, a := range p.Args {
			if a.Value != nil {
				parts = append(parts, fmt.Sprint(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		return fmt.Sprintf("console.%s: %s", p.Type, strings.Join(parts, " "))
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		json.Unmarshal(params, &p)
		e := p.Entry
		return fmt.Sprintf("log %s (%s): %s %s", e.Level, e.Source, e.Text, e.URL)
	}
	return ""
}

// Logs returns what the page reported so far: exceptions ("exception:
// ..."), console calls ("console.error: ...") and browser log entries
// ("log error (security): ..." for a Content-Security-Policy violation).
func (b *Browser) Logs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logs...)
}

// Call sends a protocol method and decodes its result into result (if not
// nil).
func (b *Browser) Call(ctx context.Context, method string, params, result any) error {
	if b.conn == nil {
		return errors.New("chromium: not attached")
	}
	ch := make(chan reply, 1)
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	b.writeMu.Lock()
	b.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := b.conn.WriteJSON(msg)
	b.writeMu.Unlock()
	if err != nil {
		b.forget(id)
		return fmt.Errorf("chromium: %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("chromium: %s: the connection closed", method)
		}
		if r.Error != nil {
			return fmt.Errorf("chromium: %s: %s %s", method, r.Error.Message, r.Error.Data)
		}
		if result != nil {
			return json.Unmarshal(r.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.forget(id)
		return fmt.Errorf("chromium: %s: %w", method, ctx.Err())
	}
}

func (b *Browser) forget(id int64) {
	b.mu.Lock()
	delete(b.pending, id)
	b.mu.Unlock()
}

// Navigate loads url in the page. It returns once the navigation is
// committed, not when the page has finished loading.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.Call(ctx, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("chromium: navigating to %s: %s", url, r.ErrorText)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page (awaiting it if it
// is a promise) and decodes its value into result (if not nil).
func (b *Browser) Eval(ctx context.Context, expr string, result any) error {
	var r struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := b.Call(ctx, "Runtime.evaluate", map[string]any{
		"expression":    expr,
		"returnByValue": true,
		"awaitPromise":  true,
	}, &r)
	if err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("chromium: evaluating %q: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if result == nil {
		return nil
	}
	if len(r.Result.Value) == 0 {
		return fmt.Errorf("chromium: evaluating %q gave %s, not a value", expr, r.Result.Type)
	}
	return json.Unmarshal(r.Result.Value, result)
}

// SetViewport sets the page's size in CSS pixels, at one device pixel
// per CSS pixel.
func (b *Browser) SetViewport(ctx context.Context, width, height int) error {
	return b.Call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
	}, nil)
}

// Screenshot returns the viewport as PNG.
func (b *Browser) Screenshot(ctx context.Context) ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := b.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}

// Close shuts the browser down (asking it first, then killing its process
// group) and waits until it and its reader have exited. It may be called
// more than once.
func (b *Browser) Close() {
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		b.Call(ctx, "Browser.close", nil, nil)
		cancel()
		b.conn.Close()
		<-b.done
	}
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
	}
	// Helpers (renderer, GPU, zygote) exit with the browser; make sure.
	killGroup(b.cmd)
	b.log.Close()
}

// logTail returns the end of the browser's output, for error messages.
func (b *Browser) logTail() string {
	data, err := os.ReadFile(b.log.Name())
	if err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "chromium output:\n" + strings.Join(lines, "\n")
}
