// Package textfmt formats numbers, durations and paragraphs for lockdiag's
// text output (reports, status, the command line), so that every place
// prints them alike: about three significant digits, no exponents, lines
// that fit a terminal.
package textfmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Dur prints d with about three significant digits: 640ns, 12.3µs,
// 4.1ms, 120ms, 4.12s, 2m3s.
func Dur(d time.Duration) string {
	switch {
	case d == math.MinInt64:
		return "-" + time.Duration(math.MaxInt64).Round(time.Second).String()
	case d < 0:
		return "-" + Dur(-d)
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig(float64(d)/1e6) + "ms"
	case d < time.Minute:
		return sig(float64(d)/1e9) + "s"
	}
	return d.Round(time.Second).String()
}

// Seconds prints a number of seconds as [Dur] does.
func Seconds(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	if math.Abs(v) >= float64(math.MaxInt64)/float64(time.Second) {
		// Beyond time.Duration (292 years): hours, without an exponent.
		return strconv.FormatFloat(v/3600, 'f', 0, 64) + "h"
	}
	return Dur(time.Duration(v * float64(time.Second)))
}

// sig prints v (>= 0) with three significant digits, trailing zeros cut.
func sig(v float64) string {
	var s string
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Bytes prints a byte count: 512 B, 12.5 KB, 9.8 MB (units of 1024).
func Bytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return sig(float64(n)/(1<<10)) + " KB"
	case n < 1<<30:
		return sig(float64(n)/(1<<20)) + " MB"
	}
	return sig(float64(n)/(1<<30)) + " GB"
}

// Value prints a signal's value compactly and without an exponent: 12,
// 3.25, 0.0125, "<0.001" for a positive value below a thousandth (">-0.001"
// for a negative one), "-" for NaN (not measured).
func Value(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v < 0:
		if s := Value(-v); s[0] != '<' {
			return "-" + s
		}
		return ">-0.001"
	case v == math.Trunc(v) && v < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 0.001:
		// Three significant digits, trailing zeros cut.
		digits := 2 - int(math.Floor(math.Log10(v)))
		s := strconv.FormatFloat(v, 'f', digits, 64)
		if strings.Contains(s, ".") {
			s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return "<0.001"
}

// Pct prints a share (0 to 1) as a percentage: 97%, 99.4%.
func Pct(f float64) string {
	p := f * 100
	switch {
	case p > 0 && p < 0.1:
		return "<0.1%"
	case p > 99 && p < 100, p > 0 && p < 1:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return fmt.Sprintf("%.0f%%", p)
}

// Plural prints "1 wait" or "3 waits".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// Clip cuts s to n runes, marking the cut with an ellipsis.
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Wrap breaks s into lines of at most width columns; continuation lines
// start with indent.
func Wrap(s string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(s) {
		wl := len([]rune(word))
		if i > 0 {
			if col+1+wl > width-len(indent) && col > 0 {
				b.WriteString("\n")
				b.WriteString(indent)
				col = 0
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += wl
	}
	return b.String()
}
