package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
)

const urlHelp = `
URL is where the service serves /debug/locks: host:port (http is assumed),
http://host:port, or a full http(s)://host:port/debug/locks URL.
The token is sent as "Authorization: Bearer TOKEN"; it may also come from the
LOCKDIAG_TOKEN environment variable or a token parameter in URL.`

// Timeouts of the remote commands.
const (
	dialTimeout  = 10 * time.Second
	queryTimeout = time.Minute      // list, report
	fetchTimeout = 10 * time.Minute // a bundle download
	takeTimeout  = 2 * time.Minute  // a snapshot, plus its wall-clock profile
)

// remote is a service serving /debug/locks.
type remote struct {
	base   *url.URL // the /debug/locks URL, no query
	token  string
	client *http.Client
}

// parseServiceURL normalizes what the user typed into the /debug/locks URL
// of the service, and returns a token found in its query, if any.
func parseServiceURL(raw string) (*url.URL, string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, "", errors.New("empty URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, "", fmt.Errorf("bad URL %q: %v", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, "", fmt.Errorf("bad URL %q: the scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, "", fmt.Errorf("bad URL %q: no host", raw)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, "", fmt.Errorf("bad URL %q: bad port %q", raw, p)
		}
	}
	token := u.Query().Get("token")
	p := u.Path
	if i := strings.Index(p, httpdiag.Prefix); i >= 0 {
		p = p[:i+len(httpdiag.Prefix)]
	} else {
		p = strings.TrimSuffix(p, "/") + httpdiag.Prefix
	}
	return &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: p}, token, nil
}

// newRemote builds the client for the URL argument. The token comes from
// the flag, else the URL, else LOCKDIAG_TOKEN.
func (c *cli) newRemote(rawURL, flagToken string) (*remote, error) {
	base, urlToken, err := parseServiceURL(rawURL)
	if err != nil {
		return nil, err
	}
	token := flagToken
	if token == "" {
		token = urlToken
	}
	if token == "" && c.getenv != nil {
		token = strings.TrimSpace(c.getenv("LOCKDIAG_TOKEN"))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	return &remote{base: base, token: token, client: &http.Client{Transport: tr}}, nil
}

func (r *remote) close() { r.client.CloseIdleConnections() }

// url returns the URL of a path under /debug/locks.
func (r *remote) url(sub string, q url.Values) *url.URL {
	u := *r.base
	u.Path += sub
	u.RawQuery = q.Encode()
	return &u
}

// httpError is a non-2xx answer, with the server's text.
type httpError struct {
	method, url string
	status      int
	statusText  string
	msg         string
	hint        string
}

func (e *httpError) Error() string {
	s := fmt.Sprintf("%s %s: %s", e.method, e.url, e.statusText)
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

// do sends a request and returns the response if its status is 2xx. Any
// other answer becomes an *httpError carrying the server's error text.
func (r *remote) do(ctx context.Context, method, sub string, q url.Values) (*http.Response, error) {
	u := r.url(sub, q)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	req.Header.Set("User-Agent", "lockdiag-cli")
	shown := u.Redacted()
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%s %s: no answer in time: %v", method, shown, err)
		}
		return nil, fmt.Errorf("%s %s: %v", method, shown, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &httpError{method: method, url: shown, status: resp.StatusCode, statusText: resp.Status, msg: serverMessage(body)}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && r.token == "":
		e.hint = "give -token or set LOCKDIAG_TOKEN"
	case resp.StatusCode == http.StatusUnauthorized:
		e.hint = "the token was refused"
	case resp.StatusCode == http.StatusNotFound && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"):
		e.hint = "is lockdiag served at " + r.base.Redacted() + "?"
	}
	return nil, e
}

// serverMessage makes an error body fit on a line: lockdiag's handlers
// answer "lockdiag: reason\n"; other servers may send anything.
func serverMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	s = strings.TrimPrefix(s, "lockdiag: ")
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:299]) + "…"
	}
	return s
}

// getJSON GETs sub with format=json and decodes the answer into v.
func (r *remote) getJSON(ctx context.Context, sub string, v any) error {
	resp, err := r.do(ctx, http.MethodGet, sub, url.Values{"format": {"json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: the answer is not what lockdiag sends: %v", r.url(sub, nil).Redacted(), err)
	}
	return nil
}

// checkID accepts a snapshot id or "latest".
func checkID(id string) error {
	if id == "latest" || diag.ValidID(id) {
		return nil
	}
	return fmt.Errorf("%q is not a snapshot id (like 20261122-043741-859) or latest", id)
}

func (c *cli) snapshots(ctx context.Context, args []string) int {
	fs := newFlagSet("snapshots", "[-token T] [-json] URL", "Snapshots lists the snapshots a service has stored, newest first.\n"+urlHelp)
	token := fs.String("token", "", "bearer `TOKEN` (default $LOCKDIAG_TOKEN)")
	asJSON := fs.Bool("json", false, "print the list as JSON")
	pos, code, ok := c.parse(fs, args, 1, "URL")
	if !ok {
		return code
	}
	r, err := c.newRemote(pos[0], *token)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var list []diag.SnapshotInfo
	if err := r.getJSON(ctx, "/snapshots", &list); err != nil {
		return c.fail("snapshots", err)
	}
	if *asJSON {
		data, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return c.fail("snapshots", err)
		}
		fmt.Fprintf(c.stdout, "%s\n", data)
		return exitOK
	}
	if len(list) == 0 {
		fmt.Fprintf(c.stdout, "no snapshots yet; take one with: lockdiag take %s\n", pos[0])
		return exitOK
	}
	for _, s := range list {
		partial := ""
		if s.Partial {
			partial = " (partial)"
		}
		fmt.Fprintf(c.stdout, "%s  %-6s %9s  %s%s\n", s.ID, s.Trigger.Kind, fmtBytes(s.Bytes), s.Headline, partial)
	}
	return exitOK
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// snapshotArgs parses "URL [ID|latest]" and connects to URL. When ok is
// false, code is the exit status (the error has been printed).
func (c *cli) snapshotArgs(fs *flagSet, args []string, token *string) (r *remote, id string, code int, ok bool) {
	pos, code, ok := c.parse(fs, args, 1, "URL", "ID")
	if !ok {
		return nil, "", code, false
	}
	id = "latest"
	if len(pos) > 1 {
		id = pos[1]
	}
	if err := checkID(id); err != nil {
		return nil, "", c.usageError(fs, "%v", err), false
	}
	r, err := c.newRemote(pos[0], *token) // read after parse: the flag may follow the arguments
	if err != nil {
		return nil, "", c.usageError(fs, "%v", err), false
	}
	return r, id, 0, true
}

func (c *cli) snapshot(ctx context.Context, args []string) int {
	fs := newFlagSet("snapshot", "[-token T] [-json] URL [ID|latest]", "Snapshot prints the report of a stored snapshot (the latest by default).\n"+urlHelp)
	token := fs.String("token", "", "bearer `TOKEN` (default $LOCKDIAG_TOKEN)")
	asJSON := fs.Bool("json", false, "print the report as JSON (report.json)")
	r, id, code, ok := c.snapshotArgs(fs, args, token)
	if !ok {
		return code
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	format := "text"
	if *asJSON {
		format = "json"
	}
	resp, err := r.do(ctx, http.MethodGet, "/snapshots/"+id, url.Values{"format": {format}})
	if err != nil {
		return c.fail("snapshot", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(c.stdout, resp.Body); err != nil {
		return c.fail("snapshot", fmt.Errorf("reading the report: %v", err))
	}
	return exitOK
}

func (c *cli) fetch(ctx context.Context, args []string) int {
	fs := newFlagSet("fetch", "[-token T] [-o FILE] URL [ID|latest]",
		"Fetch downloads a snapshot's bundle (the latest by default) as a zip file\nthat \"lockdiag analyze\", go tool trace and go tool pprof can read.\n"+urlHelp)
	token := fs.String("token", "", "bearer `TOKEN` (default $LOCKDIAG_TOKEN)")
	out := fs.String("o", "", "write to `FILE`, - for standard output (default lockdiag-ID.zip)")
	r, id, code, ok := c.snapshotArgs(fs, args, token)
	if !ok {
		return code
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	resp, err := r.do(ctx, http.MethodGet, "/snapshots/"+id+".zip", nil)
	if err != nil {
		return c.fail("fetch", err)
	}
	defer resp.Body.Close()

	if *out == "-" {
		if _, err := io.Copy(c.stdout, resp.Body); err != nil {
			return c.fail("fetch", fmt.Errorf("downloading: %v", err))
		}
		return exitOK
	}
	name := *out
	if name == "" {
		name = bundleFileName(resp.Header.Get("Content-Disposition"), id)
	}
	n, err := writeFileAtomic(name, resp.Body)
	if err != nil {
		return c.fail("fetch", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s (%s)\nanalyze it with: lockdiag analyze %s\n", name, fmtBytes(n), name)
	return exitOK
}

// bundleFileName takes the file name the server suggests when it is the
// expected lockdiag-ID.zip (it names the id that "latest" stood for), else
// builds it from id.
func bundleFileName(disposition, id string) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		fn := params["filename"]
		if base, ok := strings.CutPrefix(fn, "lockdiag-"); ok {
			if sid, ok := strings.CutSuffix(base, ".zip"); ok && diag.ValidID(sid) {
				return fn
			}
		}
	}
	return "lockdiag-" + id + ".zip"
}

// writeFileAtomic writes r to name through a temporary file in the same
// directory, so that an interrupted download leaves no partial file.
func writeFileAtomic(name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return 0, err
	}
	// CreateTemp makes the file 0600; a downloaded bundle is as readable
	// as any file the user writes (0644 less the umask's bits).
	if err := f.Chmod(0o644 &^ umask()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return n, fmt.Errorf("downloading: %v", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return n, err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return n, err
	}
	return n, nil
}

func (c *cli) take(ctx context.Context, args []string) int {
	fs := newFlagSet("take", "[-token T] [-wall D] URL", "Take asks the service for a snapshot now and prints its id and headline.\n"+urlHelp)
	token := fs.String("token", "", "bearer `TOKEN` (default $LOCKDIAG_TOKEN)")
	wall := fs.Duration("wall", 0, "add a wall-clock profile over this long after the snapshot (at most 30s)")
	pos, code, ok := c.parse(fs, args, 1, "URL")
	if !ok {
		return code
	}
	if *wall < 0 {
		return c.usageError(fs, "-wall cannot be negative")
	}
	r, err := c.newRemote(pos[0], *token)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}
	defer r.close()
	ctx, cancel := context.WithTimeout(ctx, takeTimeout+*wall)
	defer cancel()
	q := url.Values{"format": {"json"}}
	if *wall > 0 {
		q.Set("wall", wall.String())
	}
	resp, err := r.do(ctx, http.MethodPost, "/snapshots", q)
	if err != nil {
		return c.fail("take", err)
	}
	defer resp.Body.Close()
	var info diag.SnapshotInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return c.fail("take", fmt.Errorf("POST %s: the answer is not what lockdiag sends: %v", r.url("/snapshots", nil).Redacted(), err))
	}
	partial := ""
	if info.Partial {
		partial = ", analysis partial"
	}
	fmt.Fprintf(c.stdout, "snapshot %s (took %v%s)\n%s\n\nreport: lockdiag snapshot %s %s\nbundle: lockdiag fetch %s %s\n",
		info.ID, info.Took, partial, info.Headline, pos[0], info.ID, pos[0], info.ID)
	return exitOK
}
