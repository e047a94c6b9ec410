package procfs

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSyscall(t *testing.T) {
	tests := []struct {
		in      string
		want    syscallFields
		wantErr bool
	}{
		{"running\n", syscallFields{running: true, nr: -1}, false},
		{"-1 0x7ffd 0x4011\n", syscallFields{nr: -1, sp: 0x7ffd, pc: 0x4011}, false},
		{"202 0xc000100148 0x80 0x0 0x0 0x0 0x0 0x7f5eead2bcc0 0x4891a3\n",
			syscallFields{nr: 202, nargs: 6, args: [6]uint64{0xc000100148, 0x80}, sp: 0x7f5eead2bcc0, pc: 0x4891a3}, false},
		{"98 0x1 0xffffffffffffffff 0x2 0x3 0x4 0x5 0x6 0x7 0x8 extra",
			syscallFields{nr: 98, nargs: 6, args: [6]uint64{1, 1<<64 - 1, 2, 3, 4, 5}, sp: 6, pc: 7}, false},
		{"202 0x5eb600 0x80", syscallFields{nr: 202, nargs: 2, args: [6]uint64{0x5eb600, 0x80}}, true},
		{"202 0x5eb600 zz 0x2", syscallFields{nr: 202, nargs: 1, args: [6]uint64{0x5eb600}}, true},
		{"-1 0x1", syscallFields{nr: -1, sp: 1}, true},
		{"-2 0x1 0x2", syscallFields{nr: -1}, true},
		{"", syscallFields{nr: -1}, true},
		{"99999999 0x1", syscallFields{nr: -1}, true},
		{"0x10 0x1", syscallFields{nr: -1}, true},
		{"202 0x10000000000000000 0x80", syscallFields{nr: 202}, true}, // 17 hex digits
	}
	for _, tt := range tests {
		got, err := parseSyscall([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseSyscall(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStat(t *testing.T) {
	full := "4821 (a) b) c) S 4323 4315 1933 0 -1 4194368 5 0 0 0 17 42 0 0 20 0 6 0 58957 1704308736 1121 18446744073709551615\n"
	st, err := parseStat([]byte(full))
	if err != nil || string(st.name) != "a) b) c" || st.state != 'S' || st.utime != 17 || st.stime != 42 || st.start != 58957 {
		t.Errorf("parseStat(full) = %+v (name %q), %v", st, st.name, err)
	}
	for _, bad := range []string{"", "1 (x", "1 x) S", "1 (x) ", "1 (x) SS 1", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) gave no error", bad)
		}
	}
}

func TestParseStatusSchedstat(t *testing.T) {
	st, err := parseStatus([]byte("Name:\tx y\nState:\tD (disk sleep)\nvoluntary_ctxt_switches:\t34\nnonvoluntary_ctxt_switches:\t7"))
	if err != nil || string(st.name) != "x y" || st.state != 'D' || st.voluntary != 34 || st.invol != 7 {
		t.Errorf("parseStatus = %+v, %v", st, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nvoluntary_ctxt_switches:\t34\n")); err != errStatusCtxt {
		t.Errorf("status without nonvoluntary: %v", err)
	}
	v, err := parseSchedstat([]byte("4042120 2264794 30\n"))
	if err != nil || v != [3]uint64{4042120, 2264794, 30} {
		t.Errorf("parseSchedstat = %v, %v", v, err)
	}
	for _, bad := range []string{"", "1 2", "1 2 x", "-1 2 3"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q) gave no error", bad)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	if v, ok := parseDec([]byte("18446744073709551615")); !ok || v != 1<<64-1 {
		t.Errorf("max uint64: %d %v", v, ok)
	}
	for _, bad := range []string{"18446744073709551616", "", "1a", "+1", "99999999999999999999"} {
		if _, ok := parseDec([]byte(bad)); ok {
			t.Errorf("parseDec(%q) ok", bad)
		}
	}
	if v, ok := parseHex([]byte("0xFFffffffffffffff")); !ok || v != 1<<64-1 {
		t.Errorf("parseHex max: %x %v", v, ok)
	}
	for _, bad := range []string{"0x", "", "0xg", "0x10000000000000000"} {
		if _, ok := parseHex([]byte(bad)); ok {
			t.Errorf("parseHex(%q) ok", bad)
		}
	}
}

func TestFutexOps(t *testing.T) {
	tests := []struct {
		op        uint32
		cmd       string
		valueWait bool
		piWait    bool
	}{
		{0x0, "wait", true, false},
		{0x80, "wait", true, false},
		{0x89, "wait_bitset", true, false},
		{0x189, "wait_bitset", true, false},
		{0x109, "wait_bitset", true, false},
		{0x81, "wake", false, false},
		{0x86, "lock_pi", false, true},
		{0x8d, "lock_pi2", false, true},
		{0x8b, "wait_requeue_pi", false, true},
		{0x88, "trylock_pi", false, false},
		{0x8f, "op 143", false, false},
	}
	for _, tt := range tests {
		if c, v, p := futexCmdName(tt.op), futexValueWait(tt.op), futexPIWait(tt.op); c != tt.cmd || v != tt.valueWait || p != tt.piWait {
			t.Errorf("op %#x: %q %v %v; want %q %v %v", tt.op, c, v, p, tt.cmd, tt.valueWait, tt.piWait)
		}
	}
}

func TestClassNames(t *testing.T) {
	seen := map[string]bool{}
	for c := range numClasses {
		name := c.String()
		if seen[name] || name == "" || strings.HasPrefix(name, "class(") {
			t.Errorf("class %d: bad or duplicate name %q", c, name)
		}
		seen[name] = true
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Class
		if err := json.Unmarshal(b, &back); err != nil || back != c {
			t.Errorf("class %v: JSON %s decodes to %v, %v", c, b, back, err)
		}
	}
	if got := Class(200).String(); got != "class(200)" {
		t.Errorf("Class(200).String() = %q", got)
	}
	if _, err := Class(200).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid class succeeded")
	}
	var c Class
	if err := c.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("UnmarshalText(bogus) succeeded")
	}
}

// The order of the futex rules matters: a shared word beats the value.
func TestClassifyFutexRules(t *testing.T) {
	futexRow := func(op, val uint32, waiters int) *Thread {
		return &Thread{State: "S", Syscall: "futex", SyscallNr: 202, have: haveSyscall,
			Futex: Futex{Op: op, Cmd: futexCmdName(op), Val: val, Waiters: waiters}}
	}
	tests := []struct {
		t    *Thread
		want Class
	}{
		{futexRow(0x80, 0, 1), ClassIdle},
		{futexRow(0x80, 0, 2), ClassPthreadMutex},
		{futexRow(0x80, 0xffffffff, 1), ClassRuntimeLock},
		{futexRow(0x80, 0xffffffff, 3), ClassPthreadMutex},
		{futexRow(0x80, 2, 1), ClassPthreadMutex},
		{futexRow(0x80, 0x80001234, 1), ClassPthreadMutex}, // robust mutex: TID|FUTEX_WAITERS
		{futexRow(0x86, 0, 1), ClassPthreadMutex},
		{futexRow(0x81, 0, 0), ClassSyscall},
		{&Thread{State: "R", Syscall: "futex", have: haveSyscall, Futex: Futex{Cmd: "wait", Val: 0xffffffff}}, ClassRunning},
		{&Thread{State: "S", Wchan: "do_epoll_wait"}, ClassNetpoller},
		{&Thread{State: "S", Wchan: "hrtimer_nanosleep"}, ClassSleeping},
		{&Thread{State: "S", Wchan: "futex_do_wait"}, ClassOther},
		{&Thread{State: "S", Syscall: "futex", SyscallNr: 202, have: haveSyscall, Wchan: "futex_do_wait"}, ClassOther},
	}
	for i, tt := range tests {
		if got := classify(tt.t); got != tt.want {
			t.Errorf("%d: classify(%+v) = %v, want %v", i, *tt.t, got, tt.want)
		}
	}
}

func FuzzParsers(f *testing.F) {
	for _, th := range classesFixture {
		for _, content := range th.files() {
			f.Add([]byte(content))
		}
	}
	for _, th := range malformedFixture {
		for _, content := range th.files() {
			f.Add([]byte(content))
		}
	}
	f.Add([]byte("-1 0x1 0x2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := parseStat(b); err == nil && st.name == nil {
			t.Errorf("parseStat(%q): no error but no name", b)
		}
		parseStatus(b)
		parseSchedstat(b)
		parseWchan(b)
		sc, err := parseSyscall(b)
		if err == nil && !sc.running && sc.nr >= 0 && sc.nargs != 6 {
			t.Errorf("parseSyscall(%q) = %+v without error", b, sc)
		}
		if sc.nargs < 0 || sc.nargs > 6 {
			t.Errorf("parseSyscall(%q): nargs %d", b, sc.nargs)
		}
		for _, tab := range []*sysTable{&amd64Syscalls, &genericSyscalls, nil} {
			s := &Scan{Threads: make([]Thread, 2)}
			for i := range s.Threads {
				s.Threads[i].TID = i + 1
				decodeSyscall(&s.Threads[i], sc, tab)
			}
			finish(s, true, 1)
			if s.Summary.Threads != 2 {
				t.Errorf("summary %+v", s.Summary)
			}
		}
	})
}
