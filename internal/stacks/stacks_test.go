package stacks

import "testing"

func TestShort(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"net/http.(*Client).Do", "http.(*Client).Do"},
		{"main.main", "main.main"},
		{"github.com/sirupsen/logrus.(*Entry).write", "logrus.(*Entry).write"},
		{"github.com/hashicorp/golang-lru/v2.(*Cache[...]).Get", "golang-lru/v2.(*Cache[...]).Get"},
		{"github.com/hashicorp/golang-lru/v2/expirable.(*LRU[...]).Add", "expirable.(*LRU[...]).Add"},
		{"gopkg.in/yaml.v3.Marshal", "yaml.v3.Marshal"},
		{"main.(*Guarded[go.shape.struct { a/b.c }]).With", "main.(*Guarded[go.shape.struct { a/b.c }]).With"},
	} {
		if got := Short(c.in); got != c.want {
			t.Errorf("Short(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestModule(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"github.com/sirupsen/logrus", "github.com/sirupsen/logrus"},
		{"github.com/hashicorp/golang-lru/v2/expirable", "github.com/hashicorp/golang-lru/v2"},
		{"go.uber.org/zap/zapcore", "go.uber.org/zap"},
		{"go.etcd.io/bbolt", "go.etcd.io/bbolt"},
		{"golang.org/x/exp/trace", "golang.org/x/exp"},
		{"net/http", "std"},
		{"main", "main"},
	} {
		if got := Module(c.in); got != c.want {
			t.Errorf("Module(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if !Std("sync_test") || Std("main") || Std("lockdiag.test/scenarios") {
		t.Error("Std misclassifies sync_test, main or a dotted module")
	}
}

func TestClosure(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"main.handleOrder.func1", "main.handleOrder"},
		{"main.(*Guarded[...]).With.func1", "main.(*Guarded[...]).With"},
		{"main.f.func1.2", "main.f"},
		{"main.f.gowrap1", "main.f"},
		{"main.f.deferwrap2", "main.f"},
		{"main.handleOrder", ""},
		{"sync.(*Mutex).Lock", ""},
		{"main.F[...]", ""},
	} {
		got, ok := Closure(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Closure(%q) = %q, %v, want %q", c.in, got, ok, c.want)
		}
	}
}

func TestOwn(t *testing.T) {
	for fn, want := range map[string]bool{
		"github.com/lockdiag/lockdiag/diag.(*Monitor).loop":                      true,
		"github.com/lockdiag/lockdiag/flightrec.(*Recorder).Window.func1":        true,
		"github.com/lockdiag/lockdiag/internal/procfs.(*Scanner).Scan":           true,
		"github.com/lockdiag/lockdiag/diag.TestRulesLive.func1":                  false,
		"github.com/lockdiag/lockdiag/internal/testkit/contention.HotLockWorker": false,
		"github.com/lockdiag/lockdiag/lockreport.liveWaiterLock":                 false,
		"main.main": false,
	} {
		if got := Own(fn); got != want {
			t.Errorf("Own(%q) = %v, want %v", fn, got, want)
		}
	}
}

func TestCgo(t *testing.T) {
	if !Cgo("main._Cfunc_native_lookup") || !Cgo("github.com/mattn/go-sqlite3._Cfunc__sqlite3_step_row_internal") || !Cgo("runtime.cgocall") || Cgo("main.callNative") {
		t.Error("Cgo misclassifies")
	}
}

// TestLocksFrames: package locks' lock types are lock frames, never a call
// site, and their slow paths say the lock is named.
func TestLocksFrames(t *testing.T) {
	const l = "github.com/lockdiag/lockdiag/locks."
	for _, c := range []struct {
		fn     string
		waiter Prim
		method Prim
		waker  string
		named  bool
	}{
		{l + "(*Mutex).Lock", PrimMutex, PrimMutex, "", false},
		{l + "(*Mutex).lockSlow", PrimMutex, PrimNone, "", true},
		{l + "(*Mutex).TryLock", PrimNone, PrimMutex, "", false},
		{l + "(*Mutex).Unlock", PrimNone, PrimNone, "Mutex.Unlock", false},
		{l + "(*Mutex).unlockSlow", PrimNone, PrimNone, "Mutex.Unlock", false},
		{l + "(*RWMutex).Lock", PrimWLock, PrimWLock, "", false},
		{l + "(*RWMutex).lockSlow", PrimWLock, PrimNone, "", true},
		{l + "(*RWMutex).RLock", PrimRLock, PrimRLock, "", false},
		{l + "(*RWMutex).rlockSlow", PrimRLock, PrimNone, "", true},
		{l + "(*rlocker).Lock", PrimRLock, PrimRLock, "", false},
		{l + "(*RWMutex).Unlock", PrimNone, PrimNone, "RWMutex.Unlock", false},
		{l + "(*RWMutex).RUnlock", PrimNone, PrimNone, "RWMutex.RUnlock", false},
		{l + "(*rlocker).Unlock", PrimNone, PrimNone, "RWMutex.RUnlock", false},
	} {
		if got := Waiter(c.fn); got != c.waiter {
			t.Errorf("Waiter(%s) = %v, want %v", c.fn, got, c.waiter)
		}
		if got := LockMethod(c.fn); got != c.method {
			t.Errorf("LockMethod(%s) = %v, want %v", c.fn, got, c.method)
		}
		if got, _ := Waker(c.fn); got != c.waker {
			t.Errorf("Waker(%s) = %q, want %q", c.fn, got, c.waker)
		}
		if got := NamedWait(c.fn); got != c.named {
			t.Errorf("NamedWait(%s) = %v, want %v", c.fn, got, c.named)
		}
		if !Internal(c.fn) {
			t.Errorf("Internal(%s) = false: a lock frame would be taken for a call site", c.fn)
		}
	}
	if !IsUnlock(l+"(*Mutex).Unlock") || !IsUnlock(l+"(*RWMutex).RUnlock") || IsUnlock(l+"(*Mutex).Lock") {
		t.Error("IsUnlock misclassifies package locks' methods")
	}
	for _, fn := range []string{l + "TestHolder.func1", l + "BenchmarkMutex", "github.com/lockdiag/lockdiag/locks_test.ExampleMutex", "main.(*Mutex).Lock"} {
		if Internal(fn) {
			t.Errorf("Internal(%s) = true: a test or the program's own type is a call site", fn)
		}
	}
}
