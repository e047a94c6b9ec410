package httpdiag

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// The pprof-compatible pull endpoints, for the continuous profilers a
// fleet already runs (Pyroscope/Alloy, Parca, Coroot) and for go tool
// pprof and go tool trace:
//
//	GET /debug/locks/pprof/mutex          cumulative, or ?seconds=N for a delta over N seconds
//	GET /debug/locks/pprof/block          cumulative, or ?seconds=N
//	GET /debug/locks/pprof/goroutine      now, or ?seconds=N for the change; ?debug=1|2 for text
//	GET /debug/locks/pprof/goroutineleak  Go >= 1.27: goroutines blocked forever (runs a GC cycle)
//	GET /debug/locks/pprof/trace          ?seconds=N: the flight recorder's window, N seconds from now
//
// They follow net/http/pprof's parameters and formats, behind the same
// access rules as every other path of the handler.

// maxPullSeconds bounds ?seconds= of the profile endpoints.
const maxPullSeconds = 300

// maxPulls bounds the pulls that wait (seconds > 0) at once; more are
// answered 503.
const maxPulls = 4

// pprofProfiles are the profiles served, in the order the index lists them.
var pprofProfiles = []string{"mutex", "block", "goroutine", "goroutineleak"}

func (h *handler) pprofIndex(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeText(w, http.StatusOK, func(w2 io.Writer) error {
		var b bytes.Buffer
		fmt.Fprintf(&b, "pprof-compatible profiles of this program (as net/http/pprof serves them):\n\n")
		for _, name := range pprofProfiles {
			note := ""
			switch {
			case pprof.Lookup(name) == nil:
				note = "  (not in " + runtime.Version() + ": needs Go 1.27 or later)"
			case name == "block" && h.m.Status().BlockProfileRate == 0:
				note = "  (empty: block profiling is off; set LOCKDIAG_BLOCK_RATE)"
			}
			fmt.Fprintf(&b, "  %s/pprof/%s%s\n", Prefix, name, note)
		}
		fmt.Fprintf(&b, "  %s/pprof/trace?seconds=N  (the flight recorder's window)\n\n", Prefix)
		fmt.Fprintf(&b, "?seconds=N (1 to %d) returns the change over the next N seconds (mutex, block, goroutine);\n", maxPullSeconds)
		fmt.Fprintf(&b, "?debug=1 or 2 returns text instead of the pprof format.\n")
		_, err := w2.Write(b.Bytes())
		return err
	})
}

// pprofProfile serves one named profile, cumulative or as a delta.
func (h *handler) pprofProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "trace" {
		h.pprofTrace(w, r)
		return
	}
	known := false
	for _, p := range pprofProfiles {
		known = known || p == name
	}
	if !known {
		serveError(w, http.StatusNotFound, fmt.Sprintf("no profile %q here; these are: %s, trace (see GET %s/pprof/)", name, strings.Join(pprofProfiles, ", "), Prefix))
		return
	}
	q, err := params(r, "seconds", "debug")
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	debug := 0
	if s := q.Get("debug"); s != "" {
		maxDebug := 1
		if name == "goroutine" {
			maxDebug = 2
		}
		if debug, err = strconv.Atoi(s); err != nil || debug < 0 || debug > maxDebug {
			serveError(w, http.StatusBadRequest, fmt.Sprintf("debug must be an integer from 0 to %d for %s, not %q", maxDebug, name, s))
			return
		}
	}
	sec, ok := h.seconds(w, r, q.Get("seconds"), 0, maxPullSeconds)
	if !ok {
		return
	}
	switch {
	case sec > 0 && debug != 0:
		serveError(w, http.StatusBadRequest, "seconds works with debug=0 only: a delta is a pprof-format profile")
		return
	case sec > 0 && name == "goroutineleak":
		serveError(w, http.StatusBadRequest, "goroutineleak takes no seconds: it is found at a GC cycle, not accumulated")
		return
	}
	p := pprof.Lookup(name)
	if p == nil {
		serveError(w, http.StatusNotFound, fmt.Sprintf("no %s profile in %s: it needs Go 1.27 or later", name, runtime.Version()))
		return
	}
	if sec == 0 {
		var buf bytes.Buffer
		if err := p.WriteTo(&buf, debug); err != nil {
			serveError(w, http.StatusInternalServerError, fmt.Sprintf("writing the %s profile: %v", name, err))
			return
		}
		profileHeaders(w, name, debug)
		w.Write(buf.Bytes())
		return
	}

	release, ok := h.pullSlot(w)
	if !ok {
		return
	}
	defer release()
	before, err := readProfile(p)
	if err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !sleepCtx(r.Context(), time.Duration(sec)*time.Second) {
		return // the client left
	}
	after, err := readProfile(p)
	if err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	d, err := delta(before, after)
	if err != nil {
		serveError(w, http.StatusInternalServerError, fmt.Sprintf("computing the %s delta: %v", name, err))
		return
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	profileHeaders(w, name+"-delta", 0)
	w.Write(buf.Bytes())
}

// pprofTrace serves the flight recorder's window after seconds. It never
// starts a tracer of its own.
func (h *handler) pprofTrace(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, "seconds")
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	window := h.m.Config().TraceWindow
	max := int(window / time.Second)
	if q.Get("seconds") == "" {
		q.Set("seconds", "1") // net/http/pprof's default
	}
	sec, ok := h.seconds(w, r, q.Get("seconds"), 0, max)
	if !ok {
		return
	}
	if st := h.m.Status(); !st.Running || strings.HasPrefix(st.Trace, "unavailable") {
		serveError(w, http.StatusServiceUnavailable, fmt.Sprintf("no flight recorder to write from (trace: %s); lockdiag starts no second tracer (net/http/pprof's /debug/pprof/trace can run runtime/trace.Start)", st.Trace))
		return
	}
	release, ok := h.pullSlot(w)
	if !ok {
		return
	}
	defer release()
	if !sleepCtx(r.Context(), time.Duration(sec)*time.Second) {
		return
	}
	var buf bytes.Buffer
	if _, err := h.m.WriteTrace(r.Context(), &buf); err != nil {
		if r.Context().Err() != nil {
			return
		}
		serveError(w, http.StatusServiceUnavailable, fmt.Sprintf("writing the flight recorder's window: %v", err))
		return
	}
	w.Header().Set("X-Lockdiag-Trace-Window", window.String())
	profileHeaders(w, "trace", 0)
	w.Write(buf.Bytes())
}

// seconds parses a seconds parameter from lo to hi; "" is 0. It answers
// 400 with the rule when the value breaks it.
func (h *handler) seconds(w http.ResponseWriter, r *http.Request, s string, lo, hi int) (int, bool) {
	if s == "" {
		return 0, true
	}
	sec, err := strconv.Atoi(s)
	if err != nil || sec < lo || sec > hi {
		rule := fmt.Sprintf("seconds must be an integer from %d to %d, not %q", lo, hi, s)
		if strings.HasSuffix(r.URL.Path, "/trace") {
			rule += fmt.Sprintf(": the flight recorder keeps the last %ds (LOCKDIAG_TRACE_WINDOW), so it cannot serve a longer trace", hi)
		}
		serveError(w, http.StatusBadRequest, rule)
		return 0, false
	}
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 && time.Duration(sec)*time.Second >= srv.WriteTimeout {
		serveError(w, http.StatusBadRequest, fmt.Sprintf("seconds must be less than the server's WriteTimeout (%v)", srv.WriteTimeout))
		return 0, false
	}
	return sec, true
}

// pullSlot takes one of the maxPulls slots of waiting pulls, or answers
// 503.
func (h *handler) pullSlot(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case h.pulls <- struct{}{}:
		return func() { <-h.pulls }, true
	default:
		serveError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d profile pulls are waiting already; try again later", maxPulls))
		return nil, false
	}
}

func profileHeaders(w http.ResponseWriter, file string, debug int) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	if debug > 0 {
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", file))
}

func readProfile(p *pprof.Profile) (*profile.Profile, error) {
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("writing the %s profile: %w", p.Name(), err)
	}
	return profile.ParseData(buf.Bytes())
}

// delta is after minus before, as net/http/pprof computes it: negative
// values stay (goroutines that ended), samples that cancel out go.
func delta(before, after *profile.Profile) (*profile.Profile, error) {
	ts := after.TimeNanos
	dur := after.TimeNanos - before.TimeNanos
	before.Scale(-1)
	p, err := profile.Merge([]*profile.Profile{before, after})
	if err != nil {
		return nil, err
	}
	kept := p.Sample[:0]
	for _, s := range p.Sample {
		for _, v := range s.Value {
			if v != 0 {
				kept = append(kept, s)
				break
			}
		}
	}
	p.Sample = kept
	p.TimeNanos, p.DurationNanos = ts, dur
	return p, nil
}

// sleepCtx waits d, and returns false if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
