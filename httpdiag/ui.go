package httpdiag

import "net/http"

// ui serves the live page. (Being written.)
func (h *handler) ui(w http.ResponseWriter, r *http.Request) {
	serveError(w, http.StatusNotFound, "the live page is not built yet")
}

// uiFile serves the page's assets.
func (h *handler) uiFile(w http.ResponseWriter, r *http.Request) {
	serveError(w, http.StatusNotFound, "no such file")
}
