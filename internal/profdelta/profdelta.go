// Package profdelta reads the runtime's cumulative mutex and block profiles
// and subtracts two reads, so that a report covers one window of time.
package profdelta

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/lockdiag/lockdiag/internal/stacks"

	"github.com/google/pprof/profile"
)

// A Capture is one read of a cumulative profile, kept in the runtime's
// compressed encoding: it is parsed only if a delta is asked for.
type Capture struct {
	Time time.Time
	Data []byte // gzipped profile.proto; nil for no capture
	// Rate is the profile's sampling rate in force over the span that
	// ends at this read (the mutex profile's fraction), if the reader
	// recorded it; else 0. The runtime scales each sample by the rate in
	// force when it records it, so a delta across a change of rate mixes
	// scales.
	Rate int
}

// Read reads the named runtime profile ("mutex" or "block"). It costs
// about a millisecond, most of it the runtime's encoder.
func Read(name string) (Capture, error) {
	p := pprof.Lookup(name)
	if p == nil {
		return Capture{}, fmt.Errorf("profdelta: no %s profile", name)
	}
	var buf bytes.Buffer
	now := time.Now()
	if err := p.WriteTo(&buf, 0); err != nil {
		return Capture{}, fmt.Errorf("profdelta: writing %s profile: %w", name, err)
	}
	return Capture{Time: now, Data: buf.Bytes()}, nil
}

// Delta returns newer minus older: the contention recorded between the two
// reads. Samples whose values become zero are dropped. A zero older
// returns newer as it is (everything since the program started). For a
// delta, the result's TimeNanos and DurationNanos describe the window.
func Delta(older, newer Capture) (*profile.Profile, error) {
	if newer.Data == nil {
		return nil, fmt.Errorf("profdelta: no newer profile")
	}
	np, err := profile.ParseData(newer.Data)
	if err != nil {
		return nil, fmt.Errorf("profdelta: parsing profile: %w", err)
	}
	if older.Data == nil {
		return np, nil
	}
	neg, err := profile.ParseData(older.Data)
	if err != nil {
		return nil, fmt.Errorf("profdelta: parsing older profile: %w", err)
	}
	neg.Scale(-1)
	p, err := profile.Merge([]*profile.Profile{np, neg})
	if err != nil {
		return nil, fmt.Errorf("profdelta: subtracting profiles: %w", err)
	}
	// Merge keeps zero samples when some values differ in sign; drop them
	// and anything negative left by a counter reset.
	kept := p.Sample[:0]
	for _, s := range p.Sample {
		positive := false
		for _, v := range s.Value {
			if v > 0 {
				positive = true
			}
		}
		if positive {
			kept = append(kept, s)
		}
	}
	p.Sample = kept
	p.TimeNanos = older.Time.UnixNano()
	p.DurationNanos = newer.Time.Sub(older.Time).Nanoseconds()
	return p, nil
}

// RuntimeDelay returns the delay (nanoseconds) of p's samples on the Go
// runtime's own locks, and of all its samples: p is a mutex profile.
func RuntimeDelay(p *profile.Profile) (runtime, total int64) {
	if p == nil {
		return 0, 0
	}
	idx := sampleIndex(p, "delay")
	if idx < 0 {
		return 0, 0
	}
	for _, s := range p.Sample {
		if idx >= len(s.Value) || s.Value[idx] <= 0 {
			continue
		}
		total += s.Value[idx]
		if len(s.Location) > 0 && s.Location[0] != nil && len(s.Location[0].Line) > 0 {
			// A location's lines run from the inlined callee out: the
			// first is the leaf.
			if fn := s.Location[0].Line[0].Function; fn != nil && stacks.RuntimeLock(fn.Name) {
				runtime += s.Value[idx]
			}
		}
	}
	return runtime, total
}

func sampleIndex(p *profile.Profile, sampleType string) int {
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			return i
		}
	}
	return -1
}

// Total returns the sum of the sample values of the given type (e.g.
// "delay" or "contentions") in p, or 0 if p has no such sample type.
func Total(p *profile.Profile, sampleType string) int64 {
	if p == nil {
		return 0
	}
	idx := sampleIndex(p, sampleType)
	if idx < 0 {
		return 0
	}
	var sum int64
	for _, s := range p.Sample {
		sum += s.Value[idx]
	}
	return sum
}
