package procfs

import (
	"bytes"
	"errors"
)

// The parsers below read the contents of one /proc/<tid> file into a
// Thread. They never panic on malformed input (see FuzzParsers): they fill in
// what they could parse and return an error saying what was wrong. They do
// not allocate except for error values and strings the caller asks for.

var (
	errStatNoComm   = errors.New("stat: no (comm) field")
	errStatShort    = errors.New("stat: truncated")
	errStatNumber   = errors.New("stat: malformed number")
	errStatState    = errors.New("stat: malformed state")
	errStatusCtxt   = errors.New("status: no context switch counters")
	errStatusNumber = errors.New("status: malformed number")
	errSchedstat    = errors.New("schedstat: malformed")
	errSyscall      = errors.New("syscall: malformed")
)

// statFields holds what parseStat extracts from /proc/<tid>/stat.
type statFields struct {
	name         []byte // aliases the input
	state        byte
	utime, stime uint64 // clock ticks
	start        uint64 // start time in clock ticks since boot
}

// parseStat parses "tid (comm) S ppid ... utime stime ... starttime ...".
// comm may contain spaces and parentheses, so it extends to the last ')'.
func parseStat(b []byte) (st statFields, err error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errStatNoComm
	}
	st.name = b[open+1 : end]
	rest := b[end+1:]
	// Fields after comm, counted from 0: 0 state (field 3 in proc(5)),
	// 11 utime (14), 12 stime (15), 19 starttime (22).
	i := 0
	for f := range fields(rest) {
		switch i {
		case 0:
			if len(f) != 1 {
				return st, errStatState
			}
			st.state = f[0]
		case 11, 12, 19:
			v, ok := parseDec(f)
			if !ok {
				return st, errStatNumber
			}
			switch i {
			case 11:
				st.utime = v
			case 12:
				st.stime = v
			case 19:
				st.start = v
				return st, nil
			}
		}
		i++
	}
	return st, errStatShort
}

// statusFields holds what parseStatus extracts from /proc/<tid>/status.
type statusFields struct {
	name             []byte // aliases the input; escaped by the kernel
	state            byte
	voluntary, invol uint64
	haveVol, haveInv bool
}

// parseStatus reads the Name, State and *_ctxt_switches lines. The kernel
// writes Name and State first and the two counters last, so it looks there
// before scanning every line.
func parseStatus(b []byte) (st statusFields, err error) {
	// Fast path: the first two lines and the last two.
	rest := b
	for range 3 {
		line, r, _ := bytes.Cut(rest, []byte{'\n'})
		rest = r
		if statusLine(&st, line) != nil {
			break
		}
	}
	last := bytes.TrimRight(b, "\n")
	for range 2 {
		i := bytes.LastIndexByte(last, '\n')
		line := last[i+1:]
		if i < 0 {
			last = nil
		} else {
			last = last[:i]
		}
		if statusLine(&st, line) != nil {
			break
		}
	}
	if st.haveVol && st.haveInv && st.state != 0 {
		return st, nil
	}
	st = statusFields{}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if e := statusLine(&st, line); e != nil {
			err = e
		}
	}
	if err == nil && (!st.haveVol || !st.haveInv) {
		err = errStatusCtxt
	}
	return st, err
}

// statusLine stores the value of one status line if it is one we want.
func statusLine(st *statusFields, line []byte) error {
	key, val, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		return nil
	}
	val = bytes.TrimSpace(val)
	switch string(key) {
	case "Name":
		st.name = val
	case "State":
		if len(val) > 0 {
			st.state = val[0]
		}
	case "voluntary_ctxt_switches":
		v, ok := parseDec(val)
		if !ok {
			return errStatusNumber
		}
		st.voluntary, st.haveVol = v, true
	case "nonvoluntary_ctxt_switches":
		v, ok := parseDec(val)
		if !ok {
			return errStatusNumber
		}
		st.invol, st.haveInv = v, true
	}
	return nil
}

// parseSchedstat parses "cpu_ns run_delay_ns timeslices".
func parseSchedstat(b []byte) (v [3]uint64, err error) {
	i := 0
	for f := range fields(b) {
		if i == 3 {
			break
		}
		n, ok := parseDec(f)
		if !ok {
			return v, errSchedstat
		}
		v[i] = n
		i++
	}
	if i < 3 {
		return v, errSchedstat
	}
	return v, nil
}

// syscallFields holds what parseSyscall extracts from /proc/<tid>/syscall.
type syscallFields struct {
	running bool // the file says "running"
	nr      int  // -1: blocked, but not in a system call, or unknown
	nargs   int  // how many of args were parsed
	args    [6]uint64
	sp, pc  uint64
}

// maxSyscallNr bounds what we accept as a system call number.
const maxSyscallNr = 1 << 16

// parseSyscall parses "running", "-1 SP PC" or "NR A0 A1 A2 A3 A4 A5 SP PC"
// (NR decimal, the rest hexadecimal with 0x). On error the number and the
// arguments parsed before the bad field are kept (nr, nargs).
func parseSyscall(b []byte) (sc syscallFields, err error) {
	sc.nr = -1
	b = bytes.TrimSpace(b)
	if string(b) == "running" {
		sc.running = true
		return sc, nil
	}
	var vals [9]uint64
	n := 0
	notInSyscall := false
	for f := range fields(b) {
		if n == len(vals) {
			break // later kernels may add fields
		}
		if n == 0 {
			if string(f) == "-1" {
				notInSyscall = true
				n++
				continue
			}
			v, ok := parseDec(f)
			if !ok || v > maxSyscallNr {
				return sc, errSyscall
			}
			sc.nr = int(v)
			n++
			continue
		}
		v, ok := parseHex(f)
		if !ok {
			err = errSyscall
			break
		}
		vals[n] = v
		n++
	}
	if notInSyscall {
		sc.sp, sc.pc = vals[1], vals[2]
		if n != 3 || err != nil {
			return sc, errSyscall
		}
		return sc, nil
	}
	if n == 0 {
		return sc, errSyscall
	}
	sc.nargs = min(n-1, 6)
	copy(sc.args[:], vals[1:1+sc.nargs])
	if n < 9 {
		return sc, errSyscall
	}
	sc.sp, sc.pc = vals[7], vals[8]
	return sc, err
}

// parseWchan returns the wchan symbol, or nil when the thread is not
// sleeping in the kernel ("0" or empty).
func parseWchan(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "0" {
		return nil
	}
	return b
}

// fields yields the space-separated fields of b (spaces, tabs, newlines).
func fields(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		i := 0
		for i < len(b) {
			for i < len(b) && isSpace(b[i]) {
				i++
			}
			j := i
			for j < len(b) && !isSpace(b[j]) {
				j++
			}
			if j > i && !yield(b[i:j]) {
				return
			}
			i = j
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseDec parses an unsigned decimal number without sign or spaces.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseHex parses "0x1f" (the prefix is optional).
func parseHex(b []byte) (uint64, bool) {
	if len(b) >= 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
	}
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}
