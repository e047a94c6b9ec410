//go:build linux

package procfs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtureScanner returns a Scanner over root that uses the amd64 system
// call table (the fixtures' numbers) and a clock the test sets.
func fixtureScanner(t *testing.T, root string, now *time.Time) *Scanner {
	t.Helper()
	s, err := NewScanner(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.tab = &amd64Syscalls
	s.notes = nil
	s.now = func() time.Time { return *now }
	return s
}

func rowsByTID(sc *Scan) map[int]Thread {
	m := make(map[int]Thread, len(sc.Threads))
	for _, t := range sc.Threads {
		m[t.TID] = t
	}
	return m
}

func openFDs(s *Scanner) int {
	n := 0
	for _, tk := range s.fds.tasks {
		for _, fd := range tk.fd {
			if fd >= 0 {
				n++
			}
		}
	}
	return n
}

func TestScanClasses(t *testing.T) {
	now := t0
	s := fixtureScanner(t, filepath.Join("testdata", "proc", "classes"), &now)
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]struct {
		class   Class
		syscall string
	}{
		100: {ClassRunning, "running"},
		101: {ClassIdle, "futex"},
		102: {ClassRuntimeLock, "futex"},
		103: {ClassPthreadMutex, "futex"},
		104: {ClassPthreadMutex, "futex"},
		105: {ClassPthreadMutex, "futex"},
		106: {ClassPthreadMutex, "futex"},
		107: {ClassNetpoller, "epoll_pwait"},
		108: {ClassSleeping, "nanosleep"},
		109: {ClassSyscall, "read"},
		110: {ClassSyscall, "syscall 999"},
		111: {ClassOther, ""},
		112: {ClassSyscall, "futex"},
		113: {ClassPthreadMutex, "futex"},
		114: {ClassNetpoller, "epoll_wait"},
		115: {ClassSleeping, "clock_nanosleep"},
		116: {ClassPthreadMutex, "futex"},
		117: {ClassIdle, "futex"},
		119: {ClassRuntimeLock, "futex"},
		120: {ClassRuntimeLock, "futex"},
		121: {ClassRunning, "running"},
	}
	rows := rowsByTID(sc)
	if len(rows) != len(want) {
		t.Errorf("got %d threads, want %d", len(rows), len(want))
	}
	for tid, w := range want {
		r, ok := rows[tid]
		if !ok {
			t.Errorf("tid %d missing", tid)
			continue
		}
		if r.Class != w.class || r.Syscall != w.syscall {
			t.Errorf("tid %d: class %v syscall %q, want %v %q", tid, r.Class, r.Syscall, w.class, w.syscall)
		}
		if r.Err != "" {
			t.Errorf("tid %d: unexpected error %q", tid, r.Err)
		}
	}
	if !slices.IsSortedFunc(sc.Threads, func(a, b Thread) int { return a.TID - b.TID }) {
		t.Error("threads not sorted by TID")
	}

	wantCounts := map[Class]int{
		ClassRunning: 2, ClassIdle: 2, ClassRuntimeLock: 3, ClassPthreadMutex: 6,
		ClassNetpoller: 2, ClassSleeping: 2, ClassSyscall: 3, ClassOther: 1,
	}
	if !reflect.DeepEqual(sc.Counts, wantCounts) {
		t.Errorf("counts = %v, want %v", sc.Counts, wantCounts)
	}
	if sc.Summary.FutexWaiters != 9 || sc.Summary.Threads != 21 {
		t.Errorf("summary = %+v, want 9 futex waiters and 21 threads", sc.Summary)
	}
	if sc.Summary.RatesValid || sc.Summary.RunDelay != 0 || sc.Summary.CtxSwitches != 0 {
		t.Errorf("first scan has rates: %+v", sc.Summary)
	}
	wantShared := []SharedFutex{
		{Uaddr: fxMutex, Threads: 2, TIDs: []int{103, 104}},
		{Uaddr: fxSem, Threads: 2, TIDs: []int{105, 106}},
	}
	if !reflect.DeepEqual(sc.SharedFutexes, wantShared) {
		t.Errorf("shared futexes = %+v, want %+v", sc.SharedFutexes, wantShared)
	}

	// Details of a few rows.
	if r := rows[117]; r.Name != "my (weird) name" || r.State != "S" {
		t.Errorf("tid 117: name %q state %q", r.Name, r.State)
	}
	r := rows[103]
	wantFutex := Futex{Op: 0x80, Cmd: "wait", Uaddr: fxMutex, Val: 2, Waiters: 2}
	if r.Futex != wantFutex || r.SyscallNr != 202 || r.Wchan != "" {
		t.Errorf("tid 103: futex %+v nr %d wchan %q; want %+v", r.Futex, r.SyscallNr, r.Wchan, wantFutex)
	}
	if f := rows[106].Futex; f.Cmd != "wait_bitset" || !f.Timeout || f.Op != 0x189 {
		t.Errorf("tid 106: futex %+v", f)
	}
	if f := rows[116].Futex; f.Cmd != "lock_pi" {
		t.Errorf("tid 116: futex %+v", f)
	}
	if f := rows[102].Futex; f.Waiters != 1 || f.Val != 0xffffffff {
		t.Errorf("tid 102: futex %+v", f)
	}
	// wchan is read where the system call does not explain the wait.
	if r := rows[109]; r.Wchan != "pipe_read" {
		t.Errorf("tid 109: wchan %q", r.Wchan)
	}
	if r := rows[111]; r.SyscallNr != -1 || r.SP != 0x7ffd8af10b20 || r.PC != 0x401100 || r.State != "D" ||
		r.Wchan != "folio_wait_bit_common" {
		t.Errorf("tid 111: %+v", r)
	}
	if r := rows[109]; r.Args != [6]uint64{0x6, 0xacc8bf9a400, 0x200} || r.PC != 0x4094ce {
		t.Errorf("tid 109: args %#x pc %#x", r.Args, r.PC)
	}
	if n := openFDs(s); n != 5*21 {
		t.Errorf("%d descriptors open, want %d", n, 5*21)
	}
}

// With no system call table (an architecture we do not know), only wchan
// and the state are used.
func TestScanUnknownArch(t *testing.T) {
	now := t0
	s := fixtureScanner(t, filepath.Join("testdata", "proc", "classes"), &now)
	s.tab = nil
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	want := map[Class]int{ClassRunning: 2, ClassNetpoller: 2, ClassSleeping: 2, ClassOther: 15,
		ClassIdle: 0, ClassRuntimeLock: 0, ClassPthreadMutex: 0, ClassSyscall: 0}
	if !reflect.DeepEqual(sc.Counts, want) {
		t.Errorf("counts = %v, want %v", sc.Counts, want)
	}
	if r := rowsByTID(sc)[110]; r.Syscall != "syscall 999" || r.SyscallNr != 999 {
		t.Errorf("tid 110: syscall %q nr %d", r.Syscall, r.SyscallNr)
	}
}

func TestScanMalformed(t *testing.T) {
	now := t0
	s := fixtureScanner(t, filepath.Join("testdata", "proc", "malformed"), &now)
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsByTID(sc)
	if len(rows) != len(malformedFixture) {
		t.Fatalf("got %d rows, want %d (the non-numeric task entry must be skipped)", len(rows), len(malformedFixture))
	}
	tests := []struct {
		tid     int
		errHas  []string
		name    string
		state   string
		class   Class
		syscall string
	}{
		{200, []string{"stat: truncated"}, "trunc", "S", ClassIdle, "futex"},
		{201, []string{"syscall: malformed"}, "badsys", "S", ClassOther, ""},
		{202, []string{"stat: no (comm) field"}, "fromstatus", "D", ClassSyscall, "read"},
		{203, []string{"status: malformed number", "schedstat: malformed"}, "badcounters", "S", ClassSleeping, "nanosleep"},
		{204, []string{"wchan: no such file or directory"}, "nowchan", "S", ClassSyscall, "read"},
		// comm runs from the first '(' to the last ')'.
		{205, []string{"stat:", "status:", "syscall:", "schedstat:"}, "\x01 ", "x", ClassOther, ""},
		{206, []string{"syscall: malformed"}, "shortfutex", "S", ClassOther, "futex"},
		{207, []string{"stat: malformed number", "syscall: malformed"}, "overflow", "S", ClassOther, ""},
	}
	for _, tt := range tests {
		r := rows[tt.tid]
		for _, h := range tt.errHas {
			if !strings.Contains(r.Err, h) {
				t.Errorf("tid %d: error %q does not mention %q", tt.tid, r.Err, h)
			}
		}
		if r.Name != tt.name || r.State != tt.state || r.Class != tt.class || r.Syscall != tt.syscall {
			t.Errorf("tid %d: name %q state %q class %v syscall %q; want %q %q %v %q",
				tt.tid, r.Name, r.State, r.Class, r.Syscall, tt.name, tt.state, tt.class, tt.syscall)
		}
	}
	// A second scan of malformed files gives no rates for the bad counters
	// and still does not fail.
	now = now.Add(time.Second)
	sc, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if r := rowsByTID(sc)[203]; r.RatesValid {
		t.Errorf("tid 203 has rates from unparsable counters: %+v", r)
	}
	if r := rowsByTID(sc)[201]; !r.RatesValid {
		t.Errorf("tid 201 has good counters but no rates: %+v", r)
	}
	bad := 0
	for _, r := range sc.Threads {
		if r.Err != "" {
			bad++
		}
	}
	if bad != 8 {
		t.Errorf("%d rows say what could not be read, want 8", bad)
	}
}

func TestScanRates(t *testing.T) {
	root := copyTree(t, "rates/t0")
	now := t0
	s := fixtureScanner(t, root, &now)
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sc.Threads {
		if r.RatesValid || r.VoluntaryPerSec != 0 || r.RunDelayPerSec != 0 {
			t.Errorf("first scan: tid %d has rates %+v", r.TID, r)
		}
	}
	if got := slices.Sorted(mapsKeys(s.fds.tasks)); !slices.Equal(got, []int{300, 301, 302, 304}) {
		t.Errorf("open tasks %v", got)
	}

	applyTree(t, root, "rates/t1")
	now = now.Add(2 * time.Second)
	sc, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	rows := rowsByTID(sc)
	type rates struct {
		valid             bool
		vol, invol, delay float64
	}
	want := map[int]rates{
		300: {true, 100, 2, 0.25},
		301: {true, 25, 500, 0.75},
		303: {}, // new thread
		304: {}, // reused TID: another start time
	}
	if len(rows) != len(want) {
		t.Errorf("got %d rows, want %d", len(rows), len(want))
	}
	for tid, w := range want {
		r := rows[tid]
		got := rates{r.RatesValid, r.VoluntaryPerSec, r.InvoluntaryPerSec, r.RunDelayPerSec}
		if got != w {
			t.Errorf("tid %d: rates %+v, want %+v", tid, got, w)
		}
	}
	wantSum := Summary{Threads: 4, FutexWaiters: 0, RatesValid: true, IntervalSeconds: 2, RunDelay: 1, CtxSwitches: 627}
	if sc.Summary != wantSum {
		t.Errorf("summary = %+v, want %+v", sc.Summary, wantSum)
	}
	if got := slices.Sorted(mapsKeys(s.fds.tasks)); !slices.Equal(got, []int{300, 301, 303, 304}) {
		t.Errorf("open tasks after exit and start: %v", got)
	}
	if n := openFDs(s); n != 20 {
		t.Errorf("%d descriptors open, want 20", n)
	}

	// Nothing changed: the rates are zero, not invalid.
	now = now.Add(time.Second)
	sc, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if r := rowsByTID(sc)[300]; !r.RatesValid || r.VoluntaryPerSec != 0 {
		t.Errorf("unchanged counters: %+v", r)
	}
	if r := rowsByTID(sc)[303]; !r.RatesValid {
		t.Errorf("tid 303 seen twice but no rates: %+v", r)
	}
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Threads that exit between listing the task directory and reading their
// files are dropped without an error: a directory removed before its files
// are opened (ENOENT), and a kept-open file that reads empty.
func TestScanVanishingThreads(t *testing.T) {
	root := copyTree(t, "rates/t0")
	now := t0
	s := fixtureScanner(t, root, &now)
	if _, err := s.Scan(); err != nil {
		t.Fatal(err)
	}

	// A new thread is listed, then its directory disappears.
	newDir := filepath.Join(root, "task", "305")
	if err := os.CopyFS(newDir, os.DirFS(filepath.Join(root, "task", "300"))); err != nil {
		t.Fatal(err)
	}
	s.afterList = func() {
		if err := os.RemoveAll(newDir); err != nil {
			t.Error(err)
		}
	}
	now = now.Add(time.Second)
	sc, err := s.Scan()
	if err != nil {
		t.Fatalf("scan failed on a vanished thread: %v", err)
	}
	if sc.Vanished != 1 || len(sc.Threads) != 4 {
		t.Errorf("vanished %d, %d rows; want 1 and 4", sc.Vanished, len(sc.Threads))
	}
	if _, ok := s.fds.tasks[305]; ok {
		t.Error("vanished thread 305 is still tracked")
	}

	// A tracked thread's stat reads empty after the listing.
	s.afterList = func() {
		if err := os.WriteFile(filepath.Join(root, "task", "302", "stat"), nil, 0o644); err != nil {
			t.Error(err)
		}
	}
	now = now.Add(time.Second)
	sc, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Vanished != 1 || len(sc.Threads) != 3 {
		t.Errorf("vanished %d, %d rows; want 1 and 3", sc.Vanished, len(sc.Threads))
	}
	if _, ok := rowsByTID(sc)[302]; ok {
		t.Error("thread 302 with an empty stat is in the rows")
	}
	if _, ok := s.fds.tasks[302]; ok {
		t.Error("thread 302 is still tracked")
	}
	if n := openFDs(s); n != 15 {
		t.Errorf("%d descriptors open, want 15", n)
	}
}

func TestScannerErrors(t *testing.T) {
	_, err := NewScanner(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewScanner on a missing root: %v, want fs.ErrNotExist", err)
	}
	root := copyTree(t, "rates/t0")
	s, err := NewScanner(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(); err != nil {
		t.Fatal(err)
	}
	// The task directory disappears: the scan fails, the descriptors stay
	// until Close.
	if err := os.RemoveAll(filepath.Join(root, "task")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(); err == nil || !strings.HasPrefix(err.Error(), "procfs: ") {
		t.Errorf("scan of a missing task directory: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(s); n != 0 {
		t.Errorf("%d descriptors open after Close", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Scan(); err == nil {
		t.Error("Scan after Close succeeded")
	}
}

func TestScanJSON(t *testing.T) {
	now := t0
	s := fixtureScanner(t, filepath.Join("testdata", "proc", "classes"), &now)
	sc, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"class":"runtime-lock"`, `"counts":{"idle":2,`, `"futex_waiters":9`,
		`"shared_futexes":[{"uaddr":6206976,"threads":2,"tids":[103,104]}`, `"name":"my (weird) name"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	if bytes.Contains(b, []byte(`"startTicks"`)) || bytes.Contains(b, []byte(`"have"`)) {
		t.Errorf("JSON has unexported fields")
	}
	var back Scan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i := range sc.Threads {
		sc.Threads[i].startTicks, sc.Threads[i].have = 0, 0
	}
	if !reflect.DeepEqual(&back, sc) {
		t.Errorf("JSON round trip differs:\n got %+v\nwant %+v", back, *sc)
	}
}

func FuzzDirent(f *testing.F) {
	rec := func(name string) []byte {
		b := make([]byte, 19+len(name)+1)
		binary.NativeEndian.PutUint16(b[16:], uint16(len(b)))
		copy(b[19:], name)
		return b
	}
	f.Add(append(rec("123"), rec("self")...))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 4, '1'})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tid := range appendDirentTIDs(nil, b) {
			if tid <= 0 {
				t.Errorf("tid %d from %q", tid, b)
			}
		}
	})
}

func TestAppendDirentTIDs(t *testing.T) {
	rec := func(name string, pad int) []byte {
		b := make([]byte, 19+len(name)+1+pad)
		binary.NativeEndian.PutUint16(b[16:], uint16(len(b)))
		copy(b[19:], name)
		return b
	}
	var buf []byte
	for _, n := range []string{".", "..", "4820", "notatid", "4821", "0"} {
		buf = append(buf, rec(n, 3)...)
	}
	got := appendDirentTIDs(nil, buf)
	if !slices.Equal(got, []int{4820, 4821}) {
		t.Errorf("got %v, want [4820 4821]", got)
	}
}

// Beyond the descriptor budget, threads are read with open/read/close and
// give the same rows.
func TestScanDescriptorBudget(t *testing.T) {
	now := t0
	full := fixtureScanner(t, filepath.Join("testdata", "proc", "classes"), &now)
	capped := fixtureScanner(t, filepath.Join("testdata", "proc", "classes"), &now)
	capped.maxKept = 2
	for range 3 {
		want, err := full.Scan()
		if err != nil {
			t.Fatal(err)
		}
		got, err := capped.Scan()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("capped scan differs:\n got %+v\nwant %+v", got, want)
		}
		if n := openFDs(capped); n != 10 {
			t.Errorf("capped scanner holds %d descriptors, want 10", n)
		}
		if capped.kept != 2 {
			t.Errorf("kept = %d, want 2", capped.kept)
		}
		now = now.Add(time.Second)
	}
}
