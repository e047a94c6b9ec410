package diag

import (
	"fmt"
	"sync"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/internal/rules"
	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// DefaultRules are the rules used when [Config.Rules] is empty.
//
//   - mutex_wait > 4x baseline min 1 for 100ms: mutex_wait is seconds of
//     lock wait per second, about the average number of goroutines
//     blocked on sync.Mutex, sync.RWMutex and runtime locks, sampled every
//     100ms. A healthy, lightly contended service sits at 0 to 0.1; a
//     real spike is tens. The floor of 1 (a goroutine blocked all the
//     time) is far above that noise, and 4x baseline keeps a service that
//     lives with some contention from firing at its normal level. The
//     runtime records 1 in 8 waits, scaled by 8, when the waiter wakes,
//     so the signal comes in lumps: one 12.5ms wait that is recorded
//     reads as 1.0 in its 100ms sample. "for 100ms" asks for two samples
//     in a row above the threshold, which filters single lumps and still
//     breaches at most about 240ms after a spike starts (up to 100ms
//     until a sample sees it, plus the runtime's delay of up to about
//     40ms, plus one more sample).
//   - lock_waiters > 4x baseline min 16 for 2s: lock_waiters counts the
//     goroutines parked in Mutex or RWMutex acquire at the moment of the
//     sample, every 1s. It sees a lock that is held and stuck, which
//     mutex_wait cannot see because a wait is only counted when it ends.
//     A few waiters at an instant are normal; more than 16 in three
//     samples in a row (2s) means that a lock holder is not letting go.
//
// Replayed 100ms samples measured on a 2-core VM: a lightly loaded
// service (16 goroutines, max 0.31 in 30s) never breaches; a spike of 32
// goroutines on a 1ms critical section breaches within 200ms of its
// onset; a service that allocates inside a lock shared by 64 goroutines
// (mean 1.5, bursts of 20 to 85 for one or two samples at each GC)
// breached twice in 30s, which cooldown and budget turn into at most one
// snapshot a minute and ten an hour. Not caught: a lock held for less than
// 2s, whose waiters show in mutex_wait only as one sample at its release.
//
// The rule language:
//
//	SIGNAL > THRESHOLD [for DURATION]
//	SIGNAL > FACTORx baseline [min FLOOR] [for DURATION]
//
// with >= allowed for >, several rules separated by ';', thresholds as
// numbers or Go durations (which mean seconds: sched_latency_p99 > 5ms), and
// SIGNAL one of the names of [Signals].
const DefaultRules = "mutex_wait > 4x baseline min 1 for 100ms; lock_waiters > 4x baseline min 16 for 2s"

// parseRules reads rules in the rule language; "off" is no rules.
func parseRules(text string) ([]rules.Rule, error) {
	if text == RulesOff {
		return nil, nil
	}
	return rules.Parse(text, SignalNames())
}

// ruleSet owns the rule engine of a monitor.
type ruleSet struct {
	rules []rules.Rule
	cfg   rules.Config
	mu    sync.Mutex
	eng   *rules.Engine
	index map[string]Signal
}

func newRuleSet(cfg Config) (*ruleSet, error) {
	rs, err := parseRules(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("diag: Config.Rules: %w", err)
	}
	r := &ruleSet{
		rules: rs,
		cfg: rules.Config{
			Warmup:   cfg.Warmup,
			Cooldown: cfg.Cooldown,
			Budget:   cfg.Budget,
		},
		index: make(map[string]Signal),
	}
	for _, s := range Signals() {
		r.index[s.String()] = s
	}
	r.reset()
	return r, nil
}

// reset starts over: warm-up, baselines, cooldowns and budget.
func (r *ruleSet) reset() {
	r.mu.Lock()
	r.eng = rules.NewEngine(r.rules, r.cfg)
	r.mu.Unlock()
}

func (r *ruleSet) engine() *rules.Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eng
}

func (r *ruleSet) status() []RuleStatus {
	states := r.engine().States()
	out := make([]RuleStatus, 0, len(states))
	for _, s := range states {
		rs := RuleStatus{
			Rule:       s.Text,
			State:      RuleState(s.Phase),
			Value:      s.Value,
			Threshold:  s.Threshold,
			Baseline:   s.Baseline,
			Since:      s.Since,
			LastBreach: s.LastBreach,
		}
		if !s.CooldownUntil.IsZero() {
			rs.Note = "cooldown until " + s.CooldownUntil.Format("15:04:05")
		}
		out = append(out, rs)
	}
	return out
}

// evaluate runs the rules over a new sample and acts on what they say:
// events to subscribers and the log, and a snapshot per episode.
func (m *Monitor) evaluate(s Sample) {
	if len(m.rules.rules) == 0 {
		return
	}
	evs := m.rules.engine().Observe(s.Time, func(name string) (float64, bool) {
		sig, ok := m.rules.index[name]
		if !ok {
			return 0, false
		}
		return s.Get(sig)
	})
	for _, ev := range evs {
		b := &Breach{
			Breach: bundle.Breach{
				Rule:      ev.Text,
				Signal:    m.rules.rules[ev.Rule].Signal,
				Value:     ev.Value,
				Threshold: ev.Threshold,
				Baseline:  ev.Baseline,
			},
			Snapshot: ev.Snapshot,
		}
		switch ev.Kind {
		case rules.Breach:
			m.events.publish(Event{Type: EventBreach, Time: ev.Time, Breach: b})
			m.counts.breach(ev.Rule)
			m.log.Warn("diag: lock-wait rule breached", "rule", ev.Text, "value", textfmt.Value(ev.Value), "threshold", textfmt.Value(ev.Threshold))
			if !ev.Snapshot {
				m.events.publish(Event{Type: EventSnapshotSkipped, Time: ev.Time, Breach: b, Reason: ev.SkipReason})
				m.counts.skip(ev.SkipReason)
				m.log.Info("diag: no snapshot for this breach", "rule", ev.Text, "reason", ev.SkipReason)
				continue
			}
			wall := max(m.cfg.WallProfile, 0)
			bb := b.Breach
			_, joined, err := m.startSnapshot(bundle.Trigger{Kind: bundle.TriggerRule, Time: ev.Time, Breach: &bb}, wall)
			switch {
			case err != nil:
				m.events.publish(Event{Type: EventSnapshotSkipped, Time: ev.Time, Breach: b, Reason: err.Error()})
				m.counts.skip(SkipNotRunning)
			case joined:
				reason := "a snapshot was already being taken; this breach shares it"
				m.events.publish(Event{Type: EventSnapshotSkipped, Time: ev.Time, Breach: b, Reason: reason})
				m.counts.skip(SkipInFlight)
			}
		case rules.Recovered:
			b.Peak, b.Duration = ev.Peak, ev.Duration
			m.events.publish(Event{Type: EventRecovered, Time: ev.Time, Breach: b})
			m.log.Info("diag: lock-wait rule recovered", "rule", ev.Text, "peak", textfmt.Value(ev.Peak), "after", ev.Duration)
		}
	}
}
