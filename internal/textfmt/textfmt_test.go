package textfmt

import (
	"math"
	"testing"
	"time"
)

func TestDur(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{640, "640ns"}, {12300, "12.3µs"}, {20 * time.Microsecond, "20µs"}, {4100 * time.Microsecond, "4.1ms"},
		{120 * time.Millisecond, "120ms"}, {4120 * time.Millisecond, "4.12s"}, {123 * time.Second, "2m3s"},
		{-3 * time.Millisecond, "-3ms"}, {62886263 * time.Microsecond, "1m3s"},
	} {
		if got := Dur(c.d); got != c.want {
			t.Errorf("Dur(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {12, "12"}, {16.1623, "16.2"}, {3.25, "3.25"}, {0.0125, "0.0125"}, {0.00111, "0.00111"},
		{7.98e-06, "<0.001"}, {-7.98e-06, ">-0.001"}, {1234.6, "1235"}, {-2.5, "-2.5"}, {math.NaN(), "-"}, {0.5, "0.5"}, {99.96, "100"},
	} {
		if got := Value(c.v); got != c.want {
			t.Errorf("Value(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestWrapClip(t *testing.T) {
	if got := Wrap("aaa bbb ccc", 8, "  "); got != "aaa\n  bbb\n  ccc" {
		t.Errorf("Wrap = %q", got)
	}
	if got := Clip("héllo world", 6); got != "héllo…" {
		t.Errorf("Clip = %q", got)
	}
	if got := Plural(1, "wait", "waits") + ", " + Plural(3, "wait", "waits"); got != "1 wait, 3 waits" {
		t.Errorf("Plural = %q", got)
	}
}

func TestPct(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0%"}, {0.0004, "<0.1%"}, {0.004, "0.4%"}, {0.25, "25%"}, {0.994, "99.4%"}, {1, "100%"},
	} {
		if got := Pct(c.f); got != c.want {
			t.Errorf("Pct(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}
