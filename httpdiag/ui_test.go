package httpdiag

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestUIPage(t *testing.T) {
	h := Handler(newMonitor(t), Options{})
	w := do(t, h, "GET", "/debug/locks/ui", local, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /debug/locks/ui: %d %s", w.Code, w.Body)
	}
	hd := w.Header()
	if ct := hd.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	csp := hd.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "img-src 'self' data:", "style-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want+";") && !strings.HasSuffix(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy allows unsafe sources: %q", csp)
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := hd.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	page := w.Body.String()
	// Everything the page runs and wears comes from its own files: the
	// policy would block inline code anyway, and tests would not notice.
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(page) || strings.Contains(page, "<style") ||
		regexp.MustCompile(`\sstyle=|\son[a-z]+=`).MatchString(page) {
		t.Error("the page has inline script, style or event handlers")
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "//cdn") {
		t.Error("the page refers to another site")
	}

	// The script and style sheet it refers to are served.
	refs := regexp.MustCompile(`(?:src|href)="(ui/[^"]+)"`).FindAllStringSubmatch(page, -1)
	var script, style bool
	for _, m := range refs {
		u, err := url.Parse("/debug/locks/ui")
		if err != nil {
			t.Fatal(err)
		}
		ref := u.ResolveReference(&url.URL{Path: m[1]}).Path
		r := do(t, h, "GET", ref, local, nil)
		if r.Code != http.StatusOK {
			t.Errorf("the page refers to %s, answered %d", ref, r.Code)
		}
		script = script || ref == "/debug/locks/ui/app.js"
		style = style || ref == "/debug/locks/ui/style.css"
	}
	if !script || !style {
		t.Errorf("the page does not load app.js and style.css: %q", refs)
	}

	// Only token is accepted.
	if w := do(t, h, "GET", "/debug/locks/ui?x=1", local, nil); w.Code != http.StatusBadRequest {
		t.Errorf("GET /debug/locks/ui?x=1: %d, want 400", w.Code)
	}
	if w := do(t, h, "GET", "/debug/locks/ui", "192.0.2.1:5555", nil); w.Code != http.StatusForbidden {
		t.Errorf("GET /debug/locks/ui from afar: %d, want 403", w.Code)
	}
	if w := do(t, h, "POST", "/debug/locks/ui", local, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/locks/ui: %d, want 405", w.Code)
	}
	if w := do(t, h, "HEAD", "/debug/locks/ui", local, nil); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /debug/locks/ui: %d with %d bytes", w.Code, w.Body.Len())
	}
}

// A token in the page's URL reaches the page's own files, which the
// browser fetches without the page's query and without a header.
func TestUIPageToken(t *testing.T) {
	h := Handler(newMonitor(t), Options{Token: "a&b<c"})
	if w := do(t, h, "GET", "/debug/locks/ui", local, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("GET /debug/locks/ui without the token: %d, want 401", w.Code)
	}
	w := do(t, h, "GET", "/debug/locks/ui?token="+url.QueryEscape("a&b<c"), local, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /debug/locks/ui with the token: %d %s", w.Code, w.Body)
	}
	page := w.Body.String()
	if strings.Contains(page, "a&b<c") {
		t.Error("the token is in the page unescaped")
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="(ui/[^"]+)"`).FindAllStringSubmatch(page, -1) {
		ref := strings.ReplaceAll(m[1], "&amp;", "&")
		if r := do(t, h, "GET", "/debug/locks/"+ref, "192.0.2.1:5555", nil); r.Code != http.StatusOK {
			t.Errorf("GET /debug/locks/%s: %d %s", ref, r.Code, r.Body)
		}
	}
}

func TestUIFiles(t *testing.T) {
	h := Handler(newMonitor(t), Options{})
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
		w := do(t, h, "GET", "/debug/locks/ui/"+name, local, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", name, w.Code, w.Body)
			continue
		}
		want, _ := uiFS.ReadFile("ui/" + name)
		if w.Body.String() != string(want) {
			t.Errorf("GET %s: body differs from the embedded file", name)
		}
		if got := w.Header().Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", name, got, ctype)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", name, got)
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", name)
			continue
		}
		if w := do(t, h, "GET", "/debug/locks/ui/"+name, local, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", name, w.Code)
		}
		if w := do(t, h, "GET", "/debug/locks/ui/"+name+"?v=2", local, nil); w.Code != http.StatusBadRequest {
			t.Errorf("GET %s?v=2: %d, want 400", name, w.Code)
		}
	}

	for _, target := range []string{
		"/debug/locks/ui/nope.js",
		"/debug/locks/ui/index.html", // the page lives at /debug/locks/ui only
		"/debug/locks/ui/APP.JS",
		"/debug/locks/ui/app.js.map",
	} {
		if w := do(t, h, "GET", target, local, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
	}
}

// Nothing outside the three embedded files can be reached, and no
// directory is listed.
func TestUIFilesNoTraversal(t *testing.T) {
	h := Handler(newMonitor(t), Options{})
	for _, target := range []string{
		"/debug/locks/ui/",
		"/debug/locks/ui/.",
		"/debug/locks/ui/..",
		"/debug/locks/ui/../ui.go",
		"/debug/locks/ui/..%2fui.go",
		"/debug/locks/ui/..%2F..%2Fgo.mod",
		"/debug/locks/ui/%2e%2e%2fhttpdiag.go",
		"/debug/locks/ui/ui%2fapp.js",
		"/debug/locks/ui/..%5cui.go",
		"/debug/locks/ui/%2fetc%2fpasswd",
		"/debug/locks/ui/app.js/..%2f..%2fui.go",
		"/debug/locks/ui/app.js%00.css",
		"/debug/locks/ui/ui.go",
		"/debug/locks/ui/ui",
	} {
		w := do(t, h, "GET", target, local, nil)
		if w.Code/100 == 3 {
			// The mux cleans the path and redirects: follow it once.
			loc := w.Header().Get("Location")
			if loc == "/debug/locks" || loc == "/debug/locks/ui" {
				continue // the status and the page themselves
			}
			w = do(t, h, "GET", loc, local, nil)
			target += " -> " + loc
		}
		body := w.Body.String()
		if w.Code == http.StatusOK || strings.Contains(body, "package httpdiag") || strings.Contains(body, "module ") ||
			strings.Contains(body, "root:") || strings.Contains(body, "<a href") {
			t.Errorf("GET %s: %d %.80q", target, w.Code, body)
		}
	}
}

// The script puts text from the server into the page as text only.
func TestUIScriptEscapes(t *testing.T) {
	js, err := uiFS.ReadFile("ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	// Every element the script looks up by id is in the page.
	html, err := uiFS.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\('([a-z-]+)'\)`).FindAllStringSubmatch(string(js), -1) {
		if !strings.Contains(string(html), `id="`+m[1]+`"`) {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
}
