package httpdiag

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/lockdiag/lockdiag/diag"
)

// metrics answers with the newest sample in the Prometheus text format,
// one gauge per signal, plus counts of snapshots and breached rules.
func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	var b bytes.Buffer
	s, ok := h.m.Latest()
	for _, sig := range diag.Signals() {
		v, measured := s.Get(sig)
		if !ok || !measured {
			continue
		}
		name := "lockdiag_" + sig.String()
		fmt.Fprintf(&b, "# HELP %s %s", name, sig.Help())
		if u := sig.Unit(); u != "" {
			fmt.Fprintf(&b, " (%s)", u)
		}
		fmt.Fprintf(&b, "\n# TYPE %s gauge\n%s %s\n", name, name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	st := h.m.Status()
	b.WriteString("# HELP lockdiag_rule_breached 1 while the rule is breached.\n# TYPE lockdiag_rule_breached gauge\n")
	for _, rs := range st.Rules {
		v := 0
		if rs.State == "breached" || rs.State == "clearing" {
			v = 1
		}
		fmt.Fprintf(&b, "lockdiag_rule_breached{rule=%s} %d\n", promQuote(rs.Rule), v)
	}
	b.WriteString("# HELP lockdiag_snapshots Snapshots stored (memory and disk).\n# TYPE lockdiag_snapshots gauge\n")
	fmt.Fprintf(&b, "lockdiag_snapshots %d\n", len(h.m.Snapshots()))
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

func promQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
