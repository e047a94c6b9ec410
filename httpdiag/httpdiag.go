// Package httpdiag serves a [diag.Monitor] over HTTP under /debug/locks.
//
// # Paths
//
//	GET  /debug/locks                        status: signals, rules, where goroutines wait now, snapshots
//	GET  /debug/locks/snapshots              the stored snapshots
//	POST /debug/locks/snapshots              take a snapshot now; answers 201 with its id and Location
//	GET  /debug/locks/snapshots/{id}         a snapshot's report; id may be "latest"
//	GET  /debug/locks/snapshots/{id}.zip     the whole bundle
//	GET  /debug/locks/snapshots/{id}/{file}  one file of the bundle (trace.out, mutex.pb.gz, ...)
//	GET  /debug/locks/metrics                Prometheus metrics, when [Options.Metrics] is set
//	GET  /debug/locks/stream                 websocket: live samples, breaches and snapshots (see [Message])
//	GET  /debug/locks/ui                     live page: plots, breaches, snapshots and reports
//	GET  /debug/locks/pprof/                 pprof-compatible profiles: mutex, block, goroutine,
//	                                         goroutineleak (Go >= 1.27) and trace (the flight recorder's window)
//
// # Query parameters
//
//	format=text|json   status, snapshot list, report and POST answer (default text,
//	                   or json when the Accept header asks for application/json)
//	wall=DURATION      POST only: add a wall-clock profile over this long (0 to 30s)
//	every=N            stream only: send every Nth sample (1 to 600, default 1)
//	seconds=N          pprof/mutex, block, goroutine: the change over the next N seconds (1 to 300),
//	                   as net/http/pprof computes it; pprof/trace: wait N seconds (0 to the
//	                   trace window, default 1), then write the flight recorder's window
//	debug=N            pprof/ profiles: 1 (or 2 for goroutine) for text, as net/http/pprof
//	token=TOKEN        the bearer token, for clients that cannot set a header
//
// Any other parameter, or a malformed value, is answered with 400 and the
// rule that was broken.
//
// # Access
//
// Without a token, only loopback clients are answered (403 otherwise).
// With [Options.Token] set, every request must carry it as
// "Authorization: Bearer TOKEN" (401 otherwise), from any address. A POST
// that carries an Origin header must come from the same origin or one in
// [Options.AllowOrigins], so that a web page cannot trigger snapshots.
package httpdiag

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/diag"
)

// Prefix is the path every handler is served under.
const Prefix = "/debug/locks"

// Options configures the handlers. The zero value serves loopback clients
// only.
type Options struct {
	// Token, if not empty, is required on every request as
	// "Authorization: Bearer TOKEN" (or a token query parameter), and
	// lets clients from any address in. Compared in constant time.
	Token string

	// AllowOrigins lists extra origins ("https://ops.example.com") whose
	// pages may POST and open the stream. The page's own origin is always
	// allowed.
	AllowOrigins []string

	// MaxStreamClients bounds the stream's concurrent clients; more are
	// answered 503. If zero, 16.
	MaxStreamClients int

	// Metrics, if not nil, serves GET /debug/locks/metrics (behind the
	// same access rules as every path here): promdiag.Handler(m), which
	// diag/auto passes. If nil, that path answers 404 and says how to set
	// it. httpdiag itself does not link a metrics library.
	Metrics http.Handler
}

type handler struct {
	m       *diag.Monitor
	opts    Options
	mux     *http.ServeMux
	clients streamClients
	pulls   chan struct{} // slots of the pprof pulls that wait
	// tokenSum is the SHA-256 of the token, so that comparison time does
	// not depend on the token's length.
	tokenSum [32]byte
}

// Handler returns a handler serving m under [Prefix]. Mount it at Prefix
// and Prefix+"/" (as [Register] does); requests for other paths get 404.
func Handler(m *diag.Monitor, opts Options) http.Handler {
	h := &handler{m: m, opts: opts, mux: http.NewServeMux(), pulls: make(chan struct{}, maxPulls)}
	if opts.Token != "" {
		h.tokenSum = sha256.Sum256([]byte(opts.Token))
	}
	h.mux.HandleFunc("GET "+Prefix, h.status)
	h.mux.HandleFunc("GET "+Prefix+"/{$}", h.status)
	h.mux.HandleFunc("GET "+Prefix+"/snapshots", h.listSnapshots)
	h.mux.HandleFunc("POST "+Prefix+"/snapshots", h.takeSnapshot)
	h.mux.HandleFunc("GET "+Prefix+"/snapshots/{id}", h.snapshot)
	h.mux.HandleFunc("GET "+Prefix+"/snapshots/{id}/{file}", h.snapshotFile)
	h.mux.HandleFunc("GET "+Prefix+"/metrics", h.metrics)
	h.mux.HandleFunc("GET "+Prefix+"/stream", h.stream)
	h.mux.HandleFunc("GET "+Prefix+"/pprof/{$}", h.pprofIndex)
	h.mux.HandleFunc("GET "+Prefix+"/pprof/{name}", h.pprofProfile)
	h.mux.HandleFunc("GET "+Prefix+"/ui", h.ui)
	h.mux.HandleFunc("GET "+Prefix+"/ui/{file}", h.uiFile)
	h.mux.HandleFunc("GET "+Prefix+"/ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		u := *r.URL
		u.Path = Prefix + "/ui"
		http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
	})
	h.mux.HandleFunc(Prefix, h.fallback)
	h.mux.HandleFunc(Prefix+"/", h.fallback)
	return h
}

// fallback answers what no route took: 405 with Allow when the path
// exists for other methods, else 404.
func (h *handler) fallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		probe := &http.Request{Method: method, URL: r.URL, Host: r.Host}
		if _, pattern := h.mux.Handler(probe); strings.HasPrefix(pattern, method+" ") {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		serveError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	serveError(w, http.StatusNotFound, fmt.Sprintf("no such path %s; see GET %s", r.URL.Path, Prefix))
}

// Register mounts [Handler] on mux at [Prefix]. It returns an error, and
// registers nothing, if mux already has a handler there.
func Register(mux *http.ServeMux, m *diag.Monitor, opts Options) (err error) {
	if mux == nil || m == nil {
		return errors.New("httpdiag: Register needs a mux and a monitor")
	}
	if _, pattern := mux.Handler(&http.Request{Method: "GET", URL: &url.URL{Path: Prefix + "/"}}); pattern != "" {
		return fmt.Errorf("httpdiag: %s is already registered on this mux (pattern %q)", Prefix, pattern)
	}
	defer func() {
		// ServeMux panics on conflicting patterns; that is a caller's
		// mistake, not a reason to crash the program.
		if r := recover(); r != nil {
			err = fmt.Errorf("httpdiag: registering %s: %v", Prefix, r)
		}
	}()
	h := Handler(m, opts)
	mux.Handle(Prefix, h)
	mux.Handle(Prefix+"/", h)
	return nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status, msg := h.authorize(r); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lockdiag"`)
		}
		serveError(w, status, msg)
		return
	}
	// No handler reads a body; refuse large ones without reading them.
	if r.ContentLength > 1<<10 {
		serveError(w, http.StatusRequestEntityTooLarge, "request body must be empty")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10)
	if len(r.URL.RawQuery) > 1<<10 {
		serveError(w, http.StatusBadRequest, "query string longer than 1024 bytes")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorize returns 0 when r may proceed, else the status and the reason.
func (h *handler) authorize(r *http.Request) (int, string) {
	if h.opts.Token != "" {
		got := ""
		if a := r.Header.Get("Authorization"); a != "" {
			scheme, tok, ok := strings.Cut(a, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return http.StatusUnauthorized, "Authorization must be \"Bearer TOKEN\""
			}
			got = strings.TrimSpace(tok)
		} else {
			got = r.URL.Query().Get("token")
		}
		sum := sha256.Sum256([]byte(got))
		if got == "" || subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
			return http.StatusUnauthorized, "missing or wrong token (send Authorization: Bearer TOKEN)"
		}
	} else if !isLoopback(r.RemoteAddr) {
		return http.StatusForbidden, "lockdiag answers loopback clients only; set a token (LOCKDIAG_TOKEN) to allow others"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && !h.originAllowed(o, r.Host) {
			return http.StatusForbidden, fmt.Sprintf("origin %q may not change state here", o)
		}
	}
	return 0, ""
}

// originAllowed reports whether a page from origin may act on this
// server: its own origin, or one in AllowOrigins.
func (h *handler) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err == nil && strings.EqualFold(u.Host, host) {
		return true
	}
	return slices.ContainsFunc(h.opts.AllowOrigins, func(a string) bool { return strings.EqualFold(a, origin) })
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveError answers with a plain-text error. Nothing may have been
// written before it.
func serveError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("Content-Disposition")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "lockdiag: %s\n", trimPackage(msg))
}

// trimPackage drops the package prefix of an error from lockdiag's own
// packages ("diag: not found: ..."): the answer already starts with
// "lockdiag: ".
func trimPackage(msg string) string {
	for _, p := range []string{"diag: ", "bundle: ", "flightrec: ", "lockreport: ", "httpdiag: "} {
		if m, ok := strings.CutPrefix(msg, p); ok {
			return m
		}
	}
	return msg
}

// params checks r's query: only the named parameters (and token) may
// appear, each once.
func params(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %v", err)
	}
	for k, v := range q {
		if k != "token" && !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, fmt.Errorf("unknown parameter %q: this path takes none", k)
			}
			return nil, fmt.Errorf("unknown parameter %q: this path takes %s", k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	return q, nil
}

// wantJSON reads the format parameter: text or json, defaulting to json
// when the client accepts application/json and not text/plain.
func wantJSON(r *http.Request, q url.Values) (bool, error) {
	switch f := q.Get("format"); f {
	case "json":
		return true, nil
	case "text":
		return false, nil
	case "":
		acc := r.Header.Get("Accept")
		return strings.Contains(acc, "application/json") && !strings.Contains(acc, "text/plain"), nil
	default:
		return false, fmt.Errorf("format must be text or json, not %q", f)
	}
}

// formatParams checks r's query for format and the extra parameters, and
// answers 400 when it breaks a rule (ok is then false).
func formatParams(w http.ResponseWriter, r *http.Request, extra ...string) (q url.Values, asJSON, ok bool) {
	q, err := params(r, append([]string{"format"}, extra...)...)
	if err == nil {
		asJSON, err = wantJSON(r, q)
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return nil, false, false
	}
	return q, asJSON, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		serveError(w, http.StatusInternalServerError, "encoding JSON: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// writeText renders into a buffer first, so that an error can still be
// answered as one.
func writeText(w http.ResponseWriter, status int, render func(io.Writer) error) {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	_, asJSON, ok := formatParams(w, r)
	if !ok {
		return
	}
	st := h.m.Status()
	if asJSON {
		writeJSON(w, http.StatusOK, st)
		return
	}
	writeText(w, http.StatusOK, st.WriteText)
}

func (h *handler) listSnapshots(w http.ResponseWriter, r *http.Request) {
	_, asJSON, ok := formatParams(w, r)
	if !ok {
		return
	}
	list := h.m.Snapshots()
	if asJSON {
		writeJSON(w, http.StatusOK, list)
		return
	}
	writeText(w, http.StatusOK, func(w io.Writer) error {
		if len(list) == 0 {
			_, err := fmt.Fprintf(w, "no snapshots yet; take one with: curl -X POST http://%s%s/snapshots\n", r.Host, Prefix)
			return err
		}
		for _, s := range list {
			where := "memory"
			switch {
			case s.OnDisk && s.InMemory:
				where = "memory+disk"
			case s.OnDisk:
				where = "disk"
			}
			fmt.Fprintf(w, "%s  %-6s %-11s %7.1f KiB  %s\n", s.ID, s.Trigger.Kind, where, float64(s.Bytes)/1024, s.Headline)
		}
		return nil
	})
}

// maxWall bounds the wall-clock profile a client may ask for.
const maxWall = 30 * time.Second

func (h *handler) takeSnapshot(w http.ResponseWriter, r *http.Request) {
	q, asJSON, ok := formatParams(w, r, "wall")
	if !ok {
		return
	}
	var err error
	var wall time.Duration
	if s := q.Get("wall"); s != "" {
		wall, err = time.ParseDuration(s)
		if err != nil || wall < 0 || wall > maxWall {
			serveError(w, http.StatusBadRequest, fmt.Sprintf("wall must be a duration from 0 to %v, like 1s, not %q", maxWall, s))
			return
		}
	}
	info, err := h.m.Snapshot(r.Context(), diag.SnapshotOptions{
		Reason: fmt.Sprintf("POST %s from %s", r.URL.Path, r.RemoteAddr),
		Wall:   wall,
	})
	switch {
	case errors.Is(err, diag.ErrNotRunning):
		serveError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil && r.Context().Err() != nil:
		return // the client left; the snapshot is stored anyway
	case err != nil:
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	loc := Prefix + "/snapshots/" + info.ID
	w.Header().Set("Location", loc)
	if asJSON {
		writeJSON(w, http.StatusCreated, info)
		return
	}
	writeText(w, http.StatusCreated, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "snapshot %s\n%s\n\nreport: curl http://%s%s\nbundle: curl -o %s.zip http://%s%s.zip\n",
			info.ID, info.Headline, r.Host, loc, info.ID, r.Host, loc)
		return err
	})
}

func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if base, ok := strings.CutSuffix(id, ".zip"); ok {
		h.snapshotZip(w, r, base)
		return
	}
	_, asJSON, ok := formatParams(w, r)
	if !ok {
		return
	}
	name := bundle.ReportTextFile
	if asJSON {
		name = bundle.ReportJSONFile
	}
	h.serveFile(w, id, name)
}

func (h *handler) snapshotZip(w http.ResponseWriter, r *http.Request, id string) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := h.m.Bundle(id)
	if err != nil {
		serveLookupError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "lockdiag-"+b.Meta().ID+".zip"))
	w.Write(b.Bytes())
}

func (h *handler) snapshotFile(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.serveFile(w, r.PathValue("id"), r.PathValue("file"))
}

// serveFile answers with one file of a bundle. Names are looked up in the
// bundle's own list; nothing here touches a path built from input.
func (h *handler) serveFile(w http.ResponseWriter, id, name string) {
	if name == "" || strings.ContainsAny(name, `/\`) || name != path.Clean(name) {
		serveError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a file name", name))
		return
	}
	b, err := h.m.Bundle(id)
	if err != nil {
		serveLookupError(w, err)
		return
	}
	data, err := b.File(name)
	if err != nil {
		serveLookupError(w, err)
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !strings.HasSuffix(name, ".txt") && !strings.HasSuffix(name, ".json") {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	w.Write(data)
}

func serveLookupError(w http.ResponseWriter, err error) {
	if errors.Is(err, diag.ErrNotFound) || errors.Is(err, bundle.ErrNoFile) {
		serveError(w, http.StatusNotFound, err.Error())
		return
	}
	serveError(w, http.StatusInternalServerError, err.Error())
}

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".txt"):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".gz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}
