package diag

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvVar describes one environment variable that [ConfigFromEnv] reads.
type EnvVar struct {
	Name    string
	Default string
	Help    string
	set     func(c *Config, v string) error
}

// EnvVars lists the variables [ConfigFromEnv] reads, for documentation
// and help output.
func EnvVars() []EnvVar { return envVars }

var envVars = []EnvVar{
	{"LOCKDIAG_INTERVAL", "100ms", "how often the cheap signals are sampled and rules evaluated",
		func(c *Config, v string) error { return setDuration(&c.Interval, v, 10*time.Millisecond, time.Minute) }},
	{"LOCKDIAG_HISTORY", "5m", "how much signal timeline is kept in memory",
		func(c *Config, v string) error { return setDuration(&c.History, v, time.Second, 24*time.Hour) }},
	{"LOCKDIAG_TRACE", "on", "off runs without the execution-trace flight recorder",
		func(c *Config, v string) error {
			on, err := parseSwitch(v)
			c.NoTrace = !on
			return err
		}},
	{"LOCKDIAG_TRACE_WINDOW", "10s", "how far back a snapshot's trace reaches",
		func(c *Config, v string) error { return setDuration(&c.TraceWindow, v, time.Second, 10*time.Minute) }},
	{"LOCKDIAG_TRACE_MAX_BYTES", "10MiB", "bound on the trace window's size (a hint)",
		func(c *Config, v string) error {
			n, err := parseSize(v, 1<<20, 1<<30)
			c.TraceMaxBytes = uint64(n)
			return err
		}},
	{"LOCKDIAG_MUTEX_FRACTION", "100", "mutex profile fraction while running (unless the program set one); off leaves the runtime alone",
		func(c *Config, v string) error {
			if v == "off" {
				c.MutexProfileFraction = -1
				return nil
			}
			return setInt(&c.MutexProfileFraction, v, 1, 1_000_000)
		}},
	{"LOCKDIAG_BLOCK_RATE", "off", "block profile rate as a duration (e.g. 10us); lockdiag then owns the setting",
		func(c *Config, v string) error {
			if v == "off" || v == "0" {
				c.BlockProfileRate = 0
				return nil
			}
			var d time.Duration
			if err := setDuration(&d, v, time.Nanosecond, time.Second); err != nil {
				return err
			}
			c.BlockProfileRate = int(d)
			return nil
		}},
	{"LOCKDIAG_SLO", "(see DefaultRules)", "lock-wait rules separated by ';', or off",
		func(c *Config, v string) error {
			if v != RulesOff {
				if _, err := parseRules(v); err != nil {
					return err
				}
			}
			c.Rules = v
			return nil
		}},
	{"LOCKDIAG_WARMUP", "10s", "no rule triggers this long after start",
		func(c *Config, v string) error { return setDuration(&c.Warmup, v, 0, time.Hour) }},
	{"LOCKDIAG_COOLDOWN", "1m", "least time between automatic snapshots of one rule",
		func(c *Config, v string) error { return setDuration(&c.Cooldown, v, 0, 24*time.Hour) }},
	{"LOCKDIAG_BUDGET", "10", "most automatic snapshots per hour",
		func(c *Config, v string) error { return setInt(&c.Budget, v, 1, 3600) }},
	{"LOCKDIAG_WALL", "1s", "wall-clock profile length after an automatic trigger; off disables",
		func(c *Config, v string) error {
			if v == "off" || v == "0" {
				c.WallProfile = -1
				return nil
			}
			return setDuration(&c.WallProfile, v, 10*time.Millisecond, 30*time.Second)
		}},
	{"LOCKDIAG_GOROUTINE_GUARD", "5000", "above this many goroutines, costly collections are skipped",
		func(c *Config, v string) error { return setInt(&c.GoroutineGuard, v, 1, 100_000_000) }},
	{"LOCKDIAG_WAITERS_INTERVAL", "1s", "how often lock_waiters is counted; off disables",
		func(c *Config, v string) error { return setIntervalOrOff(&c.LockWaitersInterval, v) }},
	{"LOCKDIAG_THREADS_INTERVAL", "1s", "how often /proc/self/task is scanned (Linux); off disables",
		func(c *Config, v string) error { return setIntervalOrOff(&c.ThreadsInterval, v) }},
	{"LOCKDIAG_DIR", "$TMPDIR/lockdiag-<program>", "where snapshots are written; off keeps them in memory only",
		func(c *Config, v string) error { c.Dir = v; return nil }},
	{"LOCKDIAG_KEEP", "20", "snapshots kept on disk",
		func(c *Config, v string) error { return setInt(&c.Keep, v, 1, 100_000) }},
	{"LOCKDIAG_MAX_DISK", "256MiB", "bytes of snapshots kept on disk",
		func(c *Config, v string) error { return setSize(&c.MaxDisk, v, 1<<20, 1<<40) }},
	{"LOCKDIAG_MEMORY_KEEP", "4", "snapshots kept in memory",
		func(c *Config, v string) error { return setInt(&c.MemoryKeep, v, 1, 1000) }},
	{"LOCKDIAG_MEMORY_MAX", "64MiB", "bytes of snapshots kept in memory",
		func(c *Config, v string) error { return setSize(&c.MemoryMaxBytes, v, 1<<20, 1<<34) }},
	{"LOCKDIAG_ANALYSIS_BUDGET", "5s", "time limit of a snapshot's trace analysis",
		func(c *Config, v string) error {
			return setDuration(&c.AnalysisBudget, v, 100*time.Millisecond, 5*time.Minute)
		}},
	{"LOCKDIAG_LOG", "info", "log level on stderr: debug, info, warn, error or off",
		func(c *Config, v string) error {
			l, err := parseLogLevel(v)
			if err != nil {
				return err
			}
			c.Logger = newStderrLogger(l)
			return nil
		}},
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
	var c Config
	c.Logger = newStderrLogger(slog.LevelInfo)
	var errs []error
	for _, ev := range envVars {
		v, ok := lookup(ev.Name)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if len(v) > 4096 {
			errs = append(errs, fmt.Errorf("diag: %s: value longer than 4096 bytes; using the default %s", ev.Name, ev.Default))
			continue
		}
		trial := c
		if err := ev.set(&trial, v); err != nil {
			errs = append(errs, fmt.Errorf("diag: %s=%q: %v; using the default %s", ev.Name, v, err, ev.Default))
			continue
		}
		c = trial
	}
	return c, errors.Join(errs...)
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

func parseSwitch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "1", "true", "yes":
		return true, nil
	case "off", "0", "false", "no":
		return false, nil
	}
	return true, errors.New("must be on or off")
}

func setDuration(d *time.Duration, v string, lo, hi time.Duration) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("must be a duration like 250ms or 2s")
	}
	if x < lo || x > hi {
		return fmt.Errorf("must be between %v and %v", lo, hi)
	}
	*d = x
	return nil
}

func setIntervalOrOff(d *time.Duration, v string) error {
	if v == "off" {
		*d = -1
		return nil
	}
	return setDuration(d, v, 10*time.Millisecond, time.Hour)
}

func setInt(n *int, v string, lo, hi int) error {
	x, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("must be a whole number")
	}
	if x < lo || x > hi {
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
	*n = x
	return nil
}

func setSize(n *int64, v string, lo, hi int64) error {
	x, err := parseSize(v, lo, hi)
	if err != nil {
		return err
	}
	*n = x
	return nil
}

// parseSize reads a byte count with an optional unit: 1048576, 512KiB,
// 10MiB, 1GiB, 10MB (decimal units are accepted too).
func parseSize(v string, lo, hi int64) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	num, mult := v, 1.0
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("must be a size like 10MiB, 512KiB or 1048576")
	}
	x := f * mult
	if x < float64(lo) || x > float64(hi) {
		return 0, fmt.Errorf("must be between %s and %s", formatSize(lo), formatSize(hi))
	}
	return int64(x), nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}
