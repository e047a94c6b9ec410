package rules

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Config tunes an [Engine]. The zero value gives the defaults.
type Config struct {
	// Warmup is how long a baseline rule only watches and learns,
	// counted from the first value of its signal: it breaches only after
	// Warmup of observations and once its baseline is ready (see
	// BaselineWindow). Threshold rules do not warm up. If zero, 10s is
	// used. If negative, there is none.
	Warmup time.Duration

	// BaselineWindow is the time constant of a baseline rule's baseline:
	// an exponentially weighted moving average of the signal in which a
	// value's weight falls to 1/e after BaselineWindow. It is corrected
	// for its start, so that while less than BaselineWindow has been seen
	// it is close to the plain mean of the values seen. It learns only
	// while the rule is warming up or ok (never from values that are
	// above the threshold, so an incident does not raise its own bar),
	// and time spent pending or breached does not age it. It is ready
	// after a sixth of BaselineWindow of learning (10s at the default).
	// If zero or negative, 60s is used.
	BaselineWindow time.Duration

	// ClearRatio sets the hysteresis: a breached rule recovers only
	// after its condition, with the threshold multiplied by ClearRatio,
	// has been false for Clear (for "> 10": after the value stayed at or
	// below 8 for 2s). If zero, or not in (0, 1], 0.8 is used.
	ClearRatio float64

	// Clear is how long the value must stay below the clear level before
	// a breached rule recovers. If zero, 2s is used. If negative, the
	// first value below the clear level recovers.
	Clear time.Duration

	// Cooldown is the least time between two snapshots of one rule; a
	// breach sooner after the rule's previous snapshot takes none. If
	// zero, 60s is used. If negative, there is none.
	Cooldown time.Duration

	// Budget is the most snapshots that breaches of all rules together
	// may take in any BudgetWindow (a sliding window). If zero, 10 is
	// used. If negative, there is no limit.
	Budget int

	// BudgetWindow is the window of Budget. If zero or negative, 1h is
	// used.
	BudgetWindow time.Duration

	// Veto, if set, is asked about a breach that the cooldown and the
	// budget allow a snapshot: a non-empty reason (the class, a colon and
	// the words, like the engine's own "cooldown: 41s left") skips the
	// snapshot without using the rule's cooldown or the budget. It is
	// called with the engine's lock held, so it must not call the engine.
	Veto func(r Rule, t time.Time) string
}

// Defaults of Config.
const (
	DefaultWarmup         = 10 * time.Second
	DefaultBaselineWindow = 60 * time.Second
	DefaultClearRatio     = 0.8
	DefaultClear          = 2 * time.Second
	DefaultCooldown       = 60 * time.Second
	DefaultBudget         = 10
	DefaultBudgetWindow   = time.Hour
)

// withDefaults returns c with zero and invalid fields replaced and
// negative "none" values turned into zero.
func (c Config) withDefaults() Config {
	dur := func(d *time.Duration, def time.Duration) {
		switch {
		case *d == 0:
			*d = def
		case *d < 0:
			*d = 0
		}
	}
	dur(&c.Warmup, DefaultWarmup)
	dur(&c.Clear, DefaultClear)
	dur(&c.Cooldown, DefaultCooldown)
	if c.BaselineWindow <= 0 {
		c.BaselineWindow = DefaultBaselineWindow
	}
	if !(c.ClearRatio > 0 && c.ClearRatio <= 1) {
		c.ClearRatio = DefaultClearRatio
	}
	switch {
	case c.Budget == 0:
		c.Budget = DefaultBudget
	case c.Budget < 0:
		c.Budget = 0
	}
	if c.BudgetWindow <= 0 {
		c.BudgetWindow = DefaultBudgetWindow
	}
	return c
}

// A Phase is where a rule is in its life cycle.
type Phase string

const (
	// WarmingUp: the rule has seen less than Config.Warmup of its
	// signal, or its baseline is not ready yet. It does not breach.
	WarmingUp Phase = "warming_up"
	// OK: the condition is false.
	OK Phase = "ok"
	// Pending: the condition is true, but not yet for the rule's "for"
	// duration.
	Pending Phase = "pending"
	// Breached: the rule breached and has not recovered.
	Breached Phase = "breached"
	// Clearing: the rule is breached and the value is below the clear
	// level, but not yet for Config.Clear.
	Clearing Phase = "clearing"
)

// An EventKind says what happened to a rule.
type EventKind string

const (
	// Breach: the rule's condition held for its "for" duration. This
	// starts an episode.
	Breach EventKind = "breach"
	// Recovered: the value stayed below the clear level for
	// Config.Clear. This ends the episode.
	Recovered EventKind = "recovered"
)

// An Event is a breach or a recovery of one rule.
type Event struct {
	Kind EventKind `json:"kind"`
	// Rule is the index of the rule in the slice given to NewEngine, and
	// Text its canonical form.
	Rule int    `json:"rule"`
	Text string `json:"text"`
	// Time is the time of the observation that caused the event.
	Time time.Time `json:"time"`
	// Value is the signal's value at Time.
	Value float64 `json:"value"`
	// Threshold is the rule's threshold at Time: the absolute threshold,
	// or Factor × Baseline, at least Min and at most the ceiling.
	Threshold float64 `json:"threshold"`
	// Baseline is the baseline of a baseline rule (frozen since the
	// episode started); 0 for a threshold rule.
	Baseline float64 `json:"baseline"`

	// Snapshot says whether a snapshot should be taken for this breach.
	// Only Breach events ask for one, at most one per episode.
	Snapshot bool `json:"snapshot"`
	// SkipReason says why a Breach takes no snapshot, like
	// "cooldown: 41s left" or "budget: 10 snapshots per 1h0m0s used,
	// next in 12m3s".
	SkipReason string `json:"skip_reason,omitempty"`

	// Duration is the length of the episode that a Recovered event ends,
	// from the Breach to the recovery.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Peak is the highest value of that episode, counting its pending
	// time.
	Peak float64 `json:"peak,omitempty"`
}

// State is a rule's state, for display.
type State struct {
	Rule  int    `json:"rule"`
	Text  string `json:"text"`
	Phase Phase  `json:"state"`
	// Since is when the rule entered Phase.
	Since time.Time `json:"since,omitzero"`
	// Value is the latest value of the signal, seen at Observed (zero if
	// the signal never had a value).
	Value    float64   `json:"value"`
	Observed time.Time `json:"observed,omitzero"`
	// Threshold is the current threshold (see Event.Threshold); for a
	// baseline rule that is warming up it is provisional.
	Threshold float64 `json:"threshold"`
	// Baseline is the baseline of a baseline rule; 0 for a threshold rule.
	Baseline float64 `json:"baseline"`
	// Peak is the highest value of the current episode while the rule is
	// pending, breached or clearing.
	Peak float64 `json:"peak,omitempty"`
	// Episodes counts the rule's breaches.
	Episodes int `json:"episodes"`
	// LastBreach and LastSnapshot are the times of the rule's latest
	// breach and of the latest breach that took a snapshot.
	LastBreach   time.Time `json:"last_breach,omitzero"`
	LastSnapshot time.Time `json:"last_snapshot,omitzero"`
	// CooldownUntil is when the rule's cooldown ends, if it has not ended
	// by the latest observation.
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
}

// An Engine evaluates rules over observed signal values and decides when
// to take snapshots. It keeps no clock and starts no goroutines: time is
// what the caller passes to Observe, so it is deterministic.
//
// Durations ("for", Config.Clear, Config.Warmup) are measured between
// observation timestamps, with a tolerance of a quarter of the gap since
// the rule's previous observation (at most a quarter of the duration):
// samples taken by a ticker jitter, and without the tolerance a tick that
// comes a microsecond early would delay a breach by a whole interval.
//
// An Engine is safe for concurrent use.
type Engine struct {
	mu    sync.Mutex
	cfg   Config
	rules []ruleState
	snaps []time.Time // snapshots within BudgetWindow, oldest first
	last  time.Time   // latest observation
}

type ruleState struct {
	rule  Rule
	text  string
	phase Phase
	since time.Time

	value    float64
	observed time.Time // of the latest valid value; zero if none yet
	first    time.Time // of the first valid value

	// Baseline: sum and weight of the exponentially weighted mean, and
	// how much time of observations it has learned from.
	sum, weight float64
	learned     time.Duration
	decayGap    time.Duration // gap of decay, cached: samples are evenly spaced
	decay       float64

	aboveSince time.Time // start of the run above the threshold
	belowSince time.Time // start of the run below the clear level
	peak       float64

	episodes     int
	lastBreach   time.Time
	lastSnapshot time.Time
}

// NewEngine returns an engine for rs (which it copies) configured by cfg.
// Every rule starts warming up.
func NewEngine(rs []Rule, cfg Config) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), rules: make([]ruleState, len(rs))}
	for i, r := range rs {
		e.rules[i] = ruleState{rule: r, text: r.String(), phase: WarmingUp}
	}
	return e
}

// Observe evaluates every rule at time t, getting each rule's signal
// value from get, and returns what happened: nil if nothing did. It is
// meant to be called at every sample, with increasing times; a t before
// the previous one is ignored.
//
// A value that get does not return (false), or that is NaN or infinite,
// is skipped: the rule keeps its state as if that observation had not
// happened. get is called with the engine's lock held, so it must not
// call the engine.
//
// Observe does not allocate unless it returns events.
func (e *Engine) Observe(t time.Time, get func(signal string) (float64, bool)) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.Before(e.last) {
		return nil
	}
	e.last = t
	if get == nil {
		return nil
	}
	var evs []Event
	for i := range e.rules {
		rs := &e.rules[i]
		v, ok := get(rs.rule.Signal)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if ev, ok := e.step(i, rs, t, v); ok {
			evs = append(evs, ev)
		}
	}
	return evs
}

// step feeds one valid value to rule i and returns its event, if any.
func (e *Engine) step(i int, rs *ruleState, t time.Time, v float64) (Event, bool) {
	var gap time.Duration
	if rs.observed.IsZero() {
		rs.first, rs.since = t, t
	} else {
		gap = t.Sub(rs.observed)
	}
	rs.value, rs.observed = v, t
	r := &rs.rule

	switch rs.phase {
	case WarmingUp:
		ready := !r.IsBaseline() || reached(t.Sub(rs.first), e.cfg.Warmup, gap) &&
			reached(rs.learned+gap, e.cfg.BaselineWindow/6, gap)
		if !ready {
			// Only what would not breach: a process that starts inside
			// an incident, or whose lock gets stuck while it warms up,
			// must not learn the incident as normal.
			if r.Op.holds(v, e.threshold(rs)) {
				rs.learned += gap
			} else {
				e.learn(rs, v, gap)
			}
			return Event{}, false
		}
		rs.phase, rs.since = OK, t
		fallthrough

	case OK:
		thr := e.threshold(rs)
		if !r.Op.holds(v, thr) {
			e.learn(rs, v, gap)
			return Event{}, false
		}
		rs.phase, rs.since = Pending, t
		rs.aboveSince, rs.peak = t, v
		if reached(0, r.For, gap) {
			return e.breach(i, rs, t, v, thr), true
		}

	case Pending:
		thr := e.threshold(rs)
		if !r.Op.holds(v, thr) {
			rs.phase, rs.since, rs.peak = OK, t, 0
			e.learn(rs, v, gap)
			return Event{}, false
		}
		rs.peak = max(rs.peak, v)
		if reached(t.Sub(rs.aboveSince), r.For, gap) {
			return e.breach(i, rs, t, v, thr), true
		}

	case Breached, Clearing:
		rs.peak = max(rs.peak, v)
		thr := e.threshold(rs)
		if r.Op.holds(v, e.cfg.ClearRatio*thr) {
			if rs.phase == Clearing {
				rs.phase, rs.since = Breached, t
			}
			return Event{}, false
		}
		if rs.phase == Breached {
			rs.phase, rs.since, rs.belowSince = Clearing, t, t
		}
		if reached(t.Sub(rs.belowSince), e.cfg.Clear, gap) {
			ev := e.event(Recovered, i, rs, t, v, thr)
			ev.Duration = t.Sub(rs.lastBreach)
			ev.Peak = finite(rs.peak)
			rs.phase, rs.since, rs.peak = OK, t, 0
			return ev, true
		}
	}
	return Event{}, false
}

// reached reports whether elapsed counts as at least d, with the jitter
// tolerance described on Engine: a quarter of the sample gap, at most a
// quarter of d.
func reached(elapsed, d, gap time.Duration) bool {
	return elapsed+min(gap, d)/4 >= d
}

// learn adds v to a baseline rule's baseline. The weights of the older
// values decay by exp(-gap/BaselineWindow); gap is the time since the
// rule's previous observation, so pending and breached time, which is
// observed but not learned, does not age the baseline.
func (e *Engine) learn(rs *ruleState, v float64, gap time.Duration) {
	if !rs.rule.IsBaseline() {
		return
	}
	if gap != rs.decayGap || rs.decay == 0 {
		rs.decayGap = gap
		rs.decay = math.Exp(-gap.Seconds() / e.cfg.BaselineWindow.Seconds())
	}
	rs.sum = rs.sum*rs.decay + v
	rs.weight = rs.weight*rs.decay + 1
	rs.learned += gap
}

func (rs *ruleState) baseline() float64 {
	if rs.weight == 0 {
		return 0
	}
	return rs.sum / rs.weight
}

// threshold returns the rule's current threshold.
func (e *Engine) threshold(rs *ruleState) float64 {
	if !rs.rule.IsBaseline() {
		return rs.rule.Threshold
	}
	r := &rs.rule
	return min(max(r.Factor*rs.baseline(), r.Min), r.Ceiling())
}

func (e *Engine) event(kind EventKind, i int, rs *ruleState, t time.Time, v, thr float64) Event {
	ev := Event{
		Kind:      kind,
		Rule:      i,
		Text:      rs.text,
		Time:      t,
		Value:     v,
		Threshold: finite(thr),
	}
	if rs.rule.IsBaseline() {
		ev.Baseline = finite(rs.baseline())
	}
	return ev
}

// breach starts an episode of rule i and decides about its snapshot.
func (e *Engine) breach(i int, rs *ruleState, t time.Time, v, thr float64) Event {
	rs.phase, rs.since = Breached, t
	rs.episodes++
	rs.lastBreach = t
	ev := e.event(Breach, i, rs, t, v, thr)

	// Drop the snapshots that left the budget window.
	n := 0
	for _, s := range e.snaps {
		if t.Sub(s) < e.cfg.BudgetWindow {
			e.snaps[n] = s
			n++
		}
	}
	e.snaps = e.snaps[:n]

	switch {
	case e.cfg.Cooldown > 0 && !rs.lastSnapshot.IsZero() && t.Sub(rs.lastSnapshot) < e.cfg.Cooldown:
		left := e.cfg.Cooldown - t.Sub(rs.lastSnapshot)
		ev.SkipReason = "cooldown: " + roundUp(left).String() + " left"
	case e.cfg.Budget > 0 && len(e.snaps) >= e.cfg.Budget:
		next := e.cfg.BudgetWindow - t.Sub(e.snaps[len(e.snaps)-e.cfg.Budget])
		ev.SkipReason = fmt.Sprintf("budget: %d snapshots per %s used, next in %s",
			e.cfg.Budget, e.cfg.BudgetWindow, roundUp(next))
	default:
		if e.cfg.Veto != nil {
			if reason := e.cfg.Veto(rs.rule, t); reason != "" {
				ev.SkipReason = reason
				return ev
			}
		}
		ev.Snapshot = true
		rs.lastSnapshot = t
		e.snaps = append(e.snaps, t)
	}
	return ev
}

// roundUp rounds a positive d up to whole seconds, or below a second to
// whole milliseconds, for messages.
func roundUp(d time.Duration) time.Duration {
	unit := time.Second
	if d < time.Second {
		unit = time.Millisecond
	}
	return (d + unit - 1) / unit * unit
}

// finite returns x with NaN as 0 and infinities as the largest finite
// values, so that it can be encoded as JSON.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

// States returns the state of every rule, in the order given to
// NewEngine.
func (e *Engine) States() []State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]State, len(e.rules))
	for i := range e.rules {
		rs := &e.rules[i]
		s := State{
			Rule:         i,
			Text:         rs.text,
			Phase:        rs.phase,
			Since:        rs.since,
			Value:        rs.value,
			Observed:     rs.observed,
			Threshold:    finite(e.threshold(rs)),
			Peak:         finite(rs.peak),
			Episodes:     rs.episodes,
			LastBreach:   rs.lastBreach,
			LastSnapshot: rs.lastSnapshot,
		}
		if rs.rule.IsBaseline() {
			s.Baseline = finite(rs.baseline())
		}
		if e.cfg.Cooldown > 0 && !rs.lastSnapshot.IsZero() {
			if until := rs.lastSnapshot.Add(e.cfg.Cooldown); until.After(e.last) {
				s.CooldownUntil = until
			}
		}
		out[i] = s
	}
	return out
}
