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
