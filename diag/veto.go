package diag

import (
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/profdelta"
	"github.com/lockdiag/lockdiag/internal/rules"

	"github.com/google/pprof/profile"
)

// runtimeLockShare is the share of the mutex profile's delay on the Go
// runtime's own locks above which a mutex_wait breach takes no snapshot.
const runtimeLockShare = 0.75

// vetoBreach is the rule engine's veto (rules.Config.Veto). The
// mutex_wait signal (runtime/metrics' /sync/mutex/wait/total:seconds)
// counts the waits on the runtime's internal locks with those on the
// program's: when the host is short of CPU, a runtime lock holder that the
// OS deschedules makes the others wait, and a healthy program can breach
// the rule with no lock of its own involved. Such a breach takes no
// snapshot (its reason is SkipRuntimeLocks): the mutex profile since its
// latest read (at most 5s old) says whose locks the wait was on.
func (m *Monitor) vetoBreach(r rules.Rule, t time.Time) string {
	if r.Signal != MutexWait.String() || m.mutexRate <= 0 {
		return ""
	}
	base := m.latestProfiles()
	if base.mutex.Data == nil {
		return ""
	}
	now, err := profdelta.Read("mutex")
	if err != nil {
		return ""
	}
	p, err := profdelta.Delta(base.mutex, now)
	if err != nil {
		return ""
	}
	return runtimeLockVeto(p)
}

// runtimeLockVeto returns the reason to skip a mutex_wait breach's
// snapshot given the mutex profile p of the time before it, or "".
func runtimeLockVeto(p *profile.Profile) string {
	rt, total := profdelta.RuntimeDelay(p)
	if total <= 0 || float64(rt) < runtimeLockShare*float64(total) {
		return ""
	}
	return fmt.Sprintf("%s: the mutex profile of the last %s puts %.0f%% of the lock wait on the Go runtime's own locks, not the program's (usually a host short of CPU)",
		SkipRuntimeLocks, time.Duration(p.DurationNanos).Round(time.Millisecond), 100*float64(rt)/float64(total))
}
