package diag

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("LOCKDIAG_INTERVAL", "250ms")
	t.Setenv("LOCKDIAG_TRACE_WINDOW", "20s")
	t.Setenv("LOCKDIAG_TRACE_MAX_BYTES", "4MiB")
	t.Setenv("LOCKDIAG_MUTEX_FRACTION", "off")
	t.Setenv("LOCKDIAG_BLOCK_RATE", "10us")
	t.Setenv("LOCKDIAG_DIR", "off")
	t.Setenv("LOCKDIAG_KEEP", "7")
	t.Setenv("LOCKDIAG_MAX_DISK", "1GiB")
	t.Setenv("LOCKDIAG_WALL", "off")
	t.Setenv("LOCKDIAG_TRACE", "armed")
	t.Setenv("LOCKDIAG_TRACE_BUDGET", "2%")
	t.Setenv("LOCKDIAG_WAITERS_INTERVAL", "off")
	t.Setenv("LOCKDIAG_LOG", "off")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Interval:             250 * time.Millisecond,
		TraceWindow:          20 * time.Second,
		TraceMaxBytes:        4 << 20,
		MutexProfileFraction: -1,
		BlockProfileRate:     10_000,
		Dir:                  DirOff,
		Keep:                 7,
		MaxDisk:              1 << 30,
		WallProfile:          -1,
		Trace:                TraceArmed,
		TraceBudget:          0.02,
		LockWaitersInterval:  -1,
	}
	if c != want {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		name, value string
		wantErr     string
	}{
		{"LOCKDIAG_INTERVAL", "fast", "LOCKDIAG_INTERVAL=\"fast\": must be a duration"},
		{"LOCKDIAG_INTERVAL", "1ms", "must be between 10ms and 1m0s"},
		{"LOCKDIAG_KEEP", "-3", "LOCKDIAG_KEEP=\"-3\": must be between 1 and"},
		{"LOCKDIAG_KEEP", "many", "must be a whole number"},
		{"LOCKDIAG_MAX_DISK", "10 parsecs", "must be a size like 10MiB"},
		{"LOCKDIAG_MAX_DISK", "NaN", "must be a size"},
		{"LOCKDIAG_TRACE", "maybe", "must be auto, on, armed or off"},
		{"LOCKDIAG_LOG", "loud", "must be debug, info, warn, error or off"},
		{"LOCKDIAG_BLOCK_RATE", "-5us", "must be between"},
		{"LOCKDIAG_INTERVAL", strings.Repeat("1", 5000), "longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value[:min(len(tt.value), 12)], func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			c, err := ConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "using the default") {
				t.Errorf("err = %v, want it to say the default is used", err)
			}
			// The field keeps its default, so New works.
			c.Logger = nil
			if _, err := New(c); err != nil {
				t.Errorf("New on the fallback config: %v", err)
			}
		})
	}
}

func TestConfigFromEnvCollectsEveryError(t *testing.T) {
	t.Setenv("LOCKDIAG_INTERVAL", "x")
	t.Setenv("LOCKDIAG_KEEP", "y")
	t.Setenv("LOCKDIAG_BUDGET", "20")
	c, err := ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), "LOCKDIAG_INTERVAL") || !strings.Contains(err.Error(), "LOCKDIAG_KEEP") {
		t.Fatalf("err = %v, want both variables named", err)
	}
	if c.Budget != 20 {
		t.Errorf("a good variable beside bad ones was dropped: Budget = %d", c.Budget)
	}
}

func TestEnvVarsDocumented(t *testing.T) {
	for _, ev := range EnvVars() {
		if !strings.HasPrefix(ev.Name, "LOCKDIAG_") || ev.Help == "" || ev.Default == "" {
			t.Errorf("%+v is not documented", ev)
		}
	}
}
