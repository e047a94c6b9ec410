package locks

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// find returns the state of the named lock called name, the one named last
// if there are several (as with go test -count=2).
func find(t testing.TB, name string) State {
	t.Helper()
	states := Read(nil)
	for i := len(states) - 1; i >= 0; i-- {
		if states[i].Name == name {
			return states[i]
		}
	}
	var names []string
	for _, s := range Read(nil) {
		names = append(names, s.Name)
	}
	t.Fatalf("no named lock %q in Read; it has %q", name, names)
	return State{}
}

// waitFor polls cond until it holds, yielding the processor in between; it
// fails the test after 10 s. It waits for the goroutines under test to reach
// a state (a goroutine parked in Lock), not for a result.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// myID returns the calling goroutine's id from its runtime.Stack header.
func myID() uint64 {
	var buf [64]byte
	return parseGoroutineID(buf[:runtime.Stack(buf[:], false)])
}

// goroutineStack returns the stack of goroutine id from a dump of all
// goroutines, or "".
func goroutineStack(id uint64) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	head := []byte("goroutine " + strconv.FormatUint(id, 10) + " [")
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.HasPrefix(g, head) {
			return string(g)
		}
	}
	return ""
}

// needGoid skips tests that need goroutine ids where they are unavailable.
func needGoid(t *testing.T) {
	t.Helper()
	probeRuntime()
	if goidOffset == 0 {
		t.Skipf("goroutine ids unavailable on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
}

// setHoldMask makes every (mask 0) or 1 in mask+1 hold timed for one test.
func setHoldMask(t *testing.T, mask uint64) {
	old := holdMask
	holdMask = mask
	t.Cleanup(func() { holdMask = old })
}

// funcNames returns the function names of a stack.
func funcNames(pcs []uintptr) []string {
	var names []string
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		names = append(names, f.Function)
		if !more {
			return names
		}
	}
}
