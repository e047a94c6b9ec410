package diag

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestStatusTableColumns: the signal table keeps its columns for any
// value: tiny, huge, fractional, not measured.
func TestStatusTableColumns(t *testing.T) {
	values := []float64{0, 7.98e-06, 0.0135, 1.5, 91.12, 1722, 123456.7, 98765432.1, 1.2e15, math.NaN()}
	for _, v := range values {
		st := Status{Time: time.Now(), Running: true, Uptime: 62886263 * time.Microsecond}
		for _, sig := range Signals() {
			st.Minute = append(st.Minute, SignalSummary{Signal: sig.String(), Unit: sig.Unit(), Now: v, Mean: v / 3, Max: v * 7})
		}
		var buf bytes.Buffer
		if err := st.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Contains(out, "e-0") || strings.Contains(out, "e+") || strings.Contains(out, "1m2.886263s") {
			t.Errorf("value %v: exponent or unrounded duration:\n%s", v, out)
		}
		for _, sig := range Signals() {
			for _, line := range strings.Split(out, "\n") {
				if !strings.HasPrefix(line, sig.String()+" ") {
					continue
				}
				i := strings.Index(line, sig.Help())
				if col := utf8.RuneCountInString(line[:i]); col != 55 {
					t.Errorf("value %v: %s's help starts at column %d, not 55:\n%s", v, sig, col, line)
				}
			}
		}
	}
}
