package httpdiag

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The live page: one HTML file, one script and one style sheet, written
// by hand (no build step, no framework, nothing fetched from elsewhere).
// The script plots the stream's samples on canvases and fetches status,
// reports and snapshots from the other paths.
//
//go:embed ui/index.html ui/app.js ui/style.css
var uiFS embed.FS

// uiPolicy is the page's Content-Security-Policy: its own script and
// style sheet only (no inline code), connections to this origin and its
// websocket, and no framing (the page has a button that takes snapshots).
const uiPolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiAsset is an embedded file served under /debug/locks/ui/.
type uiAsset struct {
	data  []byte
	ctype string
	etag  string
}

// uiAssets are the files served by name; anything else is 404. The page
// itself is served only at /debug/locks/ui.
var uiAssets = func() map[string]uiAsset {
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	assets := make(map[string]uiAsset)
	entries, err := fs.ReadDir(uiFS, "ui")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	for _, e := range entries {
		ctype, ok := types[path.Ext(e.Name())]
		if !ok || e.IsDir() {
			continue
		}
		data, err := uiFS.ReadFile("ui/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(data)
		assets[e.Name()] = uiAsset{data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return assets
}()

// uiPage is index.html. It is a template only so that a token given in
// the page's URL reaches the script and style sheet, which a browser
// fetches without the page's query and cannot send a header with.
var uiPage = template.Must(template.ParseFS(uiFS, "ui/index.html"))

// ui serves the live page. It takes no parameter but token.
func (h *handler) ui(w http.ResponseWriter, r *http.Request) {
	q, err := params(r)
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Authorization has passed: a token here is the right one.
	var buf bytes.Buffer
	if err := uiPage.Execute(&buf, struct{ Token string }{q.Get("token")}); err != nil {
		serveError(w, http.StatusInternalServerError, fmt.Sprintf("rendering the page: %v", err))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	uiHeaders(hd)
	// The page may carry a token in its URL; do not send it on as a
	// referrer.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(buf.Bytes()))
}

// uiFile serves the page's script and style sheet by name. Names are
// looked up in a fixed table: nothing is read from a path built from
// input, so there is no listing and no traversal.
func (h *handler) uiFile(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := r.PathValue("file")
	a, ok := uiAssets[name]
	if !ok || strings.ContainsAny(name, `/\`) {
		serveError(w, http.StatusNotFound, fmt.Sprintf("no file %q; the page is at GET %s/ui", name, Prefix))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	uiHeaders(hd)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

func uiHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", uiPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
}
