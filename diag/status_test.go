package diag

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestStatusTableColumns: the signal table keeps its columns for any
// value: tiny, huge, fractional, not measured.
func TestStatusTableColumns(t *testing.T) {
	values := []float64{0, 7.98e-06, 0.00459, 0.0135, 1.5, 91.12, 1722, 123456.7, 98765432.1, 1.2e15, -0.00459, -7.98e-06, 2e21, math.Inf(1), math.NaN()}
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

// TestCompact: a value and its unit fit the status table's 10 columns at
// any magnitude, small values never get an SI prefix, and what is printed
// reads back to the value (or bounds it).
func TestCompact(t *testing.T) {
	for _, c := range []struct {
		v          float64
		unit, want string
	}{
		{0.00459, " s/s", "0.0046 s/s"}, // was "<0.001T s/s"
		{0.0016, " s/s", "0.0016 s/s"},
		{0.00459, "", "0.00459"},
		{-0.00459, " s/s", "-0.005 s/s"},
		{0.0004, " s/s", "<0.001 s/s"},
		{-0.0004, " s/s", ">-0.01 s/s"},
		{-0.0004, "", ">-0.001"},
		{-4e-9, "", ">-0.001"},
		{0, " s/s", "0 s/s"},
		{0.5, " 1/s", "0.5 1/s"},
		{999.4, " 1/s", "999 1/s"},
		{123456.7, " 1/s", "123457 1/s"},
		{1234567, " 1/s", "1235k 1/s"},
		{-1234567, " 1/s", "-1235k 1/s"},
		{98765432.1, "", "98765432"},
		{1.2e15, " s/s", "1200T s/s"},
		{1.2e18, " s/s", "1200P s/s"},
		{9.2e18, "", "9200000T"},
		{2e21, " s/s", "2000E s/s"},
		{2e24, " s/s", ">999E s/s"},
		{-2e24, " s/s", "<-999E s/s"},
		{math.Inf(1), " s/s", "+Inf s/s"},
		{math.Inf(-1), " s/s", "-Inf s/s"},
		{math.NaN(), " s/s", "-"},
	} {
		if got := compact(c.v, c.unit); got != c.want {
			t.Errorf("compact(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}

	// Every magnitude from 1e-12 to 1e26, both signs: at most 10 columns,
	// no exponent, a prefix only from a thousand up, and within rounding
	// of the value.
	prefix := map[byte]float64{'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15, 'E': 1e18}
	for _, unit := range []string{"", " s/s", " 1/s", "h"} {
		for e := -12; e <= 26; e++ {
			for _, m := range []float64{1, 1.0049, 4.59, 9.996, -1, -4.59, -9.996} {
				v := m * math.Pow(10, float64(e))
				got := compact(v, unit)
				num, ok := strings.CutSuffix(got, unit)
				if !ok || len(got) > 10 || strings.ContainsAny(num, "eE") && !strings.HasSuffix(num, "E") {
					t.Errorf("compact(%v, %q) = %q: wider than 10 columns, unit lost or an exponent", v, unit, got)
					continue
				}
				if strings.HasPrefix(num, "<") || strings.HasPrefix(num, ">") {
					// A bound: "<0.001" above a tiny positive, ">-0.01"
					// below a tiny negative, ">999E" and "<-999E" at the ends.
					b := num[1:]
					scale := 1.0
					if f, ok := prefix[b[len(b)-1]]; ok {
						b, scale = b[:len(b)-1], f
					}
					bound, err := strconv.ParseFloat(b, 64)
					if err != nil || num[0] == '<' && !(v < bound*scale) || num[0] == '>' && !(v > bound*scale) {
						t.Errorf("compact(%v, %q) = %q: not a bound of the value", v, unit, got)
					}
					continue
				}
				scale := 1.0
				if f, ok := prefix[num[len(num)-1]]; ok {
					num, scale = num[:len(num)-1], f
					if math.Abs(v) < 999.5 {
						t.Errorf("compact(%v, %q) = %q: a prefix on a value below a thousand", v, unit, got)
					}
				}
				back, err := strconv.ParseFloat(num, 64)
				if err != nil {
					t.Errorf("compact(%v, %q) = %q: not a number", v, unit, got)
					continue
				}
				// The fewest digits kept are two significant ones (0.0046)
				// or, with a prefix, three (1.23M): within 1.5 % (and the
				// rounding of a small value to its last decimal).
				if back *= scale; math.Abs(back-v) > 0.015*math.Abs(v)+0.0005 || back == 0 && v != 0 {
					t.Errorf("compact(%v, %q) = %q: reads back as %v", v, unit, got, back)
				}
			}
		}
	}
}
