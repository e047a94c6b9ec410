package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/lockdiag/lockdiag/internal/cputime"
)

// dist summarizes a sample: its median with a distribution-free
// confidence interval, quartiles and extremes.
type dist struct {
	n                 int
	med, q1, q3       float64
	lo, hi            float64 // min, max
	ciLo, ciHi, ciCov float64 // confidence interval of the median and its coverage
}

func summarize(xs []float64) dist {
	if len(xs) == 0 {
		return dist{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	d := dist{
		n:   len(s),
		med: median(s),
		q1:  percentile(s, 25),
		q3:  percentile(s, 75),
		lo:  s[0],
		hi:  s[len(s)-1],
	}
	k, cov := medianCIRank(len(s), 0.95)
	d.ciLo, d.ciHi, d.ciCov = s[k-1], s[len(s)-k], cov
	return d
}

// medianCIRank returns the 1-based rank k such that the k-th smallest and
// k-th largest of n observations bound the median with at least the given
// confidence (by the binomial distribution of how many observations fall
// below the true median), and the coverage that bound has. If n is too
// small for the confidence, k is 1 (min and max) and the coverage says
// how much less it is.
func medianCIRank(n int, conf float64) (k int, coverage float64) {
	if n <= 0 {
		return 1, 0
	}
	alpha := (1 - conf) / 2
	// below(j) = P(X < j) for X ~ Binomial(n, 1/2).
	below := func(j int) float64 {
		p := 0.0
		for i := 0; i < j; i++ {
			p += binom(n, i)
		}
		return p / math.Pow(2, float64(n))
	}
	k = 1
	for j := 2; j <= (n+1)/2; j++ {
		if below(j) > alpha {
			break
		}
		k = j
	}
	return k, 1 - 2*below(k)
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// ratios returns a[i]/b[i] for the pairs where b[i] is positive.
func ratios(a, b []float64) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

// fmtRatio prints a ratio with three decimals.
func fmtRatio(r float64) string { return fmt.Sprintf("%.3f", r) }

// fmtRange prints "lo–hi" of two ratios.
func fmtRange(lo, hi float64) string { return fmtRatio(lo) + "–" + fmtRatio(hi) }

// fmtChange prints a ratio as a signed percentage change: 0.987 -> "-1.3%".
func fmtChange(r float64) string {
	c := (r - 1) * 100
	if math.Abs(c) < 0.05 {
		c = 0
	}
	return fmt.Sprintf("%+.1f%%", c)
}

// verdict compares a median ratio (higher is better) and its confidence
// interval with a goal: the ratio must be at least goal.
func verdict(d dist, goal float64) string {
	switch {
	case d.n == 0:
		return "no data"
	case d.ciLo >= goal:
		return "met"
	case d.ciHi < goal:
		return "**not met**"
	case d.med >= goal:
		return "met by the median; not resolved (interval reaches below)"
	default:
		return "**not met by the median**; not resolved (interval reaches above)"
	}
}

// fmtDur prints a duration with three significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	switch a := math.Abs(float64(d)); {
	case a >= float64(time.Second):
		return sig3(d.Seconds()) + " s"
	case a >= float64(time.Millisecond):
		return sig3(float64(d)/1e6) + " ms"
	case a >= float64(time.Microsecond):
		return sig3(float64(d)/1e3) + " µs"
	default:
		return fmt.Sprintf("%d ns", d)
	}
}

// fmtSeconds prints seconds as fmtDur does.
func fmtSeconds(s float64) string { return fmtDur(time.Duration(s * 1e9)) }

// fmtBytes prints a byte count in KiB, MiB or GiB, signed when negative.
func fmtBytes(b float64) string {
	a := math.Abs(b)
	switch {
	case a >= 1<<30:
		return sig3(b/(1<<30)) + " GiB"
	case a >= 1<<20:
		return sig3(b/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig3(b/(1<<10)) + " KiB"
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// fmtCount prints a rate or count with a k/M suffix.
func fmtCount(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 1e6:
		return sig3(x/1e6) + " M"
	case a >= 1e3:
		return sig3(x/1e3) + " k"
	default:
		return sig3(x)
	}
}

// sig3 prints x with three significant digits, without exponent.
func sig3(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	case a >= 1:
		return fmt.Sprintf("%.2f", x)
	default:
		return fmt.Sprintf("%.3f", x)
	}
}

// selfCPU returns this process's user plus system CPU seconds (0 where the
// system does not say: the sections say so instead of guessing).
func selfCPU() float64 {
	s, _ := cputime.Self()
	return s
}
