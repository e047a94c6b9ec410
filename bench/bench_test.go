package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 1, 100}, 1},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 || in[1] != 1 {
		t.Errorf("median sorted its input: %v", in)
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1
	}
	for _, c := range []struct{ p, want float64 }{
		{0, 1}, {1, 1}, {50, 50}, {99, 99}, {100, 100},
	} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile([7], 99) = %v, want 7", got)
	}
}

func TestMedianCIRank(t *testing.T) {
	for _, c := range []struct {
		n      int
		wantK  int
		minCov float64
	}{
		{5, 1, 0.93},  // too few for 95%: min and max cover 93.75%
		{6, 1, 0.96},  // min and max cover 96.9%
		{9, 2, 0.96},  // 2nd and 8th of 9 cover 96.1%
		{11, 2, 0.98}, // the 3rd would cover only 93.5%
		{13, 3, 0.97},
		{30, 10, 0.95},
	} {
		k, cov := medianCIRank(c.n, 0.95)
		if k != c.wantK || cov < c.minCov || cov > 1 {
			t.Errorf("medianCIRank(%d) = %d, %.4f; want %d, >= %.2f", c.n, k, cov, c.wantK, c.minCov)
		}
		if c.n >= 6 && cov < 0.95 {
			t.Errorf("medianCIRank(%d) covers %.4f < 0.95", c.n, cov)
		}
	}
}

func TestSummarize(t *testing.T) {
	d := summarize([]float64{1.05, 0.97, 1.00, 0.99, 1.01, 1.02, 0.98, 1.03, 0.96})
	if d.n != 9 || d.med != 1.00 || d.lo != 0.96 || d.hi != 1.05 {
		t.Errorf("summarize: %+v", d)
	}
	if d.ciLo != 0.97 || d.ciHi != 1.03 {
		t.Errorf("summarize: interval %v–%v, want 0.97–1.03", d.ciLo, d.ciHi)
	}
	if d.q1 > d.med || d.q3 < d.med {
		t.Errorf("summarize: quartiles %v, %v around %v", d.q1, d.q3, d.med)
	}
	if z := summarize(nil); z.n != 0 {
		t.Errorf("summarize(nil) = %+v", z)
	}
}

func TestRatios(t *testing.T) {
	got := ratios([]float64{2, 3, 4}, []float64{1, 0, 8, 5})
	want := []float64{2, 0.5}
	if len(got) != len(want) {
		t.Fatalf("ratios = %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("ratios[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		d    dist
		want string
	}{
		{dist{n: 9, med: 0.995, ciLo: 0.985, ciHi: 1.01}, "met"},
		{dist{n: 9, med: 0.95, ciLo: 0.94, ciHi: 0.97}, "**not met**"},
		{dist{n: 9, med: 0.99, ciLo: 0.95, ciHi: 1.02}, "met by the median; not resolved (interval reaches below)"},
		{dist{n: 9, med: 0.97, ciLo: 0.95, ciHi: 1.02}, "**not met by the median**; not resolved (interval reaches above)"},
		{dist{}, "no data"},
	} {
		if got := verdict(c.d, 0.98); got != c.want {
			t.Errorf("verdict(%+v, 0.98) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtRatio(0.98765), "0.988"},
		{fmtRange(0.9, 1.1), "0.900–1.100"},
		{fmtChange(0.987), "-1.3%"},
		{fmtChange(1.02), "+2.0%"},
		{fmtChange(1.0004), "+0.0%"},
		{fmtDur(1500 * time.Millisecond), "1.50 s"},
		{fmtDur(12345 * time.Microsecond), "12.3 ms"},
		{fmtDur(250 * time.Microsecond), "250 µs"},
		{fmtDur(999), "999 ns"},
		{fmtSeconds(0.002), "2.00 ms"},
		{fmtBytes(512), "512 B"},
		{fmtBytes(10 << 20), "10.0 MiB"},
		{fmtBytes(-3 << 20), "-3.00 MiB"},
		{fmtBytes(1.5 * (1 << 30)), "1.50 GiB"},
		{fmtCount(6.5e6), "6.50 M"},
		{fmtCount(18400), "18.4 k"},
		{fmtCount(12), "12.0"},
		{flagsLine("overhead", true), " -only overhead -quick"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestOrderSections(t *testing.T) {
	saved := sections
	defer func() { sections = saved }()
	sections = []section{{name: "zeta"}, {name: "scale"}, {name: "detect"}, {name: "overhead"}}
	orderSections()
	var got []string
	for _, s := range sections {
		got = append(got, s.name)
	}
	want := "overhead detect scale zeta"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("order = %q, want %q", g, want)
	}
}
