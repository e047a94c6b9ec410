//go:build linux

package procfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The files read for every thread, in the order they are read. stat comes
// first: it tells whether the thread still exists.
const (
	fileStat = iota
	fileStatus
	fileSyscall
	fileWchan
	fileSchedstat
	numFiles
)

var fileNames = [numFiles]string{"stat", "status", "syscall", "wchan", "schedstat"}

// maxKeptThreads bounds the descriptors a Scanner holds: 5 per thread, so
// at most 5000. Threads beyond it are still scanned, at the open/close cost
// (about 30 µs instead of 15 µs per thread).
const maxKeptThreads = 1000

// Scanner reads the threads of one process from a /proc/<pid> directory.
// It keeps five file descriptors open per thread between scans (for at most
// 1000 threads; more are read with open/read/close on each scan) and closes
// them when the thread exits or the Scanner is closed. A Scanner dropped
// without Close has its descriptors closed by a cleanup after it is
// garbage collected.
//
// A Scanner is not safe for concurrent use: one goroutine calls Scan
// repeatedly (rates are computed against the previous Scan) and then Close.
type Scanner struct {
	root  string
	tab   *sysTable
	fds   *fdSet // owned descriptors; closed by Close or by a cleanup
	buf   []byte // read buffer, grown when a file does not fit
	dbuf  []byte // getdents buffer
	tids  []int
	gen   uint64
	prev  time.Time // time of the previous scan; zero before the first
	notes []string
	// kept counts threads whose descriptors stay open, at most maxKept;
	// threads beyond it are read with open/read/close on every scan.
	kept, maxKept int

	// Test hooks.
	now       func() time.Time
	afterList func()
	openEach  bool // open, read and close every file on every scan (benchmark comparison)
}

// fdSet is kept apart from Scanner so that a cleanup can close the
// descriptors of a Scanner that was dropped without Close.
type fdSet struct {
	tasks  map[int]*task
	closed bool
}

// task is one thread's open files and what is kept of it between scans.
type task struct {
	tid       int
	fd        [numFiles]int // -1 when not open
	openErr   [numFiles]error
	opened    bool   // openFiles has run and closeFiles has not
	retryOpen bool   // an open failed for lack of descriptors
	seen      uint64 // generation of the last listing that showed it
	prev      prevCounters
	hasPrev   bool
	name      string // cached to avoid an allocation per scan
	wchan     string
}

// NewScanner returns a Scanner for the process directory root, normally
// "/proc/self"; tests pass a fixture tree with the same layout. It checks
// that root/task can be listed. No thread file is opened before the first
// [Scanner.Scan].
func NewScanner(root string) (*Scanner, error) {
	dir := filepath.Join(root, "task")
	fd, err := openDir(dir)
	if err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	syscall.Close(fd)
	s := &Scanner{
		root:    root,
		tab:     tableFor(runtime.GOARCH),
		fds:     &fdSet{tasks: make(map[int]*task)},
		buf:     make([]byte, 4096),
		dbuf:    make([]byte, 8192),
		maxKept: maxKeptThreads,
		now:     time.Now,
	}
	if s.tab == nil {
		s.notes = append(s.notes, "system call numbers unknown on "+runtime.GOARCH+": futex waits are not classified; netpoller and sleep are told from wchan")
	}
	runtime.AddCleanup(s, func(f *fdSet) { f.closeAll() }, s.fds)
	return s, nil
}

// Close closes every file descriptor the Scanner holds. It is idempotent;
// Scan after Close returns an error.
func (s *Scanner) Close() error {
	s.fds.closeAll()
	return nil
}

func (f *fdSet) closeAll() {
	for tid, t := range f.tasks {
		t.closeFiles()
		delete(f.tasks, tid)
	}
	f.closed = true
}

// Scan lists the threads and reads their files. A thread that exits during
// the scan is left out (counted in [Scan.Vanished]); a file that cannot be
// read or parsed gives a row with what could be parsed and [Thread.Err]
// set. Scan fails only when the task directory cannot be listed or the
// Scanner is closed.
func (s *Scanner) Scan() (*Scan, error) {
	if s.fds.closed {
		return nil, errors.New("procfs: scan on a closed Scanner")
	}
	now := s.now()
	if err := s.list(); err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	if s.afterList != nil {
		s.afterList()
	}
	s.gen++
	interval := 0.0
	ratesValid := !s.prev.IsZero()
	if ratesValid {
		interval = now.Sub(s.prev).Seconds()
		ratesValid = interval > 0
	}
	sc := &Scan{Time: now, Threads: make([]Thread, 0, len(s.tids))}
	if len(s.notes) > 0 {
		sc.Notes = slices.Clone(s.notes)
	}
	tasks := s.fds.tasks
	for _, tid := range s.tids {
		tk := tasks[tid]
		if tk == nil {
			tk = &task{tid: tid}
			tasks[tid] = tk
		}
		tk.seen = s.gen
		var row Thread
		if !s.readTask(tk, &row) {
			tk.closeFiles()
			delete(tasks, tid)
			sc.Vanished++
			continue
		}
		if ratesValid && tk.hasPrev {
			setRates(&row, tk.prev, interval)
		}
		tk.prev, tk.hasPrev = countersOf(&row), true
		sc.Threads = append(sc.Threads, row)
	}
	s.kept = 0
	for tid, tk := range tasks {
		if tk.seen != s.gen { // exited since the previous scan
			tk.closeFiles()
			delete(tasks, tid)
		} else if tk.opened {
			s.kept++
		}
	}
	finish(sc, ratesValid, interval)
	s.prev = now
	return sc, nil
}

// list fills s.tids with the numeric entries of root/task, sorted.
func (s *Scanner) list() error {
	dir := filepath.Join(s.root, "task")
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	s.tids = s.tids[:0]
	for {
		n, err := syscall.ReadDirent(fd, s.dbuf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		if n <= 0 {
			break
		}
		s.tids = appendDirentTIDs(s.tids, s.dbuf[:n])
	}
	slices.Sort(s.tids)
	return nil
}

func openDir(dir string) (int, error) {
	for {
		fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", dir, err)
		}
		return fd, nil
	}
}

// appendDirentTIDs appends the names of the linux_dirent64 records in b
// that are decimal numbers. Record layout: d_ino u64, d_off s64,
// d_reclen u16, d_type u8, d_name (NUL-terminated).
func appendDirentTIDs(tids []int, b []byte) []int {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if v, ok := parseDec(name); ok && v > 0 && v < 1<<31 {
			tids = append(tids, int(v))
		}
		b = b[reclen:]
	}
	return tids
}

// readTask reads and parses the thread's files into row. It returns false
// when the thread no longer exists.
func (s *Scanner) readTask(tk *task, row *Thread) bool {
	fresh := !tk.opened
	transient := s.openEach
	if fresh {
		if s.kept >= s.maxKept {
			transient = true // descriptor budget spent: open and close each time
		}
		if !s.openFiles(tk) {
			return false
		}
		if !transient {
			s.kept++
		}
	}
	ok, gone := s.readFiles(tk, row)
	if gone && !fresh {
		// The descriptors may belong to a thread that exited while a new
		// one got the same TID: reopen once.
		tk.closeFiles()
		if !s.openFiles(tk) {
			return false
		}
		*row = Thread{}
		tk.hasPrev = false
		ok, gone = s.readFiles(tk, row)
	}
	if transient || tk.retryOpen {
		// Out of descriptors (EMFILE/ENFILE): try again on the next scan.
		tk.closeFiles()
	}
	return ok && !gone
}

// openFiles opens the thread's files. It returns false when the thread
// directory is gone. A file that exists for no thread (for example syscall
// on a kernel without it) is remembered as unavailable and not retried.
func (s *Scanner) openFiles(tk *task) bool {
	base := filepath.Join(s.root, "task", strconv.Itoa(tk.tid))
	tk.opened = true
	tk.retryOpen = false
	for i := range numFiles {
		tk.fd[i] = -1
		tk.openErr[i] = nil
	}
	for i := range numFiles {
		var fd int
		var err error
		for {
			fd, err = syscall.Open(base+"/"+fileNames[i], syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != syscall.EINTR {
				break
			}
		}
		if err != nil {
			if i == fileStat && (err == syscall.ENOENT || err == syscall.ESRCH) {
				tk.closeFiles()
				return false
			}
			if err == syscall.EMFILE || err == syscall.ENFILE {
				tk.retryOpen = true
			}
			tk.openErr[i] = err
			continue
		}
		tk.fd[i] = fd
	}
	return true
}

func (tk *task) closeFiles() {
	if !tk.opened {
		return
	}
	for i, fd := range tk.fd {
		if fd >= 0 {
			syscall.Close(fd)
		}
		tk.fd[i] = -1
	}
	tk.opened = false
}

// pread reads file i of tk from offset 0 into s.buf, growing the buffer when
// the content may not have fit. gone reports that the thread has exited
// (ESRCH, ENOENT, or an empty file).
func (s *Scanner) pread(tk *task, i int) (b []byte, gone bool, err error) {
	fd := tk.fd[i]
	if fd < 0 {
		return nil, false, tk.openErr[i]
	}
	for {
		n, err := syscall.Pread(fd, s.buf, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ESRCH || err == syscall.ENOENT:
			return nil, true, err
		case err != nil:
			return nil, false, err
		case n == 0:
			return nil, true, nil
		case n == len(s.buf) && len(s.buf) < 1<<20:
			s.buf = make([]byte, 2*len(s.buf))
			continue
		}
		return s.buf[:n], false, nil
	}
}

// readFiles reads every file of tk into row. ok is false when stat could
// not be read at all; gone is true when the thread has exited.
func (s *Scanner) readFiles(tk *task, row *Thread) (ok, gone bool) {
	row.TID = tk.tid
	row.SyscallNr = -1
	var errs []string
	fail := func(file string, err error) {
		errs = append(errs, file+": "+err.Error())
	}

	// stat
	b, gone, err := s.pread(tk, fileStat)
	if gone {
		return false, true
	}
	if err != nil {
		fail("stat", err)
	} else {
		st, perr := parseStat(b)
		if st.name != nil {
			if string(st.name) != tk.name {
				tk.name = string(st.name)
			}
			row.Name = tk.name
		}
		if st.state != 0 {
			row.State = stateString(st.state)
		}
		row.UserSeconds = float64(st.utime) / userHZ
		row.SystemSeconds = float64(st.stime) / userHZ
		row.startTicks = st.start
		if perr != nil {
			errs = append(errs, perr.Error())
		} else {
			row.have |= haveStat
		}
	}

	// status
	b, gone, err = s.pread(tk, fileStatus)
	if gone {
		return false, true
	}
	if err != nil {
		fail("status", err)
	} else {
		st, perr := parseStatus(b)
		if row.Name == "" && len(st.name) > 0 {
			row.Name = string(st.name)
		}
		if row.State == "" && st.state != 0 {
			row.State = stateString(st.state)
		}
		row.VoluntaryCtxtSwitches = st.voluntary
		row.InvoluntaryCtxtSwitches = st.invol
		if perr != nil {
			errs = append(errs, perr.Error())
		} else {
			row.have |= haveStatus
		}
	}

	// A thread in state R is on a CPU or runnable: its syscall file says
	// "running" and its wchan "0" (the kernel reports neither for a
	// runnable task), so they are not read.
	if row.State == "R" && row.have&haveStat != 0 {
		decodeSyscall(row, syscallFields{running: true, nr: -1}, s.tab)
	} else if !s.readSyscallWchan(tk, row, &errs) {
		return false, true
	}

	// schedstat
	b, gone, err = s.pread(tk, fileSchedstat)
	if gone {
		return false, true
	}
	if err != nil {
		fail("schedstat", err)
	} else {
		v, perr := parseSchedstat(b)
		row.CPUNanos, row.RunDelayNanos, row.Timeslices = v[0], v[1], v[2]
		if perr != nil {
			errs = append(errs, perr.Error())
		} else {
			row.have |= haveSchedstat
		}
	}

	if len(errs) > 0 {
		row.Err = joinErrs(errs)
	}
	return true, false
}

// userHZ is the unit of the stat CPU times: USER_HZ is 100 on every Linux
// architecture Go supports.
const userHZ = 100

// stateString returns the one-letter state as a string without allocating
// (one-byte strings are static in the runtime).
func stateString(c byte) string {
	b := [1]byte{c}
	return string(b[:])
}

func joinErrs(errs []string) string { return strings.Join(errs, "; ") }

// readSyscallWchan reads the syscall and wchan files into row. It returns
// false when the thread has exited.
func (s *Scanner) readSyscallWchan(tk *task, row *Thread, errs *[]string) bool {
	b, gone, err := s.pread(tk, fileSyscall)
	if gone {
		return false
	}
	if err != nil {
		*errs = append(*errs, "syscall: "+err.Error())
	} else {
		sc, perr := parseSyscall(b)
		decodeSyscall(row, sc, s.tab)
		if perr != nil {
			*errs = append(*errs, perr.Error())
		}
	}

	// wchan: skipped when the system call already says what the thread
	// waits for; it would be the matching kernel function (futex_do_wait,
	// do_epoll_wait, hrtimer_nanosleep) and costs about 1.5 µs to read.
	if waitExplained(row) {
		return true
	}
	b, gone, err = s.pread(tk, fileWchan)
	if gone {
		return false
	}
	if err != nil {
		*errs = append(*errs, "wchan: "+err.Error())
	} else if w := parseWchan(b); w != nil {
		if string(w) != tk.wchan {
			tk.wchan = string(w)
		}
		row.Wchan = tk.wchan
	}

	return true
}
