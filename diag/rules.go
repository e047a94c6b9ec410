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
//   - mutex_wait > 4x baseline min 2 max 8 for 100ms: a spike of lock
//     wait. mutex_wait is seconds of lock wait per second, about the
//     average number of goroutines blocked on sync.Mutex, sync.RWMutex and
//     runtime locks, sampled every 100ms; a healthy service sits at 0 to
//     0.1, a spike is tens. The threshold is four times the service's own
//     baseline, at least 2 (two goroutines blocked all the time: a busy
//     net/http client alone can keep one blocked inside the Transport) and
//     at most 8 (never accepted as normal). The baseline
//     learns only values below the threshold, from zero: a process that
//     starts inside contention breaches when its 10s warm-up ends, and a
//     slow climb breaches at 8 at the latest. "for 100ms" asks for two
//     samples in a row, which filters the runtime's lumps (it records 1
//     in 8 waits, scaled by 8, when the waiter wakes) and still breaches
//     about 200ms after a spike starts.
//   - stuck_waiters > 0: goroutines parked at a lock site that made no
//     progress for 2s ([Config.StuckAfter]): a lock held and not let go,
//     a deadlock, a holder blocked on I/O. It needs no baseline and no
//     warm-up, and it sees what mutex_wait cannot: a wait is counted there
//     only when it ends. The goroutine scans behind it come every second
//     at most, further apart when [Config.ScanCPU] requires it (every 20s
//     or so at 100k goroutines), earlier when goroutines start to pile
//     up, and at random moments, so that no ticker-driven holder can hide
//     from them.
//
// Not caught by default: contention below two goroutines blocked on
// average (a lock held for a long time but rarely); a lock held for less
// than StuckAfter at a time whose waiters total under the spike floor;
// lock waits outside sync.Mutex/RWMutex (channels, cgo locks: see the
// futex_waiters signal).
const DefaultRules = "mutex_wait > 4x baseline min 2 max 8 for 100ms; stuck_waiters > 0"

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
