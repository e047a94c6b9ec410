package lockreport

import (
	"math/bits"

	"golang.org/x/exp/trace"
)

// goSet is a set of goroutine IDs: a bitmap for the IDs below smallGoIDs
// (those of most programs; 20,000 goroutines take 2.5 KiB, where a map
// takes about 600 KiB), a map for the others. The zero value is empty.
type goSet struct {
	bits []uint64
	n    int
	big  map[trace.GoID]struct{}
}

func (s *goSet) add(id trace.GoID) {
	if id >= 0 && id < smallGoIDs {
		w := int(id >> 6)
		if w >= len(s.bits) {
			s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
		}
		if m := uint64(1) << (id & 63); s.bits[w]&m == 0 {
			s.bits[w] |= m
			s.n++
		}
		return
	}
	if _, ok := s.big[id]; ok {
		return
	}
	if s.big == nil {
		s.big = make(map[trace.GoID]struct{})
	}
	s.big[id] = struct{}{}
	s.n++
}

// len returns the number of goroutines in s.
func (s *goSet) len() int { return s.n }

// addAll adds the goroutines of o to s.
func (s *goSet) addAll(o *goSet) {
	for w, x := range o.bits {
		for x != 0 {
			s.add(trace.GoID(w<<6 + bits.TrailingZeros64(x)))
			x &= x - 1
		}
	}
	for id := range o.big {
		s.add(id)
	}
}
