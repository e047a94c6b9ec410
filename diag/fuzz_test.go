package diag

import (
	"log/slog"
	"strings"
	"testing"
)

// FuzzConfigFromEnv feeds arbitrary values to every variable: reading
// never panics, a rejected value is named in the error, and the resulting
// configuration is always accepted by New.
func FuzzConfigFromEnv(f *testing.F) {
	for _, seed := range []string{"", "0", "-1", "off", "on", "1s", "-5ms", "1e309", "NaN", "10MiB", "9999999999GiB",
		"mutex_wait > 4x baseline min 1 for 100ms", "x >", ";;;", "1.5h", "\x00", "debug", strings.Repeat("9", 40)} {
		f.Add(uint8(0), seed)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		ev := settings[int(which)%len(settings)]
		c, err := configFrom(func(name string) (string, bool) {
			if name == ev.Env {
				return value, true
			}
			return "", false
		})
		if err != nil && !strings.Contains(err.Error(), ev.Env) {
			t.Fatalf("%s=%q: error %q does not name the variable", ev.Env, value, err)
		}
		// What New checks, without its allocations.
		c = c.withDefaults()
		if err := c.validate(); err != nil {
			t.Fatalf("%s=%q: ConfigFromEnv gave a config New refuses: %v", ev.Env, value, err)
		}
		if _, err := parseRules(c.Rules); err != nil {
			t.Fatalf("%s=%q: ConfigFromEnv gave rules New refuses: %v", ev.Env, value, err)
		}
	})
}

// FuzzSnapshotID: ids that pass ValidID are safe file names; nothing else
// reaches the file system.
func FuzzSnapshotID(f *testing.F) {
	for _, seed := range []string{"20261122-040835-123", "20261122-040835-123-7", "latest", "../x", "a/b", "20261122-040835-123\n", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidID(id) && strings.ContainsAny(id, `/\.`+"\x00\n") {
			t.Fatalf("ValidID(%q) accepts a path character", id)
		}
		s := newStore(Config{Dir: DirOff}, slog.New(slog.DiscardHandler))
		got, err := s.resolve(id)
		if err == nil && !ValidID(got) {
			t.Fatalf("resolve(%q) = %q, not a valid id", id, got)
		}
	})
}
