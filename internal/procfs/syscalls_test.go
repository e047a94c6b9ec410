package procfs

import (
	"runtime"
	"testing"
)

func checkTable(t *testing.T, tab *sysTable, want map[string]int) {
	t.Helper()
	for name, nr := range want {
		if got := tab.name(nr); got != name {
			t.Errorf("%s: syscall %d is %q in our table, want %q", tab.arch, nr, got, name)
		}
	}
}

func TestTableFor(t *testing.T) {
	if tableFor("amd64").name(202) != "futex" || tableFor("arm64").name(98) != "futex" ||
		tableFor("riscv64").name(98) != "futex" {
		t.Error("futex numbers wrong")
	}
	if tableFor("s390x") != nil {
		t.Error("s390x has a table")
	}
	if got := tableFor("s390x").name(7); got != "syscall 7" {
		t.Errorf("unknown arch name = %q", got)
	}
	seen := map[string]bool{}
	for _, tab := range []*sysTable{&amd64Syscalls, &genericSyscalls} {
		clear(seen)
		for nr, name := range tab.names {
			if seen[name] {
				t.Errorf("%s: %q listed twice (again at %d)", tab.arch, name, nr)
			}
			seen[name] = true
		}
	}
	t.Logf("GOARCH %s uses table %v", runtime.GOARCH, tableFor(runtime.GOARCH) != nil)
}
