// Package auto starts lockdiag when it is imported:
//
//	import _ "github.com/lockdiag/lockdiag/diag/auto"
//
// At init it builds a [diag.Config] from the LOCKDIAG_* environment
// variables, starts a [diag.Monitor], registers the /debug/locks handlers
// on [http.DefaultServeMux] (as net/http/pprof does) and serves them on
// its own loopback listener, 127.0.0.1:6061 by default. One log line says
// where. Nothing here can fail the program: a busy port, a bad variable or
// a flight recorder already in use is logged and lockdiag carries on
// without that part.
//
// If the program does not serve http.DefaultServeMux itself, the own
// listener is enough. If it does, the handlers are also reachable there:
//
//	go func() {
//		log.Println(http.ListenAndServe("localhost:6060", nil))
//	}()
//
// # Paths
//
//	/debug/locks                        status: signals, rules, where goroutines wait now
//	/debug/locks/snapshots              list (GET), take one now (POST)
//	/debug/locks/snapshots/{id}         report; id may be "latest"
//	/debug/locks/snapshots/{id}.zip     bundle: trace.out, mutex.pb.gz, report.txt, ...
//	/debug/locks/snapshots/{id}/{file}  one file of the bundle
//	/debug/locks/metrics                Prometheus metrics (package promdiag), text or OpenMetrics
//	/debug/locks/pprof/                 mutex, block, goroutine, goroutineleak (Go >= 1.27) profiles
//	                                    as net/http/pprof serves them (?seconds=N deltas), and
//	                                    trace?seconds=N, the flight recorder's window
//	/debug/locks/ui                     the live page
//	/debug/locks/stream                 websocket of samples, breaches and snapshots
//
// # Environment
//
//	LOCKDIAG=off                  do nothing at all
//	LOCKDIAG_ADDR=host:port       own listener (default 127.0.0.1:6061; off disables)
//	LOCKDIAG_DEFAULT_MUX=off      do not register on http.DefaultServeMux
//	LOCKDIAG_TOKEN=secret         require "Authorization: Bearer secret"; allows non-loopback clients
//	LOCKDIAG_ALLOW_ORIGINS=a,b    extra origins whose pages may use POST and the stream
//	LOCKDIAG_LOCK_ORDER=on        lock-order check for named locks (package locks): inversions in
//	                              the status, the stream and the reports
//
// plus the variables of [diag.ConfigFromEnv] (LOCKDIAG_SLO, LOCKDIAG_DIR,
// LOCKDIAG_INTERVAL, ...), listed by [diag.EnvVars].
//
// # Lifetime
//
// The monitor and the own listener run for the life of the process. [Stop]
// stops both, for a program that wants to end them before it exits (or a
// test): it closes the listener, waits for its connections to finish (up to
// a few seconds) and stops the monitor. A stopped runtime is not restarted.
//
// # The flight recorder
//
// The runtime allows one flight recorder per process
// ([runtime/trace.FlightRecorder]). The import starts it at init, before
// main: a program's own trace.NewFlightRecorder(...).Start() then fails
// with "flight recorder already enabled". A program that wants the recent
// trace (to dump it on overload, say) writes the current window through
// lockdiag instead, which shares the write with lockdiag's own snapshots:
//
//	var buf bytes.Buffer
//	if _, err := auto.Monitor().WriteTrace(ctx, &buf); err != nil {
//		return err // lockdiag is off, or records no trace: the error says why
//	}
//
// GET /debug/locks/pprof/trace?seconds=N serves the same window over HTTP.
// If the program started its own flight recorder before the import's init
// ran (from a package initialized earlier), lockdiag runs without a trace
// and its status and every report say so; LOCKDIAG_TRACE=off leaves the
// recorder to the program from the start. runtime/trace.Start (what
// net/http/pprof's /debug/pprof/trace uses) works beside either.
//
// # Metrics
//
// /debug/locks/metrics serves package promdiag's collector on a registry of
// its own. A program with its own Prometheus registry registers the same
// collector there instead: reg.MustRegister(promdiag.NewCollector(auto.Monitor())).
// The import links github.com/prometheus/client_golang for this; programs
// that wire diag and httpdiag themselves do not.
//
// # Security
//
// Without a token the handlers answer loopback clients only, wherever they
// are mounted. Registering on http.DefaultServeMux exposes them wherever
// the program serves that mux: if it serves it on a public address, set
// LOCKDIAG_TOKEN or LOCKDIAG_DEFAULT_MUX=off.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
	"github.com/lockdiag/lockdiag/internal/knobs"
	"github.com/lockdiag/lockdiag/locks"
	"github.com/lockdiag/lockdiag/promdiag"
)

// DefaultAddr is the own listener's address when LOCKDIAG_ADDR is unset.
const DefaultAddr = "127.0.0.1:6061"

// The process-wide runtime that the import starts.
var std *autoRuntime

func init() {
	std = start(os.LookupEnv, http.DefaultServeMux)
}

// Monitor returns the monitor the import started, or nil if it is
// disabled (LOCKDIAG=off) or could not start.
func Monitor() *diag.Monitor { return std.monitor }

// Addr returns the address the own listener is bound to, or "" if there
// is none.
func Addr() string { return std.addr }

// Stop stops the own listener (waiting up to 5s for its requests to end)
// and the monitor. It is safe to call more than once.
func Stop() { std.stop() }

// autoRuntime is what the import started.
type autoRuntime struct {
	monitor *diag.Monitor
	addr    string
	srv     *http.Server
	done    chan struct{} // closed when the server's goroutine has exited
	once    sync.Once
}

func (r *autoRuntime) stop() {
	r.once.Do(func() {
		if r.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if r.srv.Shutdown(ctx) != nil {
				r.srv.Close()
			}
			<-r.done
		}
		if r.monitor != nil {
			r.monitor.Stop()
		}
	})
}

// settings are the variables of this package, beside diag's.
type settings struct {
	off          bool
	addr         string
	defaultMux   bool
	token        string
	allowOrigins []string
	// lockOrder is LOCKDIAG_LOCK_ORDER, when set.
	lockOrderSet, lockOrder bool
}

// table is the one description of this package's variables.
var table = knobs.Table[settings]{
	knobs.Custom("LOCKDIAG", "", "on", "off disables lockdiag entirely",
		func(s *settings, v string) error {
			on, err := knobs.ParseSwitch(v)
			s.off = !on
			return err
		}, nil, nil, nil),
	knobs.Custom("LOCKDIAG_ADDR", "", DefaultAddr, "lockdiag's own listener; off disables it (a busy port is logged, never fatal)",
		func(s *settings, v string) error {
			if v == knobs.Off {
				s.addr = ""
				return nil
			}
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port or off (%v)", err)
			}
			s.addr = v
			return nil
		}, nil, nil, nil),
	knobs.Custom("LOCKDIAG_DEFAULT_MUX", "", "on", "also register on http.DefaultServeMux, as net/http/pprof does",
		func(s *settings, v string) error {
			on, err := knobs.ParseSwitch(v)
			s.defaultMux = on
			return err
		}, nil, nil, nil),
	knobs.Custom("LOCKDIAG_TOKEN", "", "", "require Authorization: Bearer TOKEN; lets non-loopback clients in",
		func(s *settings, v string) error { s.token = v; return nil }, nil, nil, nil),
	knobs.Custom("LOCKDIAG_ALLOW_ORIGINS", "", "", "extra origins whose pages may POST and open the stream",
		func(s *settings, v string) error {
			s.allowOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					s.allowOrigins = append(s.allowOrigins, o)
				}
			}
			return nil
		}, nil, nil, nil),
	knobs.Custom("LOCKDIAG_LOCK_ORDER", "", "off",
		"package locks' lock-order check for named locks: on reports lock-order inversions (potential deadlocks) before they hang; it costs on every named Lock",
		func(s *settings, v string) error {
			on, err := knobs.ParseSwitch(v)
			s.lockOrderSet, s.lockOrder = err == nil, on
			return err
		}, nil, nil, nil),
}

func readSettings(lookup func(string) (string, bool)) (settings, error) {
	s := settings{addr: DefaultAddr, defaultMux: true}
	err := table.FromEnv(&s, lookup, "diag: ")
	return s, err
}

// start does the work of init; it never fails the program.
func start(lookup func(string) (string, bool), mux *http.ServeMux) *autoRuntime {
	s, serr := readSettings(lookup)
	if s.off {
		return &autoRuntime{}
	}
	cfg, cerr := diag.ConfigFromEnv()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, err := range []error{serr, cerr} {
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				log.Error(line)
			}
		}
	}
	if s.lockOrderSet {
		// Package locks reads the variable itself too, when the first
		// lock is named; set here, a malformed value is logged and the
		// check is on before main runs.
		if err := locks.SetOrderCheck(s.lockOrder); err != nil {
			log.Error("diag: LOCKDIAG_LOCK_ORDER: the lock-order check stays off", "err", err)
		} else if s.lockOrder {
			log.Info("lockdiag: lock-order check on for named locks (LOCKDIAG_LOCK_ORDER=on)")
		}
	}
	m, err := diag.New(cfg)
	if err != nil {
		log.Error("diag: not started", "err", err)
		return &autoRuntime{}
	}
	if err := m.Start(); err != nil {
		log.Error("diag: not started", "err", err)
		return &autoRuntime{}
	}
	rt := &autoRuntime{monitor: m}
	opts := httpdiag.Options{Token: s.token, AllowOrigins: s.allowOrigins, Metrics: promdiag.Handler(m)}
	var where []string
	if s.addr != "" {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			log.Error("diag: own listener not started; /debug/locks is only on the program's own server", "addr", s.addr, "err", err)
		} else {
			rt.addr = ln.Addr().String()
			rt.srv = &http.Server{
				Handler:           ownMux(m, opts),
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       2 * time.Minute,
			}
			rt.done = make(chan struct{})
			go func(srv *http.Server, done chan struct{}) {
				defer close(done)
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("diag: own listener stopped", "err", err)
				}
			}(rt.srv, rt.done)
			where = append(where, "http://"+rt.addr+httpdiag.Prefix+" (live page: "+httpdiag.Prefix+"/ui)")
		}
	}
	if s.defaultMux && mux != nil {
		if err := httpdiag.Register(mux, m, opts); err != nil {
			log.Error("diag: not registered on http.DefaultServeMux", "err", err)
		} else {
			where = append(where, httpdiag.Prefix+" on the program's own HTTP server too, where it serves net/http's default mux (as with http.ListenAndServe(addr, nil))")
		}
	}
	if len(where) == 0 {
		where = append(where, "no HTTP endpoint (LOCKDIAG_ADDR=off and LOCKDIAG_DEFAULT_MUX=off)")
	}
	log.Info("lockdiag: watching lock contention; status at " + strings.Join(where, " and "))
	return rt
}

func ownMux(m *diag.Monitor, opts httpdiag.Options) http.Handler {
	mux := http.NewServeMux()
	h := httpdiag.Handler(m, opts)
	mux.Handle(httpdiag.Prefix, h)
	mux.Handle(httpdiag.Prefix+"/", h)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpdiag.Prefix, http.StatusFound)
	})
	return mux
}
