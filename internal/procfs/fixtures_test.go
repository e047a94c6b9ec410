package procfs

import (
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The fixture trees under testdata/proc are generated from the definitions
// below (see testdata/README.md). TestFixturesUpToDate fails when the files
// on disk differ from them; `go test -run TestFixturesUpToDate -update`
// rewrites them.

var update = flag.Bool("update", false, "rewrite testdata/proc from the fixture definitions")

// fixtureThread describes one /proc/<pid>/task/<tid> directory. Empty
// strings for the raw* fields mean "generate from the other fields";
// omit lists files not to write at all.
type fixtureThread struct {
	tid     int
	comm    string
	state   byte
	utime   uint64
	stime   uint64
	start   uint64
	vol     uint64
	invol   uint64
	sched   [3]uint64 // cpu ns, run delay ns, timeslices
	syscall string    // content of the syscall file
	wchan   string

	rawStat, rawStatus, rawSchedstat string
	omit                             []string
}

// Lines as a Go process's threads show them on linux/amd64 (captured from a
// small program on kernel 6.18 and edited).
func futexLine(uaddr uint64, op uint32, val uint32, timeout uint64) string {
	return fmt.Sprintf("202 %#x %#x %#x %#x 0x0 0x0 0x7f5eead2bcc0 0x4891a3\n", uaddr, op, val, timeout)
}

func sysLine(nr int, args ...uint64) string {
	var a [6]uint64
	copy(a[:], args)
	return fmt.Sprintf("%d %#x %#x %#x %#x %#x %#x 0x7f5ee9d294f0 0x4094ce\n", nr, a[0], a[1], a[2], a[3], a[4], a[5])
}

func (f fixtureThread) files() map[string]string {
	m := map[string]string{}
	stateWord := map[byte]string{'R': "R (running)", 'S': "S (sleeping)", 'D': "D (disk sleep)"}
	m["stat"] = f.rawStat
	if m["stat"] == "" {
		m["stat"] = fmt.Sprintf("%d (%s) %c 4323 4315 1933 0 -1 4194368 5 0 0 0 %d %d 0 0 20 0 6 0 %d 1704308736 1121 "+
			"18446744073709551615 4194304 5183840 140722539407184 0 0 0 0 0 2143420159 1 0 0 -1 1 0 0 0 0 0 6463488 "+
			"6510944 603791360 140722539407992 140722539408029 140722539408029 140722539409363 0\n",
			f.tid, f.comm, f.state, f.utime, f.stime, f.start)
	}
	m["status"] = f.rawStatus
	if m["status"] == "" {
		m["status"] = fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\t%s\nTgid:\t4820\nNgid:\t0\nPid:\t%d\nPPid:\t4323\n"+
			"TracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t256\nGroups:\t \nThreads:\t6\n"+
			"SigQ:\t0/96365\nSigPnd:\t0000000000000000\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"+
			"voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n",
			f.comm, stateWord[f.state], f.tid, f.vol, f.invol)
	}
	m["schedstat"] = f.rawSchedstat
	if m["schedstat"] == "" {
		m["schedstat"] = fmt.Sprintf("%d %d %d\n", f.sched[0], f.sched[1], f.sched[2])
	}
	m["syscall"] = f.syscall
	m["wchan"] = f.wchan
	for _, o := range f.omit {
		delete(m, o)
	}
	return m
}

// Addresses used in the fixtures.
const (
	fxMutex = 0x5eb600       // a pthread_mutex_t two threads wait on
	fxSem   = 0x7f00aa001000 // a semaphore word (val 0) two threads wait on
)

// classesFixture has threads of every class (linux/amd64 numbers).
var classesFixture = []fixtureThread{
	{tid: 100, comm: "app", state: 'R', syscall: "running\n", wchan: "0"},
	{tid: 101, comm: "app", state: 'S', syscall: futexLine(0xc000100148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 102, comm: "app", state: 'S', syscall: futexLine(0xc000180948, 0x80, 0xffffffff, 0), wchan: "futex_do_wait"},
	{tid: 103, comm: "cworker", state: 'S', syscall: futexLine(fxMutex, 0x80, 2, 0), wchan: "futex_do_wait"},
	{tid: 104, comm: "cworker", state: 'S', syscall: futexLine(fxMutex, 0x80, 2, 0), wchan: "futex_do_wait"},
	// FUTEX_WAIT_BITSET|FUTEX_PRIVATE_FLAG|FUTEX_CLOCK_REALTIME, value 0, shared.
	{tid: 105, comm: "cpool", state: 'S', syscall: futexLine(fxSem, 0x189, 0, 0), wchan: "futex_do_wait"},
	{tid: 106, comm: "cpool", state: 'S', syscall: futexLine(fxSem, 0x189, 0, 0x7f00aa0ffe00), wchan: "futex_do_wait"},
	{tid: 107, comm: "app", state: 'S', syscall: sysLine(281, 0x7, 0x7f5ee9d29584, 0x80, 0xffffffffffffffff), wchan: "do_epoll_wait"},
	{tid: 108, comm: "app", state: 'S', syscall: sysLine(35, 0x7f5eeb52cd88), wchan: "hrtimer_nanosleep"},
	{tid: 109, comm: "app", state: 'S', syscall: sysLine(0, 0x6, 0xacc8bf9a400, 0x200), wchan: "pipe_read"},
	{tid: 110, comm: "app", state: 'S', syscall: sysLine(999, 1, 2, 3), wchan: "some_kernel_func"},
	{tid: 111, comm: "app", state: 'D', syscall: "-1 0x7ffd8af10b20 0x401100\n", wchan: "folio_wait_bit_common"},
	{tid: 112, comm: "app", state: 'S', syscall: futexLine(0xc000100148, 0x81, 1, 0), wchan: "0"},
	{tid: 113, comm: "cworker", state: 'S', syscall: futexLine(0x7f00bb002000, 0x80, 1, 0), wchan: "futex_do_wait"},
	{tid: 114, comm: "app", state: 'S', syscall: sysLine(232, 0x4, 0x7f5ee9d29584, 0x80, 0), wchan: "do_epoll_wait"},
	{tid: 115, comm: "app", state: 'S', syscall: sysLine(230, 1, 0, 0x7f5eeb52cd88), wchan: "hrtimer_nanosleep"},
	// FUTEX_LOCK_PI|FUTEX_PRIVATE_FLAG: a priority-inheritance mutex.
	{tid: 116, comm: "cworker", state: 'S', syscall: futexLine(0x7f00bb003000, 0x86, 0, 0), wchan: "futex_lock_pi"},
	{tid: 117, comm: "my (weird) name", state: 'S', syscall: futexLine(0xc000190148, 0x80, 0, 0), wchan: "futex_do_wait"},
	// Non-private FUTEX_WAIT and FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME with
	// the runtime-lock value: the flags must be masked.
	{tid: 119, comm: "app", state: 'S', syscall: futexLine(0xc0001a0948, 0x0, 0xffffffff, 0), wchan: "futex_do_wait"},
	{tid: 120, comm: "app", state: 'S', syscall: futexLine(0xc0001b0948, 0x109, 0xffffffff, 0), wchan: "futex_do_wait"},
	// State S read just before the thread started running.
	{tid: 121, comm: "app", state: 'S', syscall: "running\n", wchan: "0"},
}

// malformedFixture has files no kernel writes; the scan must survive them.
var malformedFixture = []fixtureThread{
	{tid: 200, comm: "trunc", state: 'S', rawStat: "200 (trunc) S 1 2 3",
		syscall: futexLine(0xc000100148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 201, comm: "badsys", state: 'S', syscall: "zzz 0xq\n", wchan: "futex_do_wait"},
	{tid: 202, comm: "fromstatus", state: 'D', rawStat: "202 noparen S 1 2 3\n",
		syscall: sysLine(0, 1, 2, 3), wchan: "pipe_read"},
	{tid: 203, comm: "badcounters", state: 'S', rawSchedstat: "abc def\n",
		rawStatus: "Name:\tbadcounters\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\tlots\n",
		syscall:   sysLine(35, 0x7f5eeb52cd88), wchan: "hrtimer_nanosleep"},
	{tid: 204, comm: "nowchan", state: 'S', syscall: sysLine(0, 7), omit: []string{"wchan"}},
	{tid: 205, comm: "garbage", state: 'S', rawStat: "\x00\xff)(\x01 ) x", rawStatus: "\xff\xfe:\n:::\n",
		rawSchedstat: "\x00", syscall: "\x00\x01\x02", wchan: "\xff"},
	{tid: 206, comm: "shortfutex", state: 'S', syscall: "202 0x5eb600\n", wchan: "futex_do_wait"},
	{tid: 207, comm: "overflow", state: 'S',
		rawStat: "207 (overflow) S 1 2 3 4 5 6 7 8 9 10 99999999999999999999999 0 0 0 0 0 0 0 5\n",
		syscall: "99999999999 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n", wchan: "0"},
}

// Two states of the same process, 2 s apart: 302 exits, 303 starts, 304 is
// a reused TID (another start time). Counter deltas are chosen so that the
// rates are exact in binary floating point.
var ratesFixtureT0 = []fixtureThread{
	{tid: 300, comm: "app", state: 'S', start: 1000, vol: 100, invol: 10, sched: [3]uint64{1_000_000, 2_000_000, 50},
		syscall: futexLine(0xc000100148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 301, comm: "app", state: 'R', start: 1000, vol: 1000, invol: 200, sched: [3]uint64{5_000_000_000, 1_000_000_000, 900},
		syscall: "running\n", wchan: "0"},
	{tid: 302, comm: "app", state: 'S', start: 1001, vol: 5, invol: 5, sched: [3]uint64{1, 1, 1},
		syscall: futexLine(0xc000110148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 304, comm: "app", state: 'S', start: 1002, vol: 7, invol: 7, sched: [3]uint64{7, 7, 7},
		syscall: futexLine(0xc000120148, 0x80, 0, 0), wchan: "futex_do_wait"},
}

var ratesFixtureT1 = []fixtureThread{
	{tid: 300, comm: "app", state: 'S', start: 1000, vol: 300, invol: 14, sched: [3]uint64{3_000_000, 502_000_000, 70},
		syscall: futexLine(0xc000100148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 301, comm: "app", state: 'R', start: 1000, vol: 1050, invol: 1200, sched: [3]uint64{6_000_000_000, 2_500_000_000, 1900},
		syscall: "running\n", wchan: "0"},
	{tid: 303, comm: "app", state: 'S', start: 1500, vol: 1, invol: 1, sched: [3]uint64{1, 1, 1},
		syscall: futexLine(0xc000130148, 0x80, 0, 0), wchan: "futex_do_wait"},
	{tid: 304, comm: "app", state: 'S', start: 1600, vol: 9, invol: 9, sched: [3]uint64{9, 9, 9},
		syscall: futexLine(0xc000120148, 0x80, 0, 0), wchan: "futex_do_wait"},
}

// fixtureTrees maps a directory under testdata/proc to its threads. Every
// tree is a /proc/<pid> directory: <dir>/task/<tid>/<file>.
var fixtureTrees = map[string][]fixtureThread{
	"classes":   classesFixture,
	"malformed": malformedFixture,
	"rates/t0":  ratesFixtureT0,
	"rates/t1":  ratesFixtureT1,
}

// fixtureFiles returns every file of every tree, by slash path relative
// to testdata/proc. The malformed tree also has a task entry that is not a
// number, which the scanner must skip.
func fixtureFiles() map[string]string {
	out := map[string]string{}
	for dir, threads := range fixtureTrees {
		for _, th := range threads {
			for name, content := range th.files() {
				out[fmt.Sprintf("%s/task/%d/%s", dir, th.tid, name)] = content
			}
		}
	}
	out["malformed/task/notatid/stat"] = "not a thread\n"
	return out
}

func TestFixturesUpToDate(t *testing.T) {
	root := filepath.Join("testdata", "proc")
	want := fixtureFiles()
	if *update {
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		for p, content := range want {
			full := filepath.Join(root, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing; run go test -run TestFixturesUpToDate -update", p)
		} else if g != want[p] {
			t.Errorf("%s differs from its definition: got %q, want %q", p, g, want[p])
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is not in the fixture definitions", p)
		}
	}
}

// copyTree copies the fixture tree testdata/proc/<name> into a new
// temporary directory and returns the copy's root (a /proc/<pid> stand-in).
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", "proc", filepath.FromSlash(name)))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// applyTree makes the tree at root look like fixture tree name: files are
// rewritten in place (as /proc contents change under open descriptors),
// task directories missing from name are removed, new ones created.
func applyTree(t *testing.T, root, name string) {
	t.Helper()
	src := filepath.Join("testdata", "proc", filepath.FromSlash(name), "task")
	want, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, d := range want {
		keep[d.Name()] = true
		files, err := os.ReadDir(filepath.Join(src, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "task", d.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(src, d.Name(), f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "task", d.Name(), f.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, err := os.ReadDir(filepath.Join(root, "task"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range have {
		if !keep[d.Name()] {
			if err := os.RemoveAll(filepath.Join(root, "task", d.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}
