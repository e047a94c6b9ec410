// Package rules parses lock-wait SLO rules and evaluates them over sampled
// signals, deciding when lockdiag takes a diagnostic snapshot.
//
// # Language
//
// Rules come from the LOCKDIAG_SLO variable or a Config field:
//
//	RULES := RULE { ';' RULE }
//	RULE  := SIGNAL OP THRESHOLD [ 'for' DURATION ]
//	       | SIGNAL OP FACTOR 'x' 'baseline' [ 'min' VALUE ] [ 'max' VALUE ] [ 'for' DURATION ]
//	OP    := '>' | '>='
//
// SIGNAL is the name of a signal, such as mutex_wait. THRESHOLD and VALUE
// are numbers (0.5, 20, 1e3) or Go durations, which mean seconds
// (sched_latency_p99 > 5ms is sched_latency_p99 > 0.005); they must not
// be negative. FACTOR is a number of at least 1 followed by x (4x, 2.5x).
// DURATION is a Go duration (100ms, 2s, 1m30s) and must not be negative.
// Whitespace is free-form and empty rules are allowed, so "" means no
// rules. Keywords are lower case. For example:
//
//	mutex_wait > 4x baseline min 1 for 100ms; lock_waiters >= 50 for 5s
//
// A threshold rule compares the signal with the threshold. A baseline
// rule compares it with FACTOR times the signal's own moving baseline,
// but at least the min VALUE (the floor keeps a near-zero baseline from
// making noise an incident) and at most the max VALUE (the ceiling, if
// given: a value above it always breaches). With "for", the condition must
// hold for DURATION before the rule breaches; without it the first value
// above breaches.
//
// A baseline never learns an incident: it learns only values at or below
// the rule's current threshold, while warming up as after. It starts at
// zero, so the threshold starts at the floor: a process that starts inside
// an incident, or whose lock gets stuck while it warms up, breaches once
// the warm-up ends. A slow climb raises the baseline with it, but breaches
// at the ceiling at the latest, before it becomes the new normal.
//
// # Engine
//
// An [Engine] gets a value of each rule's signal at every sample through
// [Engine.Observe] and returns [Event]s. A rule goes through the phases
// warming_up, ok, pending (condition true, "for" running), breached, and
// clearing (below the clear level, [Config.Clear] running), back to ok.
// Only baseline rules warm up: a threshold rule is an absolute SLO from
// its first value.
// A Breach event starts an episode and says whether to take a snapshot:
// at most one per episode, none during the rule's [Config.Cooldown] after
// its previous snapshot, and at most [Config.Budget] per
// [Config.BudgetWindow] across all rules. A Recovered event ends the
// episode. The engine keeps no clock and starts no goroutines.
package rules
