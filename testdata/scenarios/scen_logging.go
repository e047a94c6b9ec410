package main

// Logging libraries writing to slow sinks: the logger's own lock is held
// across the write.

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	register(&scenario{name: "logrus", run: runLogrus,
		what: "16 main.handleRequest goroutines log with logrus to a sink that waits for a loopback TCP collector's ack (~1.5ms per entry); logrus's MutexWrap is held across the write"})
	register(&scenario{name: "stdlog", run: runStdlog,
		what: "a stdlib log.Logger shared by 16 main.handleRequestStd goroutines writes to a pipe (blocking fd, like a container's stderr) drained slowly; (*Logger).output holds outMu across write(2)"})
	register(&scenario{name: "zap", run: runZap,
		what: "zap with zapcore.Lock around an O_DSYNC file: 16 main.handleRequestZap goroutines; lockedWriteSyncer's embedded Mutex is held across a synchronous disk write"})
}

// ---- logrus ----

// ackSink is a log sink that sends each entry to a collector and waits for
// its acknowledgement, as a synchronous log shipper does.
type ackSink struct {
	conn  net.Conn
	ack   []byte
	times durations // how long each Write took (measured by the scenario)
}

//go:noinline
func (s *ackSink) Write(p []byte) (int, error) {
	t0 := time.Now()
	defer func() { s.times.add(time.Since(t0)) }()
	n, err := s.conn.Write(p)
	if err != nil {
		return n, err
	}
	if _, err := io.ReadFull(s.conn, s.ack); err != nil {
		return n, err
	}
	return n, nil
}

// logCollector acknowledges each line after latency: it is the remote
// collector (in this process, on loopback).
//
//go:noinline
func logCollector(conn net.Conn, latency time.Duration) {
	r := bufio.NewReader(conn)
	for {
		if _, err := r.ReadSlice('\n'); err != nil {
			return
		}
		time.Sleep(latency)
		if _, err := conn.Write([]byte("k")); err != nil {
			return
		}
	}
}

//go:noinline
func handleRequest(logger *logrus.Logger, id int, work int) {
	burnSHA(work)
	logger.WithFields(logrus.Fields{"req": id, "route": "/api/orders"}).Info("request served")
}

func runLogrus(h *H) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			logCollector(conn, 1500*time.Microsecond)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	logger := logrus.New()
	sink := &ackSink{conn: conn, ack: make([]byte, 1)}
	logger.Out = sink
	logger.Formatter = &logrus.TextFormatter{DisableColors: true}
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(50 * time.Microsecond)
	st := newStopper()
	var workers ids
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for n := 0; !st.stopped(); n++ {
				handleRequest(logger, n, work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (the lock is held nearly all the time: one entry at a time, ~1.5ms each)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "github.com/sirupsen/logrus.MutexWrap", Field: "(*Logger).mu (MutexWrap.lock)",
		Module: module("github.com/sirupsen/logrus"), Site: "github.com/sirupsen/logrus.(*Entry).log",
		Sites: []string{"github.com/sirupsen/logrus.(*Entry).log (reads ReportCaller; the first Lock on the path, where most waits happen)",
			"github.com/sirupsen/logrus.(*Entry).write (first Lock: reads Formatter)",
			"github.com/sirupsen/logrus.(*Entry).write (second Lock: held across Out.Write, the critical section that matters)"},
		Wrappers: []string{"github.com/sirupsen/logrus.(*mutexWrap).Lock", "github.com/sirupsen/logrus.(*mutexWrap).Unlock"}}
	e.Caller = "main.handleRequest"
	e.Waiters = &Waiters{Function: "main.handleRequest", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "github.com/sirupsen/logrus.(*Entry).write", Caller: "main.handleRequest", Did: "network-read",
		Inside: "net.(*conn).Read (io.ReadFull of the ack) in main.(*ackSink).Write, called by logrus (*Entry).write through Logger.Out",
		Hold:   "per entry, the sink's Write (measured): " + sink.times.summary(), GoroutineIDs: workers.list(), Rotating: true}
	e.Sleeps = "the collector peer (main.logCollector, same process, other goroutine) sleeps 1.5ms before each ack: that is the sink's latency; the holder does not sleep, it blocks on the network read"
	e.Notes = []string{
		"One MutexWrap, three Lock sites (lock.sites): waiters park mostly at the first one on their path, (*Entry).log, while the lock is held by another goroutine's (*Entry).write across the sink's Write; waits at all three sites are waits behind that write.",
		"Wrappers: the Lock frame under sync.(*Mutex).Lock is (*mutexWrap).Lock; the library function that takes the lock is (*Entry).write; the program's caller is main.handleRequest (via (*Entry).Info, (*Entry).Log).",
	}
	return nil
}

// ---- stdlog ----

// logShipper drains the pipe slowly, as a busy log collector reading a
// container's stderr does.
//
//go:noinline
func logShipper(r *os.File, chunk int, every time.Duration) {
	buf := make([]byte, chunk)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
		time.Sleep(every)
	}
}

//go:noinline
func handleRequestStd(logger *log.Logger, id int, work int) {
	burnSHA(work)
	logger.Printf("request %d served route=/api/orders status=200", id)
}

func runStdlog(h *H) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	// Fd puts w in blocking mode, as stderr usually is: a full pipe blocks
	// the writing thread in write(2).
	fd := w.Fd()
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, 1031 /* F_SETPIPE_SZ */, 4096); errno != 0 {
		return fmt.Errorf("F_SETPIPE_SZ: %v", errno)
	}
	go logShipper(r, 128, time.Millisecond)
	logger := log.New(w, "orders ", log.LstdFlags|log.Lmicroseconds)
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(50 * time.Microsecond)
	st := newStopper()
	var workers ids
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for n := 0; !st.stopped(); n++ {
				handleRequestStd(logger, n, work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (held nearly all the time)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "log.Logger", Field: "outMu", Module: "std", Site: "log.(*Logger).output"}
	e.Caller = "main.handleRequestStd"
	e.Waiters = &Waiters{Function: "main.handleRequestStd", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "log.(*Logger).output", Caller: "main.handleRequestStd", Did: "pipe-write-syscall",
		Inside: "os.(*File).Write -> write(2) on a full pipe (blocking fd), in log.(*Logger).output",
		Hold:   "~1ms per line on average, bursty (many short, some 10-25ms while the pipe is full)", GoroutineIDs: workers.list(), Rotating: true}
	e.Sleeps = "the pipe's reader (main.logShipper, other goroutine) sleeps 1ms per 128-byte read: the slow consumer; the holder does not sleep, its thread blocks in write(2)"
	e.Notes = []string{"The brief names main.handleRequest; the stdlib scenario's function is main.handleRequestStd (one binary holds every scenario)."}
	return nil
}

// ---- zap ----

//go:noinline
func handleRequestZap(logger *zap.Logger, id int, work int) {
	burnSHA(work)
	logger.Info("request served", zap.Int("req", id), zap.String("route", "/api/orders"))
}

func runZap(h *H) error {
	dir, err := os.MkdirTemp("", "scenario-zap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_DSYNC, 0o644)
	if err != nil {
		return err
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.Lock(f), zapcore.InfoLevel)
	logger := zap.New(core)
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(50 * time.Microsecond)
	st := newStopper()
	var workers ids
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for n := 0; !st.stopped(); n++ {
				handleRequestZap(logger, n, work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (held nearly all the time)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "go.uber.org/zap/zapcore.lockedWriteSyncer", Field: "(embedded sync.Mutex)",
		Module: module("go.uber.org/zap"), Site: "go.uber.org/zap/zapcore.(*lockedWriteSyncer).Write"}
	e.Caller = "main.handleRequestZap"
	e.Waiters = &Waiters{Function: "main.handleRequestZap", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "go.uber.org/zap/zapcore.(*lockedWriteSyncer).Write", Caller: "main.handleRequestZap", Did: "fsync-syscall",
		Inside: "os.(*File).Write -> write(2) on an O_DSYNC file (each write waits for the disk), in (*lockedWriteSyncer).Write",
		Hold:   "~0.2-0.6ms per entry on the reference VM (disk dependent)", GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{
		"The lock is the sync.Mutex embedded in lockedWriteSyncer: s.Lock() is the promoted method, so the Lock frame is sync.(*Mutex).Lock directly under (*lockedWriteSyncer).Write.",
		"Path: main.handleRequestZap -> zap.(*Logger).Info -> zapcore.(*CheckedEntry).Write -> zapcore.(*ioCore).Write -> (*lockedWriteSyncer).Write.",
	}
	return nil
}
