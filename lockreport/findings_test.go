package lockreport

import (
	"strings"
	"testing"
	"time"
)

// TestLongWaitNamesTheQueuesCause: the longest wait's releaser is a waiter
// that took the lock just before it (a queue); the finding also names the
// critical section most of the site's waiting is behind, and only then.
func TestLongWaitNamesTheQueuesCause(t *testing.T) {
	get := Frame{Func: "main.(*Cache).Get", File: "/src/main.go", Line: 54}
	refresh := Holder{Op: "Mutex.Unlock", Func: "main.(*Cache).refreshHoldingLock", File: "/src/main.go", Line: 72, Share: 0.94, Wait: 19 * time.Second}
	reader := Holder{Op: "Mutex.Unlock", Func: get.Func, File: get.File, Line: get.Line, Share: 0.06, Wait: time.Second}
	site := Site{Kind: "Mutex.Lock", Func: "main.(*Cache).Get", File: "/src/main.go", Line: 51}
	wait := Wait{Kind: "Mutex.Lock", Site: siteOf(site), Goroutine: 70, Duration: 44 * time.Millisecond,
		Unblocker: 69, UnblockerStack: []Frame{get}, UnblockerAt: &get}
	for _, tt := range []struct {
		name    string
		holders []Holder
		want    string // in the summary; "" for no cause named
	}{
		{"released by a reader, kept by the refresher", []Holder{refresh, reader}, "94% of the waiting at that site is behind main.(*Cache).refreshHoldingLock (main.go:72)"},
		{"released by the section most of it is behind", []Holder{{Op: "Mutex.Unlock", Func: get.Func, File: get.File, Line: get.Line, Share: 0.9}}, ""},
		{"no section has most of it", []Holder{{Op: "Mutex.Unlock", Func: refresh.Func, Share: 0.4}, {Op: "Mutex.Unlock", Func: get.Func, Share: 0.35}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := site
			s.Holders = tt.holders
			rep := &Report{Sites: []Site{s}, Waits: []Wait{wait}}
			fs := longWaitFindings(rep)
			if len(fs) != 1 {
				t.Fatalf("findings = %+v, want one", fs)
			}
			sum := fs[0].Summary
			if !strings.Contains(sum, "released by goroutine 69 in main.(*Cache).Get") {
				t.Errorf("summary = %q, want the releaser", sum)
			}
			if tt.want != "" && !strings.Contains(sum, tt.want) {
				t.Errorf("summary = %q, want %q", sum, tt.want)
			}
			if tt.want == "" && strings.Contains(sum, "is behind") {
				t.Errorf("summary = %q, want no cause named", sum)
			}
		})
	}
}

// TestHotLockAlone: a lock with nearly all of the window's lock wait is a
// hot-lock finding even with no other contended lock of note, if its
// waiters wait for a real part of the window and nothing else is said of
// it.
func TestHotLockAlone(t *testing.T) {
	counter := Site{Kind: "Mutex.Lock", Func: "main.countHit", File: "/src/main.go", Line: 40, Waiters: 32, Total: 10400 * time.Millisecond,
		Holders: []Holder{{Op: "Mutex.Unlock", Func: "main.countHit", File: "/src/main.go", Line: 47, Share: 0.994}}}
	other := Site{Kind: "Mutex.Lock", Func: "context.removeChild", File: "context.go", Line: 600, Waiters: 32, Total: 38 * time.Millisecond}
	for _, tt := range []struct {
		name     string
		sites    []Site
		window   time.Duration
		findings []Finding
		want     bool
	}{
		{"a counter's lock beside a context's", []Site{counter, other}, 12400 * time.Millisecond, nil, true},
		{"a counter's lock alone", []Site{counter}, 12400 * time.Millisecond, nil, true},
		{"already a finding about it", []Site{counter}, 12400 * time.Millisecond, []Finding{{Kind: "saturated-lock", Site: siteOf(counter)}}, false},
		{"waits for a sliver of the window", []Site{counter}, 1000 * time.Second, nil, false},
		{"one waiter", []Site{{Kind: "Mutex.Lock", Func: "main.once", Waiters: 1, Total: 5 * time.Second}}, 10 * time.Second, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var total time.Duration
			for _, s := range tt.sites {
				total += s.Total
			}
			rep := &Report{Sites: tt.sites, LockWait: total, SitesTotal: len(tt.sites), Findings: tt.findings,
				Window: &Window{Duration: tt.window}}
			fs := hotLockFindings(rep)
			if got := len(fs) == 1; got != tt.want {
				t.Fatalf("findings = %+v, want a hot-lock finding: %v", fs, tt.want)
			}
			if tt.want && !strings.Contains(fs[0].Summary, "main.countHit (main.go:40)") {
				t.Errorf("summary = %q, want the counter's site", fs[0].Summary)
			}
		})
	}
}

// TestSliverSiteHasNoFinding: a lock site with under 1% of the window's
// lock wait stays in the table without a finding of its own, whatever its
// holder did; with a fair share the same site has one.
func TestSliverSiteHasNoFinding(t *testing.T) {
	hot := Site{Kind: "Mutex.Lock", Func: "main.countHit", File: "/src/main.go", Line: 40, Waiters: 32, Total: 18800 * time.Millisecond,
		Holders: []Holder{{Op: "Mutex.Unlock", Func: "main.countHit", File: "/src/main.go", Line: 47, Share: 1, Wait: 18800 * time.Millisecond}}}
	small := Site{Kind: "Mutex.Lock", Func: "net/http.(*Transport).tryPutIdleConn", File: "transport.go", Line: 1087, Waiters: 32, Total: 8570 * time.Microsecond,
		Holders: []Holder{{Op: "Mutex.Unlock", Func: "net/http.(*Transport).tryPutIdleConn", File: "transport.go", Line: 1169, Share: 0.54, Wait: 4660 * time.Microsecond,
			BlockedInside: &BlockedInside{Reason: "sync (other)", Via: "net/http", Times: 1, Blocked: 512 * time.Microsecond, Wait: 4660 * time.Microsecond, MaxQueued: 7}}}}
	for _, tt := range []struct {
		name  string
		share float64
		want  bool
	}{
		{"a sliver beside a hot lock", 0.0005, false},
		{"a fair share", 0.3, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := small
			s.Share, s.Last = tt.share, 10*time.Second // contended until the window's end
			h := hot
			h.Share, h.Last = 1-tt.share, 10*time.Second
			rep := &Report{Sites: []Site{h, s}, Window: &Window{Duration: 10 * time.Second}}
			cs, _ := lockSiteCandidates(rep, nil)
			got := false
			for _, c := range cs {
				if c.finding.Kind == "held-across-blocking" {
					got = true
				}
			}
			if got != tt.want {
				t.Errorf("a held-across-blocking finding: %v, want %v", got, tt.want)
			}
		})
	}
}
