package diag

import (
	"sync"
	"time"
)

// timeline is a fixed-size ring of samples. Safe for concurrent use.
type timeline struct {
	mu   sync.RWMutex
	buf  []Sample
	next int // index of the next write
	full bool
}

func newTimeline(capacity int) *timeline {
	return &timeline{buf: make([]Sample, max(capacity, 1))}
}

func (t *timeline) add(s Sample) {
	t.mu.Lock()
	t.buf[t.next] = s
	t.next++
	if t.next == len(t.buf) {
		t.next = 0
		t.full = true
	}
	t.mu.Unlock()
}

// latest returns the newest sample, and false if there is none.
func (t *timeline) latest() (Sample, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.full && t.next == 0 {
		return Sample{}, false
	}
	i := t.next - 1
	if i < 0 {
		i = len(t.buf) - 1
	}
	return t.buf[i], true
}

// since returns the samples at or after from, oldest first, at most limit
// of the newest ones if limit > 0.
func (t *timeline) since(from time.Time, limit int) []Sample {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.next
	if t.full {
		n = len(t.buf)
	}
	// Walk backwards from the newest until a sample is older than from.
	count := 0
	for count < n {
		i := t.next - 1 - count
		if i < 0 {
			i += len(t.buf)
		}
		if t.buf[i].Time.Before(from) {
			break
		}
		count++
		if limit > 0 && count == limit {
			break
		}
	}
	out := make([]Sample, count)
	for k := range count {
		i := t.next - count + k
		if i < 0 {
			i += len(t.buf)
		}
		out[k] = t.buf[i]
	}
	return out
}
