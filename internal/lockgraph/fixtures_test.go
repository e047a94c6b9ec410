package lockgraph

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// The fixtures are internal/gdump's: real dumps of the scenarios, written
// by internal/gdump/internal/gendumps for each Go version.
const fixtures = "../gdump/testdata"

func readDump(t *testing.T, name string) *gdump.Dump {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := gdump.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

type fixtureTruth struct {
	Roles map[string]int64  `json:"roles"`
	Addrs map[string]string `json:"addrs"`
}

func fixtureVersions(t *testing.T) map[string]map[string]fixtureTruth {
	files, _ := filepath.Glob(filepath.Join(fixtures, "scenarios.go*.json"))
	if len(files) < 2 {
		t.Fatalf("want scenario fixtures of two Go versions, have %v", files)
	}
	out := make(map[string]map[string]fixtureTruth)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]fixtureTruth
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "scenarios."), ".json")
		out[v] = m
	}
	return out
}

// Holders, deadlocks and chains in the debug=2 dumps of every scenario, as
// captured with Go 1.26 and 1.27.
func TestFixtures(t *testing.T) {
	for v, scen := range fixtureVersions(t) {
		var total score
		for name, tr := range scen {
			t.Run(v+"/"+name, func(t *testing.T) {
				r := Analyze(readDump(t, name+"."+v+".debug2.txt"), Options{})
				total.add(check(t, name, r, tr.Roles))
			})
		}
		t.Logf("%s fixtures: %d/%d checks right", v, total.ok, total.total)
		if len(scen) != len(wants) {
			t.Errorf("%s: %d scenarios in the fixtures, %d expected", v, len(scen), len(wants))
		}
	}
}

// The lock identities the fixtures must show: the address where the dump
// has it, and locks at one call site told apart.
func TestFixtureIdentity(t *testing.T) {
	for v, scen := range fixtureVersions(t) {
		addr := func(name, a string) uint64 {
			var x uint64
			for _, c := range strings.TrimPrefix(scen[name].Addrs[a], "0x") {
				x = x<<4 | uint64(strings.IndexRune("0123456789abcdef", c))
			}
			return x
		}
		r := Analyze(readDump(t, "mutex-sleep."+v+".debug2.txt"), Options{})
		if l := r.Locks[0]; l.Identity != ByAddress || l.Addr != addr("mutex-sleep", "lock") || l.Object != addr("mutex-sleep", "object") || l.Type != "*scenario.Store" {
			t.Errorf("%s mutex-sleep: lock %s (identity %d)", v, l, l.Identity)
		}
		r = Analyze(readDump(t, "same-site."+v+".debug2.txt"), Options{})
		if len(r.Locks) != 2 || r.Locks[0].Addr == r.Locks[1].Addr {
			t.Errorf("%s same-site: locks %v", v, r.Locks)
		}
		for _, l := range r.Locks {
			if l.Addr != addr("same-site", "lock0") && l.Addr != addr("same-site", "lock1") {
				t.Errorf("%s same-site: lock %s", v, l)
			}
		}
		r = Analyze(readDump(t, "embedded."+v+".debug2.txt"), Options{})
		if l := r.Locks[0]; l.Addr != addr("embedded", "lock") || l.Object != addr("embedded", "outer") || l.Addr-l.Object != 0x30 {
			t.Errorf("%s embedded: lock %s", v, l)
		}
		// The readers show only their receiver; the writer behind the
		// writer gives the offset: one lock, with its address.
		r = Analyze(readDump(t, "rwmutex-writer-io."+v+".debug2.txt"), Options{})
		if len(r.Locks) != 1 || r.Locks[0].Addr != addr("rwmutex-writer-io", "lock") || r.Locks[0].Kind != RWMutex {
			t.Errorf("%s rwmutex-writer-io: locks %v", v, r.Locks)
		}
		r = Analyze(readDump(t, "deadlock2."+v+".debug2.txt"), Options{})
		for _, l := range r.Locks {
			if l.Addr != addr("deadlock2", "a.mu") && l.Addr != addr("deadlock2", "b.mu") {
				t.Errorf("%s deadlock2: lock %s", v, l)
			}
		}
	}
}

// Go 1.27's goroutineleak profile marks the deadlocked goroutines.
func TestLeakedDeadlock(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "leak.go*.debug2.txt"))
	if len(files) == 0 {
		t.Fatal("no goroutineleak fixture")
	}
	for _, f := range files {
		r := Analyze(readDump(t, filepath.Base(f)), Options{})
		if len(r.Deadlocks) != 1 || r.Deadlocks[0].Confidence != High || !strings.Contains(r.Deadlocks[0].String(), "leak detector") {
			t.Errorf("%s: deadlocks %v", f, r.Deadlocks)
		}
	}
}

// debug=1 profiles: no ids, no arguments; the holder's function is still
// named, with low confidence, and a chain is followed function by
// function. No deadlock can be claimed.
func TestFixturesAggregated(t *testing.T) {
	for v := range fixtureVersions(t) {
		cases := []struct {
			scenario, site, holder string
		}{
			{"mutex-sleep", "(*Store).Get", "(*Store).flush"},
			{"running-holder", "(*Stats).Add", "(*Stats).recompute"},
			{"syscall-holder", "(*Journal).Write", "(*Journal).sync"},
			{"lost-receiver", "(*Cache).Get", "(*Cache).migrate"},
			{"rwmutex-writer-io", "(*Registry).Lookup", "(*Registry).reload"},
			{"embedded", "(*Inner).bump", ""}, // Outer's method: not the waiters' type
		}
		for _, c := range cases {
			r := Analyze(readDump(t, c.scenario+"."+v+".debug1.txt"), Options{})
			if r.Format != gdump.Aggregated || len(r.Deadlocks) != 0 {
				t.Errorf("%s %s: format %v, deadlocks %v", v, c.scenario, r.Format, r.Deadlocks)
			}
			l := lockAt(r, c.site)
			if l == nil {
				t.Errorf("%s %s: no lock at %s", v, c.scenario, c.site)
				continue
			}
			if l.Identity != BySite {
				t.Errorf("%s %s: identity %d", v, c.scenario, l.Identity)
			}
			if c.holder == "" {
				if len(l.Holders) != 0 || !strings.Contains(l.NoHolder, "debug=1") {
					t.Errorf("%s %s: holders %v, no-holder %q", v, c.scenario, l.Holders, l.NoHolder)
				}
				continue
			}
			h := funcHolder(l, c.holder)
			if h == nil || h.Confidence != Low || h.Evidence != ByType {
				t.Errorf("%s %s: holder in %s: %v (holders %v)", v, c.scenario, c.holder, h, l.Holders)
			}
		}
		r := Analyze(readDump(t, "chain."+v+".debug1.txt"), Options{})
		found := false
		for _, c := range r.Chains {
			if len(c.Steps) == 2 && funcIn(c.Steps[0].G, "(*Queue).drain") && funcIn(c.Steps[1].G, "(*DB).compact") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s chain debug=1: chains %v", v, r.Chains)
		}
	}
}

func funcIn(g *gdump.Goroutine, suffix string) bool {
	for _, f := range g.Frames {
		if strings.HasSuffix(f.Func, suffix) {
			return true
		}
	}
	return false
}

// The frame vocabulary of older runtimes: dumps of Go 1.23 (sync.* lock
// frames) and Go 1.24 (internal/sync.*) from testdata/oldgo.
func TestOlderGo(t *testing.T) {
	for _, v := range []string{"go1.23", "go1.24"} {
		f, err := os.Open(filepath.Join("testdata", "oldgo."+v+".debug2.txt"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := gdump.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := Analyze(d, Options{})
		if len(r.Deadlocks) != 1 || len(r.Deadlocks[0].Steps) != 2 || !funcIn(r.Deadlocks[0].Steps[0].G, "main.transfer") {
			t.Errorf("%s: deadlocks %v", v, r.Deadlocks)
		}
		kinds := make(map[WaitKind]int)
		for _, l := range r.Locks {
			for _, w := range l.Waiters {
				kinds[w.Kind]++
			}
		}
		if kinds[WaitLock] != 4 || kinds[WaitRLock] != 3 || kinds[WaitWriteBehindWriter] != 1 || kinds[WaitWriteBehindReaders] != 1 {
			t.Errorf("%s: wait kinds %v", v, kinds)
		}
		if l := lockAt(r, "main.(*Cache).Get"); l == nil || len(l.Holders) == 0 || !funcIn(l.Holders[0].G, "main.(*Cache).migrate") {
			t.Errorf("%s: Cache.Get's lock: %v", v, l)
		}
	}
}
