package diag

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	TraceMaxBytes uint64

	// NoTrace disables the flight recorder: snapshots carry profiles but
	// no execution trace.
	NoTrace bool

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
	// (about 8 times the window's size at its peak).
	MemoryMaxBytes int64

	// Rules are the lock-wait SLO rules that trigger automatic snapshots,
	// in the rule language (see the package doc). If empty, [DefaultRules]
	// are used. If "off", no rule is evaluated.
	Rules string

	// Warmup is how long after Start no rule triggers. If zero, 10s. If
	// negative, none.
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

	// GoroutineGuard is the goroutine count above which expensive
	// collections are skipped: the lock_waiters scan, the wall-clock
	// profile and the goroutine dumps. Each costs a few microseconds per
	// goroutine. If zero, 5000.
	GoroutineGuard int

	// LockWaitersInterval is how often lock_waiters is counted from a
	// goroutine profile. If zero, 1s. If negative, never.
	LockWaitersInterval time.Duration

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

// configJSON is Config as meta.json shows it: durations as strings.
type configJSON struct {
	Interval             string `json:"interval"`
	History              string `json:"history"`
	TraceWindow          string `json:"trace_window"`
	TraceMaxBytes        uint64 `json:"trace_max_bytes"`
	NoTrace              bool   `json:"no_trace"`
	MutexProfileFraction int    `json:"mutex_profile_fraction"`
	BlockProfileRate     int    `json:"block_profile_rate"`
	Dir                  string `json:"dir"`
	Keep                 int    `json:"keep"`
	MaxDisk              int64  `json:"max_disk"`
	MemoryKeep           int    `json:"memory_keep"`
	MemoryMaxBytes       int64  `json:"memory_max_bytes"`
	Rules                string `json:"rules"`
	Warmup               string `json:"warmup"`
	Cooldown             string `json:"cooldown"`
	Budget               int    `json:"budget"`
	WallProfile          string `json:"wall_profile"`
	GoroutineGuard       int    `json:"goroutine_guard"`
	LockWaitersInterval  string `json:"lock_waiters_interval"`
	ThreadsInterval      string `json:"threads_interval"`
	AnalysisBudget       string `json:"analysis_budget"`
}

// durations lists the duration fields of both forms, in one order.
func (c *Config) durations(j *configJSON) ([]*time.Duration, []*string) {
	return []*time.Duration{&c.Interval, &c.History, &c.TraceWindow, &c.Warmup, &c.Cooldown,
			&c.WallProfile, &c.LockWaitersInterval, &c.ThreadsInterval, &c.AnalysisBudget},
		[]*string{&j.Interval, &j.History, &j.TraceWindow, &j.Warmup, &j.Cooldown,
			&j.WallProfile, &j.LockWaitersInterval, &j.ThreadsInterval, &j.AnalysisBudget}
}

// MarshalJSON writes the configuration with durations as strings ("100ms").
func (c Config) MarshalJSON() ([]byte, error) {
	j := configJSON{
		TraceMaxBytes: c.TraceMaxBytes, NoTrace: c.NoTrace,
		MutexProfileFraction: c.MutexProfileFraction, BlockProfileRate: c.BlockProfileRate,
		Dir: c.Dir, Keep: c.Keep, MaxDisk: c.MaxDisk, MemoryKeep: c.MemoryKeep,
		MemoryMaxBytes: c.MemoryMaxBytes, Rules: c.Rules, Budget: c.Budget,
		GoroutineGuard: c.GoroutineGuard,
	}
	ds, ss := c.durations(&j)
	for i := range ds {
		*ss[i] = ds[i].String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes. The Logger is not part of
// it.
func (c *Config) UnmarshalJSON(data []byte) error {
	var j configJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*c = Config{
		TraceMaxBytes: j.TraceMaxBytes, NoTrace: j.NoTrace,
		MutexProfileFraction: j.MutexProfileFraction, BlockProfileRate: j.BlockProfileRate,
		Dir: j.Dir, Keep: j.Keep, MaxDisk: j.MaxDisk, MemoryKeep: j.MemoryKeep,
		MemoryMaxBytes: j.MemoryMaxBytes, Rules: j.Rules, Budget: j.Budget,
		GoroutineGuard: j.GoroutineGuard,
	}
	ds, ss := c.durations(&j)
	for i := range ds {
		if *ss[i] == "" {
			continue
		}
		d, err := time.ParseDuration(*ss[i])
		if err != nil {
			return fmt.Errorf("diag: config: %w", err)
		}
		*ds[i] = d
	}
	return nil
}

// DirOff is the [Config.Dir] value that keeps snapshots in memory only.
const DirOff = "off"

// RulesOff is the [Config.Rules] value that disables rules.
const RulesOff = "off"

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Interval, 100*time.Millisecond)
	if c.Interval < 10*time.Millisecond {
		c.Interval = 10 * time.Millisecond
	}
	def(&c.History, 5*time.Minute)
	def(&c.TraceWindow, 10*time.Second)
	if c.TraceMaxBytes == 0 {
		c.TraceMaxBytes = 10 << 20
	}
	if c.Dir == "" {
		c.Dir = defaultDir()
	}
	if c.Keep == 0 {
		c.Keep = 20
	}
	if c.MaxDisk == 0 {
		c.MaxDisk = 256 << 20
	}
	if c.MemoryKeep == 0 {
		c.MemoryKeep = 4
	}
	if c.MemoryMaxBytes == 0 {
		c.MemoryMaxBytes = 64 << 20
	}
	if c.Rules == "" {
		c.Rules = DefaultRules
	}
	def(&c.Warmup, 10*time.Second)
	def(&c.Cooldown, time.Minute)
	if c.Budget == 0 {
		c.Budget = 10
	}
	def(&c.WallProfile, time.Second)
	if c.GoroutineGuard == 0 {
		c.GoroutineGuard = 5000
	}
	def(&c.LockWaitersInterval, time.Second)
	def(&c.ThreadsInterval, time.Second)
	def(&c.AnalysisBudget, 5*time.Second)
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("diag: Config.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.History < c.Interval {
		bad("History", "%v is shorter than Interval %v", c.History, c.Interval)
	}
	if c.History/c.Interval > 1_000_000 {
		bad("History", "%v holds more than a million samples at Interval %v", c.History, c.Interval)
	}
	if c.TraceWindow < 0 {
		bad("TraceWindow", "negative (%v)", c.TraceWindow)
	}
	if c.BlockProfileRate < 0 {
		bad("BlockProfileRate", "negative (%d)", c.BlockProfileRate)
	}
	if c.Keep < 0 {
		bad("Keep", "negative (%d)", c.Keep)
	}
	if c.MaxDisk < 0 {
		bad("MaxDisk", "negative (%d)", c.MaxDisk)
	}
	if c.MemoryKeep < 0 {
		bad("MemoryKeep", "negative (%d)", c.MemoryKeep)
	}
	if c.MemoryMaxBytes < 0 {
		bad("MemoryMaxBytes", "negative (%d)", c.MemoryMaxBytes)
	}
	if c.GoroutineGuard < 0 {
		bad("GoroutineGuard", "negative (%d)", c.GoroutineGuard)
	}
	if c.AnalysisBudget < 0 {
		bad("AnalysisBudget", "negative (%v)", c.AnalysisBudget)
	}
	return errors.Join(errs...)
}

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
