package diag

import (
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/profdelta"
	"github.com/lockdiag/lockdiag/internal/rules"
	"github.com/lockdiag/lockdiag/internal/textfmt"

	"github.com/google/pprof/profile"
)

// runtimeLockShare is the share of the mutex profile's delay on the Go
// runtime's own locks above which a mutex_wait breach takes no snapshot.
const runtimeLockShare = 0.75

// runtimeLockExplains is the least share of the lock wait that
// runtime/metrics counted over the profile's span that the runtime's locks
// must account for (their delay in the profile) for the veto to hold. The
// profile sees a wait only when the lock is released: a program lock held
// all through the breach has no sample yet, and then the runtime's locks
// are the whole profile however little they waited (the spike demo's first
// incident lost its snapshot so: the profile held 100 % runtime locks, a
// few microseconds of them, beside seconds of counted wait). The profile
// samples 1 event in its fraction, so the two sources agree only roughly:
// a quarter leaves room for that and still tells microseconds from
// seconds.
const runtimeLockExplains = 0.25

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
	return runtimeLockVeto(p, m.metrics.cumWait-base.wait)
}

// runtimeLockVeto returns the reason to skip a mutex_wait breach's
// snapshot given the mutex profile p of the time before it and the lock
// wait (seconds) that runtime/metrics counted over the same span (NaN if
// unknown), or "".
func runtimeLockVeto(p *profile.Profile, wait float64) string {
	rt, total := profdelta.RuntimeDelay(p)
	if total <= 0 || float64(rt) < runtimeLockShare*float64(total) {
		return ""
	}
	rtWait := time.Duration(rt).Seconds()
	if wait > 0 && rtWait < runtimeLockExplains*wait {
		return "" // the wait is elsewhere: on a lock not yet released
	}
	counted := ""
	if wait > 0 {
		counted = fmt.Sprintf(" (%s of the %s that runtime/metrics counted)", textfmt.Dur(time.Duration(rt)), textfmt.Dur(time.Duration(wait*1e9)))
	}
	return fmt.Sprintf("%s: the mutex profile of the last %s puts %.0f%% of the lock wait on the Go runtime's own locks%s, not the program's (usually a host short of CPU)",
		SkipRuntimeLocks, time.Duration(p.DurationNanos).Round(time.Millisecond), 100*float64(rt)/float64(total), counted)
}
