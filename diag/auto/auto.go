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
//	/debug/locks/metrics                Prometheus text format
//
// # Environment
//
//	LOCKDIAG=off                  do nothing at all
//	LOCKDIAG_ADDR=host:port       own listener (default 127.0.0.1:6061; off disables)
//	LOCKDIAG_DEFAULT_MUX=off      do not register on http.DefaultServeMux
//	LOCKDIAG_TOKEN=secret         require "Authorization: Bearer secret"; allows non-loopback clients
//	LOCKDIAG_ALLOW_ORIGINS=a,b    extra origins whose pages may use POST and the stream
//
// plus the variables of [diag.ConfigFromEnv] (LOCKDIAG_SLO, LOCKDIAG_DIR,
// LOCKDIAG_INTERVAL, ...), listed by [diag.EnvVars].
//
// # Security
//
// Without a token the handlers answer loopback clients only, wherever they
// are mounted. Registering on http.DefaultServeMux exposes them wherever
// the program serves that mux: if it serves it on a public address, set
// LOCKDIAG_TOKEN or LOCKDIAG_DEFAULT_MUX=off.
package auto

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/httpdiag"
)

// DefaultAddr is the own listener's address when LOCKDIAG_ADDR is unset.
const DefaultAddr = "127.0.0.1:6061"

// The process-wide runtime that the import starts.
var (
	monitor *diag.Monitor
	addr    string
)

func init() {
	monitor, addr = start(os.LookupEnv, http.DefaultServeMux)
}

// Monitor returns the monitor the import started, or nil if it is
// disabled (LOCKDIAG=off) or could not start.
func Monitor() *diag.Monitor { return monitor }

// Addr returns the address the own listener is bound to, or "" if there
// is none.
func Addr() string { return addr }

// settings are the variables of this package, beside diag's.
type settings struct {
	off          bool
	addr         string
	defaultMux   bool
	token        string
	allowOrigins []string
}

func readSettings(lookup func(string) (string, bool)) (settings, error) {
	s := settings{addr: DefaultAddr, defaultMux: true}
	var errs []error
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	switch v := strings.ToLower(get("LOCKDIAG")); v {
	case "", "on", "1", "true":
	case "off", "0", "false":
		s.off = true
	default:
		errs = append(errs, fmt.Errorf("diag: LOCKDIAG=%q: must be on or off; using on", v))
	}
	if v := get("LOCKDIAG_ADDR"); v != "" {
		if v == "off" {
			s.addr = ""
		} else if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("diag: LOCKDIAG_ADDR=%q: must be host:port or off (%v); using %s", v, err, DefaultAddr))
		} else {
			s.addr = v
		}
	}
	switch v := strings.ToLower(get("LOCKDIAG_DEFAULT_MUX")); v {
	case "", "on", "1", "true":
	case "off", "0", "false":
		s.defaultMux = false
	default:
		errs = append(errs, fmt.Errorf("diag: LOCKDIAG_DEFAULT_MUX=%q: must be on or off; using on", v))
	}
	s.token = get("LOCKDIAG_TOKEN")
	if v := get("LOCKDIAG_ALLOW_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				s.allowOrigins = append(s.allowOrigins, o)
			}
		}
	}
	return s, errors.Join(errs...)
}

// start does the work of init; it never fails the program. It returns the
// running monitor and the own listener's address.
func start(lookup func(string) (string, bool), mux *http.ServeMux) (*diag.Monitor, string) {
	s, serr := readSettings(lookup)
	if s.off {
		return nil, ""
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
	m, err := diag.New(cfg)
	if err != nil {
		log.Error("diag: not started", "err", err)
		return nil, ""
	}
	if err := m.Start(); err != nil {
		log.Error("diag: not started", "err", err)
		return nil, ""
	}
	opts := httpdiag.Options{Token: s.token, AllowOrigins: s.allowOrigins}
	where := []string{}
	bound := ""
	if s.addr != "" {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			log.Error("diag: own listener not started; /debug/locks is only on the program's own server", "addr", s.addr, "err", err)
		} else {
			bound = ln.Addr().String()
			srv := &http.Server{
				Handler:           ownMux(m, opts),
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       2 * time.Minute,
			}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("diag: own listener stopped", "err", err)
				}
			}()
			where = append(where, "http://"+bound+httpdiag.Prefix)
		}
	}
	if s.defaultMux && mux != nil {
		if err := httpdiag.Register(mux, m, opts); err != nil {
			log.Error("diag: not registered on http.DefaultServeMux", "err", err)
		} else {
			where = append(where, "http.DefaultServeMux")
		}
	}
	if len(where) == 0 {
		where = append(where, "no HTTP endpoint (LOCKDIAG_ADDR=off and LOCKDIAG_DEFAULT_MUX=off)")
	}
	log.Info("lockdiag: watching lock contention; status at " + strings.Join(where, " and "))
	return m, bound
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
