package diag

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/profdelta"

	"github.com/google/pprof/profile"
)

// The Unlock stacks of the tests' holders, leaf first, as in the spike
// example: a refresher that holds the cache's lock across a backend call
// (released rarely, each release charged for every waiter), the readers'
// Get (released often, each charged little), and some minor sites.
var (
	refresherStack = []string{"sync.(*Mutex).Unlock", "main.(*Cache).refreshHoldingLock", "main.refresher"}
	getStack       = []string{"sync.(*Mutex).Unlock", "main.(*Cache).Get", "main.frontHandler.func1"}
	runtimeStack   = []string{"runtime.unlock", "runtime.findRunnable", "runtime.schedule"}
)

func minorStack(i int) []string {
	return []string{"sync.(*Mutex).Unlock", "main.minor" + string(rune('A'+i)), "main.worker"}
}

// holderSample is one stack's values in a mutex profile: contentions
// (already scaled by the fraction, as the runtime writes them) and delay.
type holderSample struct {
	stack        []string
	count, delay int64
}

// holderProfile builds a mutex profile with one sample per stack.
func holderProfile(samples []holderSample) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "contentions", Unit: "count"},
		Period:     1,
	}
	fns := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	for _, hs := range samples {
		s := &profile.Sample{Value: []int64{hs.count, hs.delay}}
		for _, name := range hs.stack {
			loc := locs[name]
			if loc == nil {
				fn := &profile.Function{ID: uint64(len(fns) + 1), Name: name, Filename: "main.go"}
				fns[name] = fn
				p.Function = append(p.Function, fn)
				loc = &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn, Line: int64(10 + len(p.Location))}}}
				locs[name] = loc
				p.Location = append(p.Location, loc)
			}
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// TestHoldersShares: the listed sites' shares and the "other" part add up
// to the whole, whatever is not listed (further sites, the runtime's own
// locks), and the samples are the profile's events at the fraction.
func TestHoldersShares(t *testing.T) {
	const fraction = 100
	samples := []holderSample{
		{refresherStack, 1 * fraction, 62e9}, // one sampled release, 16 waiters × 40ms, ×100
		{getStack, 31 * fraction, 605e6},     // many cheap releases
		{runtimeStack, 2 * fraction, 40e6},   // the runtime's own lock
		{minorStack(0), 3 * fraction, 30e6},  // five minor sites: two of them are not listed
		{minorStack(1), 1 * fraction, 20e6},
		{minorStack(2), 1 * fraction, 10e6},
		{minorStack(3), 1 * fraction, 5e6},
		{minorStack(4), 1 * fraction, 1e6},
	}
	var total int64
	for _, s := range samples {
		total += s.delay
	}
	hv := holdersFrom(holderProfile(samples), time.Minute, fraction)
	if hv.note != "" || len(hv.sites) != holdersShown {
		t.Fatalf("holders = %+v, want %d sites and no note", hv, holdersShown)
	}
	if hv.samples != 41 {
		t.Errorf("samples = %d, want 41 (the profile's contentions over the fraction)", hv.samples)
	}
	if got := hv.sites[0].Func; got != "main.(*Cache).refreshHoldingLock" {
		t.Errorf("top site = %s, want the refresher (most delay)", got)
	}
	if hv.total != time.Duration(total) {
		t.Errorf("total = %v, want %v (every site, the runtime's lock included)", hv.total, time.Duration(total))
	}
	// Not listed: minor D and E (6ms) and the runtime lock (40ms).
	if want := 46 * time.Millisecond; hv.other != want {
		t.Errorf("other = %v, want %v", hv.other, want)
	}
	sum, shares := hv.other, float64(hv.other)/float64(hv.total)
	for _, s := range hv.sites {
		sum += s.Delay
		shares += s.Share
		if s.Stack != nil {
			t.Errorf("%s keeps its stack in the status", s.Func)
		}
	}
	if sum != hv.total || math.Abs(shares-1) > 1e-9 {
		t.Errorf("listed + other = %v of %v, shares %v: they should add up to the whole", sum, hv.total, shares)
	}

	// The text lists them, the rest, and says which rows are rough.
	st := Status{Time: time.Now(), MutexProfileFraction: fraction, Holders: hv.sites, HoldersWindow: hv.window,
		HoldersSamples: hv.samples, HoldersTotal: hv.total, HoldersOther: hv.other}
	var buf bytes.Buffer
	writeHolders(&buf, &st)
	out := buf.String()
	for _, want := range []string{
		"WHERE LOCKS WERE RELEASED, last 1m0s (mutex profile, 41 samples of 1 contention in 100",
		"refreshHoldingLock)  rough: 1 sample\n",
		"(*Cache).Get)  31 samples\n",
		"46ms   0.1%  other sites and the runtime's own locks\n",
		"fewer than 5 samples",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("holders text lacks %q:\n%s", want, out)
		}
	}
}

// TestHoldersFewSamples: a span with a handful of samples lists no sites
// (they would be noise) and says why.
func TestHoldersFewSamples(t *testing.T) {
	const fraction = 100
	p := holderProfile([]holderSample{
		{[]string{"sync.(*Mutex).Unlock", "context.propagateCancel", "context.WithCancel"}, 1 * fraction, 9e6},
		{getStack, 1 * fraction, 2e6},
	})
	hv := holdersFrom(p, 20*time.Second, fraction)
	if len(hv.sites) != 0 || hv.samples != 2 {
		t.Errorf("holders = %+v, want none listed, 2 samples", hv)
	}
	if want := "too few samples in the last 20s"; !strings.HasPrefix(hv.note, want) {
		t.Errorf("note = %q, want it to start %q", hv.note, want)
	}
	st := Status{Time: time.Now(), MutexProfileFraction: fraction, HoldersWindow: hv.window, HoldersSamples: hv.samples,
		HoldersTotal: hv.total, HoldersNote: hv.note}
	var buf bytes.Buffer
	writeHolders(&buf, &st)
	if out := buf.String(); !strings.Contains(out, hv.note) || strings.Contains(out, "propagateCancel") {
		t.Errorf("holders text should give the note and rank nothing:\n%s", out)
	}
}

// TestHoldersSpan replays the spike example's two incidents as mutex
// profile reads every 5s: the refresher's releases, rare and each charged
// for all the waiters, are sampled once per incident (read at 25s and
// 55s); Get's cheap releases a few times a read. The panel used to take
// the delta over the reads of the last 20s or so, and showed Get on top
// between the incidents (at 45-50s, with about 10 samples) while the
// refresher was the cause. Over the span of a minute the refresher stays
// on top from the read after its first release until a minute after its
// last, the span is always what it says, and few samples rank nothing.
func TestHoldersSpan(t *testing.T) {
	const fraction = 100
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var reads []profdelta.Capture
	refresher, get := holderSample{stack: refresherStack}, holderSample{stack: getStack}
	seen := map[string]bool{}
	for sec := 0; sec <= 130; sec += 5 {
		if sec == 25 || sec == 55 {
			refresher.count += fraction
			refresher.delay += 62e9
		}
		get.count += 3 * fraction
		get.delay += 20e6
		var buf bytes.Buffer
		if err := holderProfile([]holderSample{refresher, get}).Write(&buf); err != nil {
			t.Fatal(err)
		}
		now := start.Add(time.Duration(sec) * time.Second)
		reads = keepReads(reads, profdelta.Capture{Time: now, Data: buf.Bytes()})
		if len(reads) > int(holdersSpan/profileEvery)+2 {
			t.Fatalf("at %ds: %d reads kept, want at most a minute's and one more", sec, len(reads))
		}
		oldest, newest, ok := holdersBase(reads)
		if !ok {
			if sec > 0 {
				t.Fatalf("at %ds: no span with %d reads", sec, len(reads))
			}
			continue
		}
		span := newest.Time.Sub(oldest.Time)
		if want := min(time.Duration(sec)*time.Second, holdersSpan); span < want || span > want+profileEvery {
			t.Errorf("at %ds: span %v, want %v to %v", sec, span, want, want+profileEvery)
		}
		d, err := profdelta.Delta(oldest, newest)
		if err != nil {
			t.Fatal(err)
		}
		hv := holdersFrom(d, span, fraction)
		top := ""
		if len(hv.sites) > 0 {
			top = hv.sites[0].Func
		}
		switch {
		case hv.samples < fewHolderSamples:
			if top != "" || hv.note == "" {
				t.Errorf("at %ds: %d samples ranked (%q) without a note", sec, hv.samples, top)
			}
		case sec >= 25 && sec < 55+60:
			if top != "main.(*Cache).refreshHoldingLock" {
				t.Errorf("at %ds (span %v, %d samples): top site %q, want the refresher", sec, span, hv.samples, top)
			}
		case top != "main.(*Cache).Get":
			t.Errorf("at %ds (span %v, %d samples): top site %q, want Get", sec, span, hv.samples, top)
		}
		if sec == 45 || sec == 50 {
			seen[top] = true // between the incidents
		}
	}
	if !seen["main.(*Cache).refreshHoldingLock"] || len(seen) != 1 {
		t.Errorf("between the incidents the panel showed %v, want the refresher only", seen)
	}
}

// holdersFrom ranks the Unlock sites of d, a mutex profile delta over
// window recorded at 1 in fraction throughout.
func holdersFrom(d *profile.Profile, window time.Duration, fraction int) holderView {
	return holdersFromSegments(d, window, []holderSegment{{fraction: fraction}})
}

// TestHoldersFractionChanged: the runtime scales each sample by the
// fraction in force when it records it, so when the fraction adapts
// within the span (100, then 300 here) the samples are counted part by
// part: the refresher's 30 samples at 100 and 10 at 300 are 40, not the
// 6000/300 = 20 that one fraction would make of its count, and Get's 10
// and 20 are 30, not 23.
func TestHoldersFractionChanged(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	capture := func(sec, rate int, samples ...holderSample) profdelta.Capture {
		t.Helper()
		var buf bytes.Buffer
		if err := holderProfile(samples).Write(&buf); err != nil {
			t.Fatal(err)
		}
		return profdelta.Capture{Time: start.Add(time.Duration(sec) * time.Second), Data: buf.Bytes(), Rate: rate}
	}
	refresher, get := holderSample{stack: refresherStack}, holderSample{stack: getStack}
	reads := []profdelta.Capture{capture(0, 100, refresher, get)}
	refresher.count, refresher.delay = 30*100, 30e9
	get.count, get.delay = 10*100, 1e9
	reads = append(reads, capture(5, 100, refresher, get)) // recorded at 100 since the last read
	refresher.count += 10 * 300
	refresher.delay += 10e9
	get.count += 20 * 300
	get.delay += 2e9
	reads = append(reads, capture(10, 300, refresher, get)) // at 300 since the last read

	segs := holderSegments(reads, 300)
	if len(segs) != 2 || segs[0].fraction != 100 || segs[1].fraction != 300 {
		t.Fatalf("segments %+v, want two: at 100, then at 300", segs)
	}
	d, err := profdelta.Delta(reads[0], reads[2])
	if err != nil {
		t.Fatal(err)
	}
	hv := holdersFromSegments(d, 10*time.Second, segs)
	if hv.samples != 70 || !slices.Equal(hv.fractions, []int{100, 300}) {
		t.Errorf("samples %d, fractions %v; want 70 (40 + 30), [100 300]", hv.samples, hv.fractions)
	}
	want := map[string]int64{"main.(*Cache).refreshHoldingLock": 40, "main.(*Cache).Get": 30}
	for _, s := range hv.sites {
		if s.Samples != want[s.Func] {
			t.Errorf("%s: %d samples, want %d", s.Func, s.Samples, want[s.Func])
		}
		delete(want, s.Func)
	}
	if len(want) > 0 {
		t.Errorf("sites not listed: %v", want)
	}

	// One fraction throughout: one segment, and the same counts as before.
	for i := range reads {
		reads[i].Rate = 100
	}
	if segs := holderSegments(reads, 100); len(segs) != 1 || segs[0].from.Time != reads[0].Time || segs[0].to.Time != reads[2].Time {
		t.Errorf("one fraction: segments %+v, want one over the whole span", segs)
	}

	// The text says the fractions and gives each row its samples.
	st := Status{Time: time.Now(), MutexProfileFraction: 300, Holders: hv.sites, HoldersWindow: hv.window,
		HoldersSamples: hv.samples, HoldersFractions: hv.fractions, HoldersTotal: hv.total, HoldersOther: hv.other}
	var buf bytes.Buffer
	writeHolders(&buf, &st)
	for _, w := range []string{"70 samples of 1 contention in 100, then 1 in 300", "refreshHoldingLock)  40 samples\n", "(*Cache).Get)  30 samples\n"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("holders text lacks %q:\n%s", w, buf.String())
		}
	}
}

func TestFractionChanges(t *testing.T) {
	for _, tt := range []struct {
		in, want []int
	}{
		{nil, nil},
		{[]int{100, 100, 100}, nil},
		{[]int{0, 100, 0, 100}, nil}, // unknown rates are not changes
		{[]int{100, 300, 300, 100}, []int{100, 300, 100}},
	} {
		if got := fractionChanges(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("fractionChanges(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
