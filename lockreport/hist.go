package lockreport

import (
	"math/bits"
	"time"
)

// hist is a log-linear histogram of durations: 8 buckets per power of two
// (relative error under 1/16 at the bucket midpoint), from 64ns (the trace
// clock's granularity on linux/amd64) to about 18 minutes; longer values go
// into the last bucket. It costs 1.2 KB per site.
type hist struct {
	counts []uint32
	n      uint64
}

const (
	histSub     = 8
	histMinExp  = 6  // 64ns
	histMaxExp  = 40 // ~1100s
	histBuckets = (histMaxExp-histMinExp+1)*histSub + 1
)

func histBucket(ns int64) int {
	if ns < 1<<histMinExp {
		return 0
	}
	e := bits.Len64(uint64(ns)) - 1
	if e > histMaxExp {
		return histBuckets - 1
	}
	m := int(uint64(ns)>>(e-3)) & (histSub - 1)
	return 1 + (e-histMinExp)*histSub + m
}

// histMid is the midpoint of bucket i.
func histMid(i int) int64 {
	if i == 0 {
		return 1 << (histMinExp - 1)
	}
	if i >= histBuckets-1 {
		return 1 << histMaxExp
	}
	i--
	e := i/histSub + histMinExp
	m := int64(i % histSub)
	lo := (histSub + m) << (e - 3)
	hi := (histSub + m + 1) << (e - 3)
	return (lo + hi) / 2
}

func (h *hist) add(ns int64) {
	if h.counts == nil {
		h.counts = make([]uint32, histBuckets)
	}
	h.counts[histBucket(ns)]++
	h.n++
}

// quantile returns the q-quantile (0 < q <= 1), clamped to max.
func (h *hist) quantile(q float64, max int64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			v := histMid(i)
			if v > max {
				v = max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(max)
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint32, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}
