package gdump

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *Dump {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func byID(d *Dump) map[int64]*Goroutine {
	m := make(map[int64]*Goroutine)
	for _, g := range d.Goroutines {
		m[g.ID] = g
	}
	return m
}

// goVersions are the Go versions with fixtures in testdata.
func goVersions(t *testing.T) []string {
	files, _ := filepath.Glob("testdata/scenarios.go*.json")
	var vs []string
	for _, f := range files {
		vs = append(vs, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "scenarios."), ".json"))
	}
	if len(vs) < 2 {
		t.Fatalf("want fixtures of at least two Go versions, have %v", vs)
	}
	return vs
}

// Every fixture parses without a single error, and what is parsed is
// consistent.
func TestParseFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) < 40 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			d := parseFile(t, name)
			wantFormat := Traceback
			if strings.Contains(name, ".debug1.") {
				wantFormat = Aggregated
			}
			if d.Format != wantFormat {
				t.Errorf("format %v, want %v", d.Format, wantFormat)
			}
			sum := 0
			for _, g := range d.Goroutines {
				sum += g.Count
				if wantFormat == Traceback && (g.ID < 0 || g.ID == 0 && g.State != "idle" || g.State == "" || g.Count != 1) {
					t.Errorf("line %d: id %d state %q count %d", g.Line, g.ID, g.State, g.Count)
				}
				if wantFormat == Aggregated && (g.ID != 0 || g.Count < 1) {
					t.Errorf("line %d: id %d count %d", g.Line, g.ID, g.Count)
				}
				if len(g.Frames) == 0 && !g.StackUnavailable {
					t.Errorf("goroutine %d at line %d has no frames", g.ID, g.Line)
				}
				for _, f := range g.Frames {
					if f.Func == "" && wantFormat == Traceback || f.File == "" || f.Line <= 0 {
						t.Errorf("goroutine %d at line %d: frame %+v", g.ID, g.Line, f)
					}
				}
			}
			if d.Total != sum {
				t.Errorf("Total %d, sum of counts %d", d.Total, sum)
			}
		})
	}
}

type truth struct {
	Roles map[string]int64  `json:"roles"`
	Addrs map[string]string `json:"addrs"`
}

func loadTruth(t *testing.T, v string) map[string]truth {
	b, err := os.ReadFile(filepath.Join("testdata", "scenarios."+v+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]truth
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func addrOf(t *testing.T, tr truth, name string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(tr.Addrs[name], "0x"), 16, 64)
	if err != nil {
		t.Fatalf("address %q: %v", name, err)
	}
	return v
}

// The goroutine ids the scenario goroutines read from their own stacks are
// in the dump, in the state they were put in; a Mutex waiter's lockSlow
// frame has the lock's address, accurately.
func TestScenarioDumps(t *testing.T) {
	for _, v := range goVersions(t) {
		for name, tr := range loadTruth(t, v) {
			t.Run(v+"/"+name, func(t *testing.T) {
				d := parseFile(t, name+"."+v+".debug2.txt")
				gs := byID(d)
				for role, id := range tr.Roles {
					g := gs[id]
					if g == nil {
						t.Errorf("role %s: goroutine %d not in the dump", role, id)
						continue
					}
					if g.CreatorID == 0 || g.CreatedBy.Func == "" {
						t.Errorf("role %s: no creator: %+v", role, g.CreatedBy)
					}
				}
				if name == "mutex-sleep" {
					lock := addrOf(t, tr, "lock")
					for _, role := range []string{"waiter1", "waiter2", "waiter3"} {
						g := gs[tr.Roles[role]]
						if g.State != "sync.Mutex.Lock" {
							t.Errorf("%s: state %q", role, g.State)
						}
						found := false
						for _, f := range g.Frames {
							if strings.HasSuffix(f.Func, "(*Mutex).lockSlow") {
								a := f.Args[0]
								found = a.Value == lock && !a.Inaccurate && a.Kind == Word
							}
						}
						if !found {
							t.Errorf("%s: no lockSlow frame with the lock's address %#x", role, lock)
						}
					}
					if g := gs[tr.Roles["holder"]]; g.State != "sleep" {
						t.Errorf("holder: state %q", g.State)
					}
				}
			})
		}
	}
}

// Each debug=1 fixture covers the same goroutines as its debug=2 sibling.
func TestAggregatedCounts(t *testing.T) {
	for _, v := range goVersions(t) {
		for name := range loadTruth(t, v) {
			d1 := parseFile(t, name+"."+v+".debug1.txt")
			d2 := parseFile(t, name+"."+v+".debug2.txt")
			if d1.Total != len(d2.Goroutines) {
				t.Errorf("%s %s: debug=1 total %d, debug=2 has %d goroutines", v, name, d1.Total, len(d2.Goroutines))
			}
		}
	}
}

var wantLabels = map[string]string{"handler": "/api/orders", "tenant id": `acme "eu"`}

func TestLabels(t *testing.T) {
	for _, v := range goVersions(t) {
		d := parseFile(t, "formats."+v+".debug2.txt")
		n := 0
		for _, g := range d.Goroutines {
			if g.Labels == nil {
				continue
			}
			n++
			want := wantLabels
			if _, ok := g.Labels["worker"]; ok {
				want = map[string]string{"handler": "/api/orders", "tenant id": `acme "eu"`, "worker": "7"}
			}
			if !reflect.DeepEqual(g.Labels, want) {
				t.Errorf("%s goroutine %d labels %q", v, g.ID, g.Labels)
			}
		}
		if n < 10 {
			t.Errorf("%s: only %d goroutines with labels", v, n)
		}
		for _, g := range parseFile(t, "formats."+v+".nolabels.debug2.txt").Goroutines {
			if g.Labels != nil {
				t.Errorf("%s nolabels: goroutine %d has labels %q", v, g.ID, g.Labels)
			}
		}
		n = 0
		for _, g := range parseFile(t, "formats."+v+".debug1.txt").Goroutines {
			if g.Labels != nil {
				n++
				if g.Labels["handler"] != "/api/orders" || g.Labels["tenant id"] != `acme "eu"` {
					t.Errorf("%s debug=1 labels %q", v, g.Labels)
				}
			}
		}
		if n < 5 {
			t.Errorf("%s debug=1: only %d stacks with labels", v, n)
		}
	}
}

func TestFormatsShapes(t *testing.T) {
	for _, v := range goVersions(t) {
		d := parseFile(t, "formats."+v+".debug2.txt")
		var deep, many, structs, generic, locked, nilChan, noCases, io bool
		for _, g := range d.Goroutines {
			if g.FramesElided > 0 {
				deep = true
			}
			if g.LockedToThread {
				locked = true
			}
			switch g.State {
			case "chan receive (nil chan)":
				nilChan = true
			case "select (no cases)":
				noCases = true
			case "IO wait":
				io = true
			}
			for _, f := range g.Frames {
				switch f.Func {
				case "main.manyArgs":
					many = len(f.Args) == 11 && f.Args[10].Kind == Elided && f.Args[9].Value == 10
				case "main.structArg":
					// {0x0?, 0x0?, {0x5f51b4?, 0x0?}}, {0x3, 0x4}, {0x5f51cc?, 0x2, 0x0?}, 0x0?
					structs = len(f.Args) == 10 && f.Args[4].Param == 1 && f.Args[4].Value == 3 && f.Args[9].Param == 3
				case "main.genericWait[...]":
					generic = true
				}
			}
		}
		for what, ok := range map[string]bool{"elided frames": deep, "elided args": many, "struct args": structs,
			"generic name": generic, "locked to thread": locked, "nil chan": nilChan, "select no cases": noCases, "IO wait": io} {
			if !ok {
				t.Errorf("%s: no goroutine shows %s", v, what)
			}
		}
	}
}

func TestCrashDumps(t *testing.T) {
	for _, v := range goVersions(t) {
		t.Run(v, func(t *testing.T) {
			d := parseFile(t, "sigquit."+v+".txt")
			waiters := 0
			for _, g := range d.Goroutines {
				if g.State == "sync.Mutex.Lock" {
					waiters++
				}
			}
			if waiters != 3 {
				t.Errorf("sigquit: %d Mutex waiters, want 3", waiters)
			}
			d = parseFile(t, "system."+v+".txt")
			pcs := 0
			for _, g := range d.Goroutines {
				for _, f := range g.Frames {
					if f.PC != 0 {
						pcs++
					}
				}
			}
			if pcs == 0 {
				t.Error("system: no frame has a pc=")
			}
			d = parseFile(t, "panic."+v+".txt")
			if g := d.Goroutines[0]; g.State != "running" || g.Frames[0].Func != "main.panicker" {
				t.Errorf("panic: first goroutine %s in %s", g.Header(), g.Frames[0].Func)
			}
			d = parseFile(t, "fatal."+v+".txt")
			if len(d.Goroutines) != 2 || d.Goroutines[0].ID != 1 || d.Goroutines[0].State != "sync.Mutex.Lock" {
				t.Errorf("fatal: %d goroutines, first %s", len(d.Goroutines), d.Goroutines[0].Header())
			}
			d = parseFile(t, "ancestors."+v+".txt")
			anc := 0
			for _, g := range d.Goroutines {
				for _, a := range g.Ancestors {
					if a.ID == 1 && len(a.Frames) > 0 {
						anc++
					}
				}
			}
			if anc == 0 {
				t.Error("ancestors: no ancestor stacks")
			}
		})
	}
}

func TestMinutes(t *testing.T) {
	files, _ := filepath.Glob("testdata/minutes.*.debug2.txt")
	if len(files) == 0 {
		t.Skip("no minutes fixture")
	}
	for _, f := range files {
		d := parseFile(t, filepath.Base(f))
		n := 0
		for _, g := range d.Goroutines {
			if g.State == "sync.Mutex.Lock" && g.WaitMinutes >= 1 {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%s: %d Mutex waiters with minutes, want 3", f, n)
		}
	}
}

func TestLeakProfile(t *testing.T) {
	files, _ := filepath.Glob("testdata/leak.*.debug2.txt")
	if len(files) == 0 {
		t.Fatal("no goroutineleak fixture")
	}
	for _, f := range files {
		n := 0
		for _, g := range parseFile(t, filepath.Base(f)).Goroutines {
			if g.Leaked {
				n++
				if g.State != "sync.Mutex.Lock" {
					t.Errorf("%s: leaked goroutine %d in %q", f, g.ID, g.State)
				}
			}
		}
		if n != 2 {
			t.Errorf("%s: %d leaked goroutines, want the 2 deadlocked", f, n)
		}
	}
}

func TestHeader(t *testing.T) {
	tests := []struct {
		line string
		want Goroutine
	}{
		{"goroutine 7 [sync.Mutex.Lock]:", Goroutine{ID: 7, State: "sync.Mutex.Lock"}},
		{"goroutine 12 [chan receive, 3 minutes, locked to thread]:", Goroutine{ID: 12, State: "chan receive", WaitMinutes: 3, LockedToThread: true}},
		{"goroutine 5 gp=0xc000007c00 m=nil [select (no cases)]:", Goroutine{ID: 5, State: "select (no cases)"}},
		{"goroutine 1 gp=0x1 m=0 mp=0x2 [running]:", Goroutine{ID: 1, State: "running"}},
		{"goroutine 9 [sync.Mutex.Lock (leaked), 12 minutes]:", Goroutine{ID: 9, State: "sync.Mutex.Lock", Leaked: true, WaitMinutes: 12}},
		{"goroutine 9 [sync.RWMutex.RLock (scan)]:", Goroutine{ID: 9, State: "sync.RWMutex.RLock"}},
		{"goroutine 9 [chan receive (durable), synctest bubble 4]:", Goroutine{ID: 9, State: "chan receive (durable)", Bubble: 4}},
		{"goroutine 9 [select (durable)]:", Goroutine{ID: 9, State: "select (durable)"}},
		// Go 1.26, GODEBUG=tracebacklabels=1
		{`goroutine 8 [select, 2 minutes labels:{"a": "b", "k y": "v\"}"}]:`, Goroutine{ID: 8, State: "select", WaitMinutes: 2, Labels: map[string]string{"a": "b", "k y": `v"}`}}},
		// Go 1.27
		{`goroutine 8 [select] {a: b, "k y": "v]\u00e9\xff"}:`, Goroutine{ID: 8, State: "select", Labels: map[string]string{"a": "b", "k y": "v]é\xff"}}},
		{`goroutine 8 [IO wait, locked to thread] {path/x.y_z: 1}:`, Goroutine{ID: 8, State: "IO wait", LockedToThread: true, Labels: map[string]string{"path/x.y_z": "1"}}},
	}
	for _, tt := range tests {
		d, err := Parse(strings.NewReader(tt.line + "\nmain.main()\n\t/x/main.go:3 +0x1d\n"))
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		g := *d.Goroutines[0]
		g.Frames, g.Line, g.Count = nil, 0, 0
		if !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.line, g, tt.want)
		}
	}
}

func TestArgs(t *testing.T) {
	w := func(v uint64, p int) Arg { return Arg{Value: v, Param: p} }
	tests := []struct {
		in   string
		want []Arg
		ok   bool
	}{
		{"", []Arg{}, true},
		{"0x1", []Arg{w(1, 0)}, true},
		{"0x3486bd98e360, 0x0?, 0x1", []Arg{w(0x3486bd98e360, 0), {Param: 1, Inaccurate: true}, w(1, 2)}, true},
		{"{0x1, {0x2, 0x3?}}, 0x4, ...", []Arg{w(1, 0), w(2, 0), {Value: 3, Param: 0, Inaccurate: true}, w(4, 1), {Param: 2, Kind: Elided}}, true},
		{"{}", []Arg{}, true},
		{"_, 0xffffffffffffffff", []Arg{{Kind: Unknown}, w(1<<64-1, 1)}, true},
		{"0x1ffffffffffffffff", []Arg{}, false},
		{"0x1, zz", []Arg{w(1, 0)}, false},
		{"{0x1", []Arg{w(1, 0)}, false},
		{"0x1}", []Arg{w(1, 0)}, false},
	}
	for _, tt := range tests {
		got, ok := parseArgs([]byte(tt.in))
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFrameLines(t *testing.T) {
	in := `goroutine 3 [running]:
main.(*T).m(...)
	/a b/c:d/x.go:12
runtime.goexit({})
	/usr/local/go/src/runtime/asm_amd64.s:1771 +0x1 fp=0x1 sp=0x2 pc=0x48e561
created by main.main in goroutine 1
	C:/src/main.go:7 +0x25
`
	d, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	g := d.Goroutines[0]
	want := []Frame{
		{Func: "main.(*T).m", File: "/a b/c:d/x.go", Line: 12, Inlined: true},
		{Func: "runtime.goexit", File: "/usr/local/go/src/runtime/asm_amd64.s", Line: 1771, Offset: 1, PC: 0x48e561},
	}
	if !reflect.DeepEqual(g.Frames, want) {
		t.Errorf("frames\n got %+v\nwant %+v", g.Frames, want)
	}
	if !reflect.DeepEqual(g.CreatedBy, Frame{Func: "main.main", File: "C:/src/main.go", Line: 7, Offset: 0x25}) || g.CreatorID != 1 {
		t.Errorf("created by %+v in %d", g.CreatedBy, g.CreatorID)
	}
}

// Problems are reported with their line, and reading goes on.
func TestSyntaxErrors(t *testing.T) {
	in := `goroutine 3 [sleep]:
time.Sleep(0x1)
	/usr/local/go/src/runtime/time.go:363 +0x165
main.f(0x1, zz)
	/x/main.go:12 +0x1
main.g(0x1)
goroutine 4 [running]:
main.h()
	/x/main.go:notanumber

goroutine 5 [sleep]:
main.k()
	/x/main.go:3 +0x1
`
	d, err := Parse(strings.NewReader(in))
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a *SyntaxError", err)
	}
	msg := err.Error()
	for _, want := range []string{"gdump: line 4: malformed arguments of main.f", "gdump: line 7: frame main.g has no file:line line", "gdump: line 9: malformed file:line line"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if len(d.Goroutines) != 3 || len(d.Goroutines[0].Frames) != 3 || d.Goroutines[2].Frames[0].Func != "main.k" {
		t.Errorf("goroutines %d, frames of the first %d", len(d.Goroutines), len(d.Goroutines[0].Frames))
	}
}

// A dump cut anywhere gives the goroutines before the cut, and an error
// for a record cut in the middle; never a panic.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"mutex-sleep.go1.26.debug2.txt", "chain.go1.27.debug1.txt", "sigquit.go1.27.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		full, _ := Parse(bytes.NewReader(b))
		for cut := 0; cut < len(b); cut += 7 {
			d, err := Parse(bytes.NewReader(b[:cut]))
			if d == nil {
				t.Fatalf("%s cut at %d: nil dump", name, cut)
			}
			if len(d.Goroutines) > len(full.Goroutines) {
				t.Fatalf("%s cut at %d: %d goroutines, more than the whole", name, cut, len(d.Goroutines))
			}
			if len(d.Goroutines) == 0 && err == nil {
				t.Fatalf("%s cut at %d: no goroutines and no error", name, cut)
			}
			// A cut inside a frame's function line loses that line's
			// pair: the error must say so, with its line.
			if err != nil && !errors.Is(err, ErrNoGoroutines) && !strings.Contains(err.Error(), "line ") {
				t.Fatalf("%s cut at %d: error without a line: %v", name, cut, err)
			}
		}
	}
}

func TestNotADump(t *testing.T) {
	for _, in := range []string{"", "hello\nworld\n", "\x00\x01\x02", "goroutine profile: nonsense\n", "goroutine x [running]:\n"} {
		d, err := Parse(strings.NewReader(in))
		if d == nil || !errors.Is(err, ErrNoGoroutines) {
			t.Errorf("Parse(%q) = %v, %v; want ErrNoGoroutines", in, d, err)
		}
	}
}

func TestLongLine(t *testing.T) {
	in := "goroutine 1 [running]:\nmain.f(" + strings.Repeat("0x1, ", 300000) + "0x1)\n\t/x.go:1\n\ngoroutine 2 [sleep]:\nmain.g()\n\t/x.go:2 +0x1\n"
	d, err := Parse(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 2: line longer than") {
		t.Errorf("error %v, want one about line 2 being too long", err)
	}
	if len(d.Goroutines) != 2 || d.Goroutines[1].Frames[0].Func != "main.g" {
		t.Errorf("goroutines after the long line not read: %d", len(d.Goroutines))
	}
}

func TestManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("goroutine 1 [running]:\n")
	for i := range 30 {
		fmt.Fprintf(&b, "\tfile%d.go:1\n", i)
	}
	_, err := Parse(strings.NewReader(b.String()))
	if err == nil || !strings.Contains(err.Error(), "21 more lines could not be read") {
		t.Errorf("error %v", err)
	}
}
