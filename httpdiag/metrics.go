package httpdiag

import (
	"fmt"
	"net/http"
)

// metrics serves Options.Metrics (promdiag.Handler in diag/auto), after
// the same access rules and parameter checks as every other path. httpdiag
// has no exposition of its own: the one in package promdiag is the only
// one, and httpdiag does not link client_golang.
func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	if h.opts.Metrics == nil {
		serveError(w, http.StatusNotFound, fmt.Sprintf("no metrics here: serve them with httpdiag.Options{Metrics: promdiag.Handler(m)} (diag/auto does), or register promdiag.NewCollector(m) on your own registry"))
		return
	}
	h.opts.Metrics.ServeHTTP(w, r)
}
