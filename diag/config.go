package diag

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"encoding/json"

	"github.com/lockdiag/lockdiag/internal/knobs"
)

// Config configures a [Monitor]. The zero value gives working defaults;
// every field says what its zero value means.
type Config struct {
	// Interval is how often the cheap signals (runtime/metrics) are
	// sampled and the rules evaluated. If zero, 100ms is used. Values
	// below 10ms are raised to 10ms.
	Interval time.Duration

	// History is how much of the signal timeline is kept in memory. If
	// zero, 5 minutes is used.
	History time.Duration

	// TraceWindow is how far back a snapshot's execution trace reaches
	// (the flight recorder's minimum age). If zero, 10s is used.
	TraceWindow time.Duration

	// TraceMaxBytes bounds the flight recorder's window. It is a hint: a
	// window can exceed it by about one second of trace. If zero, 10 MiB
	// is used.
	TraceMaxBytes int64

	// Trace is the trace mode: TraceAuto (the default, when empty),
	// TraceOn, TraceArmed or TraceOff. The always-on execution tracer
	// costs in proportion to the goroutine scheduling it records: nothing
	// measurable for most services, 10-20% for event-dense ones. Auto
	// records always when that costs less than TraceBudget, and arms the
	// recorder otherwise: off in steady state, started at an early
	// warning, so that a snapshot holds the incident as it goes on.
	Trace string

	// TraceBudget is the share of this process's CPU that the recorder
	// may cost in TraceAuto mode, estimated from the scheduling rate. If
	// zero, 0.01 (1%).
	TraceBudget float64

	// MutexProfileFraction is the rate passed to
	// [runtime.SetMutexProfileFraction] while the monitor runs: on
	// average 1 in MutexProfileFraction contention events is recorded.
	// If zero, 100 is used, unless the host program already set a rate,
	// which is then left alone. If negative, the runtime's setting is
	// never touched. The previous rate is restored by Stop.
	MutexProfileFraction int

	// BlockProfileRate, if positive, is passed to
	// [runtime.SetBlockProfileRate] (nanoseconds; 10000 samples blocks
	// of 10µs and longer and shorter ones proportionally), and the rate is
	// set back to 0 by Stop: the runtime has no getter, so the monitor
	// then owns the setting. If zero, block profiling is left as it is and
	// snapshots carry no block profile; the trace shows the wait sites.
	BlockProfileRate int

	// Dir is where snapshots are written, as <id>.zip. If empty, a
	// directory named after the program under [os.TempDir] is used. If
	// "off", snapshots are kept in memory only.
	Dir string

	// Keep is how many snapshots are kept on disk; older ones are
	// removed. If zero, 20.
	Keep int

	// MaxDisk bounds the bytes of snapshots on disk. If zero, 256 MiB.
	MaxDisk int64

	// MemoryKeep is how many snapshots are kept in memory; older ones are
	// served from disk. If zero, 4.
	MemoryKeep int

	// MemoryMaxBytes bounds the bytes of snapshots kept in memory
	// (compressed). If zero, 64 MiB. Taking a snapshot needs more for a
	// moment: the trace window, its parse and the bundle being built
	// (about 2.8 times the window's size at its peak, measured; the soft
	// memory limit is lowered to 3 windows above use while it runs).
	MemoryMaxBytes int64

	// Rules are the lock-wait SLO rules that trigger automatic snapshots,
	// in the rule language (see the package doc). If empty, [DefaultRules]
	// are used. If "off", no rule is evaluated.
	Rules string

	// Warmup is how long after Start no baseline rule triggers. If zero,
	// 10s. If negative, none.
	Warmup time.Duration

	// Cooldown is the least time between two automatic snapshots of one
	// rule. If zero, 1 minute. If negative, none.
	Cooldown time.Duration

	// Budget is the most automatic snapshots in any hour, across rules.
	// If zero, 10. If negative, no limit.
	Budget int

	// WallProfile is how long the wall-clock profile (fgprof) of an
	// automatic snapshot runs, after the trigger. If zero, 1s. If
	// negative, no wall-clock profile is taken.
	WallProfile time.Duration

	// GoroutineGuard is the goroutine count above which the snapshot's
	// costly collections are skipped: the wall-clock profile (fgprof,
	// about 1.5µs per goroutine 99 times a second) and the full goroutine
	// dump (debug=2, which stops the world for about 6µs per goroutine;
	// a snapshot of a stuck lock takes it up to ten times the guard, as
	// naming the holder needs it). If zero, 5000.
	GoroutineGuard int

	// LockWaitersInterval is the least time between two goroutine scans
	// (lock_waiters, stuck_waiters); scans come further apart when
	// ScanCPU requires it. If zero, 1s. If negative, never.
	LockWaitersInterval time.Duration

	// ScanCPU is the share of one CPU the goroutine scans may use on
	// average (about a microsecond per goroutine each): at 100k
	// goroutines, 0.005 means a scan every 20s in steady state, with
	// early scans when goroutines start to pile up. If zero, 0.005.
	// Reading the named locks (package locks, about 0.5µs per lock with
	// its summary), every Interval otherwise, is held to the same share.
	ScanCPU float64

	// StuckAfter is how long goroutines must stay parked at a lock site
	// that makes no progress for them to count in stuck_waiters. For a
	// named lock (package locks), whose state is exact, it is how long
	// its current hold must have lasted while goroutines wait for it (or
	// how long they must have waited with nobody acquiring it). If zero,
	// 2s.
	StuckAfter time.Duration

	// ThreadsInterval is how often /proc/self/task is scanned for the
	// thread signals (Linux). If zero, 1s. If negative, never.
	ThreadsInterval time.Duration

	// AnalysisBudget bounds the time spent analysing a snapshot's trace;
	// when it runs out the report is marked partial. If zero, 5s.
	AnalysisBudget time.Duration

	// Logger receives breaches, snapshots and errors. If nil, nothing is
	// logged.
	Logger *slog.Logger `json:"-"`
}

// DirOff is the [Config.Dir] value that keeps snapshots in memory only.
const DirOff = "off"

// RulesOff is the [Config.Rules] value that disables rules.
const RulesOff = "off"

// settings is the one table of the configuration: for every field, its
// environment variable, default, rule and JSON name. Defaults, checks,
// [ConfigFromEnv], [EnvVars], meta.json and the README's table (a test
// compares them) all come from it.
var settings = knobs.Table[Config]{
	knobs.Duration("LOCKDIAG_INTERVAL", "interval", "how often the cheap signals are sampled and rules evaluated",
		func(c *Config) *time.Duration { return &c.Interval }, 100*time.Millisecond, 10*time.Millisecond, time.Minute, false),
	knobs.Duration("LOCKDIAG_HISTORY", "history", "how much signal timeline is kept in memory",
		func(c *Config) *time.Duration { return &c.History }, 5*time.Minute, time.Second, 24*time.Hour, false),
	knobs.String("LOCKDIAG_TRACE", "trace", TraceAuto, "trace mode: auto (on when it costs under LOCKDIAG_TRACE_BUDGET, else armed), on, armed (off until an early warning) or off",
		func(c *Config) *string { return &c.Trace }, func() string { return TraceAuto },
		func(v string) error { _, err := parseTraceMode(v); return err }),
	knobs.Custom("LOCKDIAG_TRACE_BUDGET", "trace_budget", "1%", "share of the process's CPU the always-on recorder may cost in auto mode",
		func(c *Config, v string) error {
			f, err := knobs.ParseShare(v, 0.0001, 1)
			c.TraceBudget = f
			return err
		}, func(c *Config) {
			if c.TraceBudget == 0 {
				c.TraceBudget = 0.01
			}
		}, func(c *Config) any { return c.TraceBudget },
		func(c *Config, raw []byte) error { return json.Unmarshal(raw, &c.TraceBudget) }),
	knobs.Duration("LOCKDIAG_TRACE_WINDOW", "trace_window", "how far back a snapshot's trace reaches",
		func(c *Config) *time.Duration { return &c.TraceWindow }, 10*time.Second, time.Second, 10*time.Minute, false),
	knobs.Size("LOCKDIAG_TRACE_MAX_BYTES", "trace_max_bytes", "bound on the trace window's size (a hint: one more second of trace can be over it)",
		func(c *Config) *int64 { return &c.TraceMaxBytes }, 10<<20, 1<<20, 1<<30),
	knobs.Custom("LOCKDIAG_MUTEX_FRACTION", "mutex_profile_fraction", "100",
		"mutex profile fraction while running (unless the program set one); off leaves the runtime alone",
		func(c *Config, v string) error {
			if v == knobs.Off {
				c.MutexProfileFraction = -1
				return nil
			}
			n, err := knobs.ParseInt(v, 1, 1_000_000)
			c.MutexProfileFraction = n
			return err
		}, nil, func(c *Config) any { return c.MutexProfileFraction },
		func(c *Config, raw []byte) error { return jsonInt(raw, &c.MutexProfileFraction) }),
	knobs.Custom("LOCKDIAG_BLOCK_RATE", "block_profile_rate", "off",
		"block profile rate as a duration (e.g. 10us); lockdiag then owns the setting",
		func(c *Config, v string) error {
			if v == knobs.Off || v == "0" {
				c.BlockProfileRate = 0
				return nil
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Nanosecond || d > time.Second {
				return errors.New("must be between 1ns and 1s, or off")
			}
			c.BlockProfileRate = int(d)
			return nil
		}, nil, func(c *Config) any { return c.BlockProfileRate },
		func(c *Config, raw []byte) error { return jsonInt(raw, &c.BlockProfileRate) }),
	knobs.String("LOCKDIAG_SLO", "rules", "the default rules", "lock-wait rules separated by ';', or off",
		func(c *Config) *string { return &c.Rules }, func() string { return DefaultRules },
		func(v string) error { _, err := parseRules(v); return err }),
	knobs.Duration("LOCKDIAG_WARMUP", "warmup", "no baseline rule triggers this long after start; off for none",
		func(c *Config) *time.Duration { return &c.Warmup }, 10*time.Second, time.Millisecond, time.Hour, true),
	knobs.Duration("LOCKDIAG_COOLDOWN", "cooldown", "least time between automatic snapshots of one rule; off for none",
		func(c *Config) *time.Duration { return &c.Cooldown }, time.Minute, time.Millisecond, 24*time.Hour, true),
	knobs.Int("LOCKDIAG_BUDGET", "budget", "most automatic snapshots per hour; off for no limit",
		func(c *Config) *int { return &c.Budget }, 10, 1, 3600, true, -1),
	knobs.Duration("LOCKDIAG_WALL", "wall_profile", "wall-clock profile length after an automatic trigger; off disables",
		func(c *Config) *time.Duration { return &c.WallProfile }, time.Second, 10*time.Millisecond, 30*time.Second, true),
	knobs.Int("LOCKDIAG_GOROUTINE_GUARD", "goroutine_guard", "above this many goroutines, a snapshot skips the wall-clock profile and the full goroutine dump",
		func(c *Config) *int { return &c.GoroutineGuard }, 5000, 1, 100_000_000, false, 0),
	knobs.Duration("LOCKDIAG_WAITERS_INTERVAL", "lock_waiters_interval", "least time between goroutine scans (lock_waiters, stuck_waiters); off disables them",
		func(c *Config) *time.Duration { return &c.LockWaitersInterval }, time.Second, 10*time.Millisecond, time.Hour, true),
	knobs.Custom("LOCKDIAG_SCAN_CPU", "scan_cpu", "0.5%", "share of one CPU the goroutine scans may use, e.g. 0.5% or 0.005",
		func(c *Config, v string) error {
			f, err := knobs.ParseShare(v, 0.0001, 0.5)
			c.ScanCPU = f
			return err
		}, func(c *Config) {
			if c.ScanCPU == 0 {
				c.ScanCPU = 0.005
			}
		}, func(c *Config) any { return c.ScanCPU },
		func(c *Config, raw []byte) error { return json.Unmarshal(raw, &c.ScanCPU) }),
	knobs.Duration("LOCKDIAG_STUCK_AFTER", "stuck_after", "how long a lock site may make no progress before its goroutines count as stuck (a named lock: how long its hold may last while goroutines wait)",
		func(c *Config) *time.Duration { return &c.StuckAfter }, 2*time.Second, 100*time.Millisecond, 10*time.Minute, false),
	knobs.Duration("LOCKDIAG_THREADS_INTERVAL", "threads_interval", "how often /proc/self/task is scanned (Linux); off disables",
		func(c *Config) *time.Duration { return &c.ThreadsInterval }, time.Second, 10*time.Millisecond, time.Hour, true),
	knobs.String("LOCKDIAG_DIR", "dir", "$TMPDIR/lockdiag-<program>", "where snapshots are written; off keeps them in memory only",
		func(c *Config) *string { return &c.Dir }, defaultDir, nil),
	knobs.Int("LOCKDIAG_KEEP", "keep", "snapshots kept on disk",
		func(c *Config) *int { return &c.Keep }, 20, 1, 100_000, false, 0),
	knobs.Size("LOCKDIAG_MAX_DISK", "max_disk", "bytes of snapshots kept on disk",
		func(c *Config) *int64 { return &c.MaxDisk }, 256<<20, 1<<20, 1<<40),
	knobs.Int("LOCKDIAG_MEMORY_KEEP", "memory_keep", "snapshots kept in memory",
		func(c *Config) *int { return &c.MemoryKeep }, 4, 1, 1000, false, 0),
	knobs.Size("LOCKDIAG_MEMORY_MAX", "memory_max_bytes", "bytes of snapshots kept in memory",
		func(c *Config) *int64 { return &c.MemoryMaxBytes }, 64<<20, 1<<20, 1<<34),
	knobs.Duration("LOCKDIAG_ANALYSIS_BUDGET", "analysis_budget", "time limit of a snapshot's trace analysis",
		func(c *Config) *time.Duration { return &c.AnalysisBudget }, 5*time.Second, 100*time.Millisecond, 5*time.Minute, false),
	knobs.Custom("LOCKDIAG_LOG", "", "info", "log level on stderr: debug, info, warn, error or off",
		func(c *Config, v string) error {
			l, err := parseLogLevel(v)
			if err == nil {
				c.Logger = newStderrLogger(l)
			}
			return err
		}, nil, nil, nil),
}

func (c Config) withDefaults() Config {
	settings.Defaults(&c)
	c.Interval = max(c.Interval, 10*time.Millisecond)
	return c
}

func (c Config) validate() error {
	errs := []error{settings.Check(&c, "diag: Config.")}
	if _, err := parseTraceMode(c.Trace); err != nil {
		errs = append(errs, fmt.Errorf("diag: Config.Trace: %q %v", c.Trace, err))
	}
	if c.TraceBudget < 0 || c.TraceBudget > 1 {
		errs = append(errs, fmt.Errorf("diag: Config.TraceBudget: %v is not a share of the CPU (0 to 1)", c.TraceBudget))
	}
	if c.ScanCPU < 0 || c.ScanCPU > 1 {
		errs = append(errs, fmt.Errorf("diag: Config.ScanCPU: %v is not a share of a CPU (0 to 1)", c.ScanCPU))
	}
	if c.BlockProfileRate < 0 {
		errs = append(errs, fmt.Errorf("diag: Config.BlockProfileRate: negative (%d)", c.BlockProfileRate))
	}
	if c.History < c.Interval {
		errs = append(errs, fmt.Errorf("diag: Config.History: %v is shorter than Interval %v", c.History, c.Interval))
	}
	if c.History/c.Interval > 1_000_000 {
		errs = append(errs, fmt.Errorf("diag: Config.History: %v holds more than a million samples at Interval %v", c.History, c.Interval))
	}
	return errors.Join(errs...)
}

// MarshalJSON writes the configuration as meta.json shows it, durations
// as strings ("100ms") and "off" for what is off. The Logger is not part
// of it.
func (c Config) MarshalJSON() ([]byte, error) { return settings.Encode(&c) }

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Config) UnmarshalJSON(data []byte) error {
	*c = Config{}
	if err := settings.Decode(c, data); err != nil {
		return fmt.Errorf("diag: config: %w", err)
	}
	return nil
}

// EnvVar describes one environment variable that [ConfigFromEnv] reads.
type EnvVar struct {
	Name    string
	Default string
	Help    string
}

// EnvVars lists the variables [ConfigFromEnv] reads, for documentation
// and help output.
func EnvVars() []EnvVar {
	out := make([]EnvVar, len(settings))
	for i, k := range settings {
		out[i] = EnvVar{k.Env, k.Default, k.Help}
	}
	return out
}

// ConfigFromEnv builds a Config from the LOCKDIAG_* environment variables
// (see [EnvVars]). Unset variables leave their field at the default. A
// malformed value is reported in the returned error, which names the
// variable and the rule, and its field keeps the default: the returned
// Config is always usable. Logging goes to stderr at LOCKDIAG_LOG's level
// (info when unset).
func ConfigFromEnv() (Config, error) {
	return configFrom(os.LookupEnv)
}

func configFrom(lookup func(string) (string, bool)) (Config, error) {
	c := Config{Logger: newStderrLogger(slog.LevelInfo)}
	err := settings.FromEnv(&c, lookup, "diag: ")
	return c, err
}

func newStderrLogger(level slog.Level) *slog.Logger {
	if level > slog.LevelError {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func parseLogLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "off", "none":
		return slog.LevelError + 1, nil
	}
	return 0, errors.New("must be debug, info, warn, error or off")
}

func jsonInt(raw []byte, n *int) error { return json.Unmarshal(raw, n) }

// defaultDir is $TMPDIR/lockdiag-<program>: snapshots of one program
// survive its restarts and stay apart from other programs'.
func defaultDir() string {
	name := "process"
	if exe, err := os.Executable(); err == nil {
		name = strings.TrimSuffix(filepath.Base(exe), ".exe")
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	return filepath.Join(os.TempDir(), "lockdiag-"+name)
}
