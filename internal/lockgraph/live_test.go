package lockgraph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/lockgraph/scenario"
)

// childEnv names the scenario a re-executed test binary runs (see
// runChild).
const childEnv = "LOCKGRAPH_TEST_SCENARIO"

const endOfDump = "--- end of dump ---"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name))
	}
	goleak.VerifyTestMain(m)
}

// runChild starts a scenario that cannot be undone (a deadlock), prints
// the goroutine ids and addresses as one JSON line, then the debug=2 dump,
// then waits to be killed.
func runChild(name string) int {
	r, err := scenario.Start(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(r.Roles())
	w := bufio.NewWriter(os.Stdout)
	w.Write(b)
	w.WriteString("\n")
	w.Write(scenario.AllStacks())
	w.WriteString("\n" + endOfDump + "\n")
	w.Flush()
	// A sleeping main keeps the runtime's deadlock detector quiet until
	// the test kills the process.
	time.Sleep(time.Minute)
	return 0
}

// inChild runs a scenario in a subprocess and returns its roles and dump;
// the subprocess is killed before it returns.
func inChild(t *testing.T, name string) (map[string]int64, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	br := bufio.NewReader(out)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatalf("child %s: %v: %s", name, err, stderr.Bytes())
	}
	var roles map[string]int64
	if err := json.Unmarshal(line, &roles); err != nil {
		t.Fatalf("child %s: %v: %q", name, err, line)
	}
	var dump bytes.Buffer
	for {
		l, err := br.ReadBytes('\n')
		if string(bytes.TrimSpace(l)) == endOfDump {
			break
		}
		dump.Write(l)
		if err != nil {
			t.Fatalf("child %s: dump cut: %v: %s", name, err, stderr.Bytes())
		}
	}
	return roles, dump.Bytes()
}

// Every scenario, live: the incident is built in this process (or, for
// those that cannot be undone, in a child process that is then killed),
// a real debug=2 dump is taken, and the holders, deadlocks and chains
// found must be the goroutines the scenario built, identified by the ids
// they read from their own stacks.
func TestLive(t *testing.T) {
	var total score
	for _, name := range scenario.Names() {
		t.Run(name, func(t *testing.T) {
			var roles map[string]int64
			var dump []byte
			if scenario.IsReleasable(name) {
				r, err := scenario.Start(name)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Release()
				roles, dump = r.Roles(), scenario.AllStacks()
			} else {
				roles, dump = inChild(t, name)
			}
			d, err := gdump.Parse(bytes.NewReader(dump))
			if err != nil {
				t.Fatal(err)
			}
			res := Analyze(d, Options{})
			sc := check(t, name, res, roles)
			total.add(sc)
			if t.Failed() {
				t.Logf("dump:\n%s", dump)
			}
		})
	}
	t.Logf("live: %d/%d checks right", total.ok, total.total)
}

// The same through runtime/pprof's goroutine profile at debug=2, and what
// debug=1 still tells.
func TestLivePprof(t *testing.T) {
	r, err := scenario.Start("chain")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var b2, b1 bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b2, 2)
	pprof.Lookup("goroutine").WriteTo(&b1, 1)
	d, err := gdump.Parse(&b2)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "chain", Analyze(d, Options{}), r.Roles())

	d, err = gdump.Parse(&b1)
	if err != nil {
		t.Fatal(err)
	}
	res := Analyze(d, Options{})
	l := lockAt(res, "(*Queue).push")
	if l == nil || funcHolder(l, "(*Queue).drain") == nil {
		t.Fatalf("debug=1: push's lock %v", l)
	}
	if h := funcHolder(l, "(*Queue).drain"); h.Confidence != Low || h.Waits == nil {
		t.Errorf("debug=1: drain holder %v (waits %v)", h, h.Waits)
	}
}

// A goroutine that only keeps the locked object is as likely a holder as
// the real one, for the dump; the trace's word (a hint) puts the real one
// first.
func TestLiveBystanderHint(t *testing.T) {
	r, err := scenario.Start("bystander")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	d, err := gdump.Parse(bytes.NewReader(scenario.AllStacks()))
	if err != nil {
		t.Fatal(err)
	}
	res := Analyze(d, Options{Hints: []Hint{{Holder: "github.com/lockdiag/lockdiag/internal/lockgraph/scenario.(*Feed).refresh", Source: "the trace"}}})
	l, _ := findWaiter(res, r.G("waiter1"))
	if l == nil || len(l.Holders) != 2 || l.Holders[0].G.ID != r.G("holder") || l.Holders[1].G.ID != r.G("bystander") {
		t.Fatalf("holders %v", l.Holders)
	}
}

// A hint names the holder when nothing in the dump ties it to the lock.
func TestHints(t *testing.T) {
	dump := `goroutine 5 [sync.RWMutex.RLock]:
sync.runtime_SemacquireRWMutexR(0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/sema.go:100 +0x25
sync.(*RWMutex).RLock(...)
	/usr/local/go/src/sync/rwmutex.go:74
main.(*Cache).Get(0xc000100000, {0x5f51bf, 0x1})
	/app/cache.go:40 +0x2c

goroutine 6 [IO wait]:
internal/poll.runtime_pollWait(0x7f22b323f400, 0x72)
	/usr/local/go/src/runtime/netpoll.go:351 +0x85
main.refreshAll()
	/app/refresh.go:12 +0x41
`
	d, err := gdump.Parse(strings.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	r := Analyze(d, Options{})
	if l := r.Locks[0]; len(l.Holders) != 0 || l.NoHolder == "" {
		t.Fatalf("without hints: holders %v", l.Holders)
	}
	for _, site := range []string{"main.(*Cache).Get", ""} {
		r = Analyze(d, Options{Hints: []Hint{{Site: site, Holder: "main.refreshAll", Source: "the trace"}}})
		l := r.Locks[0]
		if len(l.Holders) != 1 || l.Holders[0].G.ID != 6 || l.Holders[0].Evidence != ByHint || l.Holders[0].Confidence != Medium ||
			!strings.Contains(l.Holders[0].Reason, "the trace saw holding") {
			t.Errorf("hint for site %q: holders %v", site, l.Holders)
		}
	}
	r = Analyze(d, Options{Hints: []Hint{{Site: "main.other", Holder: "main.refreshAll"}}})
	if len(r.Locks[0].Holders) != 0 {
		t.Errorf("hint for another site used: %v", r.Locks[0].Holders)
	}
}

// Two goroutines have the waiters' object; the one in a hinted function
// is named first.
func TestHintRanks(t *testing.T) {
	dump := `goroutine 5 [sync.RWMutex.RLock]:
sync.runtime_SemacquireRWMutexR(0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/sema.go:100 +0x25
sync.(*RWMutex).RLock(...)
	/usr/local/go/src/sync/rwmutex.go:74
main.(*Cache).Get(0xc000100000, {0x5f51bf, 0x1})
	/app/cache.go:40 +0x2c

goroutine 6 [select]:
main.(*Cache).watch(0xc000100000, 0xc000200000)
	/app/cache.go:80 +0x41

goroutine 7 [sleep]:
time.Sleep(0x3b9aca00)
	/usr/local/go/src/runtime/time.go:363 +0x165
main.(*Cache).migrate(0xc000100000)
	/app/cache.go:60 +0x41
`
	d, err := gdump.Parse(strings.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	l := Analyze(d, Options{}).Locks[0]
	if len(l.Holders) != 2 || l.Holders[0].G.ID != 6 || l.Holders[0].Confidence != High || l.Holders[1].Confidence != High {
		t.Fatalf("without hints: %v", l.Holders)
	}
	l = Analyze(d, Options{Hints: []Hint{{Holder: "main.(*Cache).migrate", Source: "the mutex profile"}}}).Locks[0]
	if len(l.Holders) != 2 || l.Holders[0].G.ID != 7 || !strings.Contains(l.Holders[0].Reason, "the mutex profile saw") {
		t.Errorf("with a hint: %v", l.Holders)
	}
}

// A self-deadlock through plain functions: the caller passes the same
// pointer down, and the waiter's own call site has it too.
func TestSelfThroughFunctions(t *testing.T) {
	dump := `goroutine 5 [sync.Mutex.Lock]:
internal/sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/sema.go:95 +0x25
internal/sync.(*Mutex).lockSlow(0xc000100008)
	/usr/local/go/src/internal/sync/mutex.go:149 +0x15d
sync.(*Mutex).Lock(...)
	/usr/local/go/src/sync/mutex.go:46
main.helper(0xc000100000, 0x1)
	/app/x.go:20 +0x2c
main.process(0xc000100000)
	/app/x.go:12 +0x2c
`
	d, err := gdump.Parse(strings.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	r := Analyze(d, Options{})
	if len(r.Deadlocks) != 1 || len(r.Deadlocks[0].Steps) != 1 || r.Deadlocks[0].Confidence != High ||
		!strings.Contains(r.Deadlocks[0].String(), "main.process at x.go:12 has the same object") {
		t.Errorf("deadlocks %v", r.Deadlocks)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ fn, typ, name string }{
		{"main.(*Cache).Get", "main.(*Cache)", "*main.Cache"},
		{"github.com/a/b/store.(*Store[...]).Get", "github.com/a/b/store.(*Store[...])", "*store.Store[...]"},
		{"gopkg.in/yaml.v3.(*decoder).unmarshal", "gopkg.in/yaml.v3.(*decoder)", "*yaml.v3.decoder"},
		{"main.(*Cache).Get.func1", "", ""},
		{"main.(*Cache).Get-fm", "", ""},
		{"main.transfer", "", ""},
		{"main.T.Get", "", ""},
	}
	for _, tt := range tests {
		typ, ok := recvType(tt.fn)
		if typ != tt.typ || ok != (tt.typ != "") || typeName(typ) != tt.name {
			t.Errorf("recvType(%q) = %q, %v (%q); want %q (%q)", tt.fn, typ, ok, typeName(typ), tt.typ, tt.name)
		}
	}
}

// Garbage never makes Analyze panic.
func FuzzAnalyze(f *testing.F) {
	for _, name := range []string{"deadlock3.go1.26.debug2.txt", "rwmutex-writer-io.go1.27.debug2.txt", "chain.go1.26.debug1.txt"} {
		b, err := os.ReadFile(fixtures + "/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, _ := gdump.Parse(bytes.NewReader(data))
		r := Analyze(d, Options{Hints: []Hint{{Holder: "main.f"}}})
		for _, l := range r.Locks {
			_ = l.String()
			for _, h := range l.Holders {
				_ = h.String()
			}
		}
		for _, x := range r.Deadlocks {
			_ = x.String()
		}
		for _, c := range r.Chains {
			_ = c.String()
		}
	})
}
