// Package bundle is the format of a lockdiag snapshot bundle: one zip file
// holding everything captured about an incident, as <id>.zip.
//
//	meta.json            [Meta]: id, time, trigger, program, rates, what was collected
//	report.txt           the report for people ([WriteText])
//	report.json          the analysis, a [lockreport.Report]
//	trace.out            the execution trace of the window (go tool trace)
//	mutex.pb.gz          mutex profile delta over the window (go tool pprof)
//	block.pb.gz          block profile delta, when block profiling is on
//	wall.pb.gz           wall-clock profile after the trigger (fgprof)
//	goroutines.txt       goroutine dump, debug=1
//	goroutines-full.txt  goroutine dump with wait reasons and times, debug=2
//	goroutineleak.pb.gz  goroutine-leak profile (Go >= 1.27): goroutines blocked forever
//	threads.json         the OS threads at the trigger, and their recent series
//	timeline.json        every signal over the window
//	named-locks.json     [NamedLocks]: the named locks (package locks) and lock-order inversions
//
// A [Builder] writes a bundle; [Open] reads one, and [Bundle.Options] gives
// what is needed to analyze it again with a newer lockreport.
package bundle

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
	"github.com/lockdiag/lockdiag/lockreport"
)

// The names of a bundle's files.
const (
	MetaFile           = "meta.json"
	ReportTextFile     = "report.txt"
	ReportJSONFile     = "report.json"
	TraceFile          = "trace.out"
	MutexFile          = "mutex.pb.gz"
	BlockFile          = "block.pb.gz"
	WallFile           = "wall.pb.gz"
	GoroutinesFile     = "goroutines.txt"
	GoroutinesFullFile = "goroutines-full.txt"
	GoroutineLeakFile  = "goroutineleak.pb.gz"
	ThreadsFile        = "threads.json"
	TimelineFile       = "timeline.json"
	NamedLocksFile     = "named-locks.json"
)

// NamedLocks is the content of named-locks.json: the named locks of
// package locks when the snapshot was taken (their names, exact holders,
// hold times, waiters and wait and hold summaries) and the lock-order
// inversions found so far. It is in the bundle when the program names
// locks (or the lock-order check found an inversion).
type NamedLocks struct {
	Time time.Time `json:"time"`
	// StuckAfter is how long a named lock's hold (or its waiters' wait
	// without any acquisition) had to last for the lock to be stuck.
	StuckAfter string `json:"stuck_after"`
	// Locks are the named locks; the holders' stacks come from the
	// goroutine dump when the report is made.
	Locks []lockreport.NamedLock `json:"locks"`
	// Inversions are the lock-order inversions, oldest first;
	// InversionsLost counts those package locks found but did not keep.
	Inversions     []lockreport.LockInversion `json:"lock_order_inversions,omitempty"`
	InversionsLost int                        `json:"lock_order_inversions_lost,omitempty"`
}

// Meta is the content of meta.json: what the bundle is and how it was
// collected.
type Meta struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Trigger Trigger   `json:"trigger"`
	// Headline is the report's headline.
	Headline string `json:"headline"`
	// Partial says the analysis did not read the whole window.
	Partial bool `json:"partial,omitempty"`
	// Took is how long the collection took, wall profile included.
	Took time.Duration `json:"took"`
	// Files are the bundle's files, meta.json first.
	Files []File `json:"files"`

	Program string `json:"program"`
	// MainModule is the program's main module path, from its build info
	// ("" when unknown): the code a report calls the program's own.
	MainModule string `json:"main_module,omitempty"`
	Host       string `json:"host"`
	PID        int    `json:"pid"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	Goroutines int    `json:"goroutines"`

	// Window is the span of time the trace and the profile deltas cover.
	Window Window `json:"window"`
	// Trace says what trace the bundle holds, or why it holds none.
	Trace string `json:"trace"`
	// MutexProfileFraction and BlockProfileRate are the rates the
	// profiles were recorded at (0 = off).
	MutexProfileFraction int `json:"mutex_profile_fraction"`
	BlockProfileRate     int `json:"block_profile_rate"`
	// MutexProfileFractions are the mutex profile fractions in force over
	// the window, oldest first, when the fraction changed within it
	// (MutexProfileFraction is then the latest): the mutex profile's
	// counts mix scales.
	MutexProfileFractions []int `json:"mutex_profile_fractions,omitempty"`
	// Collection says what was collected, skipped or failed, and why.
	Collection []Note `json:"collection"`
	// Config is the configuration of the monitor that took the bundle.
	Config json.RawMessage `json:"config,omitempty"`
}

// File is one file of a bundle.
type File struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Window is a span of time.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// A Note says what happened to one part of a bundle.
type Note struct {
	Part string `json:"part"`
	// Status is "ok", "skipped", "off" or "failed".
	Status string        `json:"status"`
	Detail string        `json:"detail,omitempty"`
	Took   time.Duration `json:"took"`
}

// TriggerKind says what took a snapshot.
type TriggerKind string

// The trigger kinds.
const (
	// TriggerManual is a snapshot someone asked for (HTTP, CLI, code).
	TriggerManual TriggerKind = "manual"
	// TriggerRule is a snapshot a rule breach took automatically.
	TriggerRule TriggerKind = "rule"
)

// A Trigger says why a snapshot was taken.
type Trigger struct {
	Kind TriggerKind `json:"kind"`
	Time time.Time   `json:"time"`
	// Reason says who asked, for manual snapshots.
	Reason string `json:"reason,omitempty"`
	// Breach is the rule breach, for rule snapshots.
	Breach *Breach `json:"breach,omitempty"`
}

// A Breach is a rule crossing its threshold.
type Breach struct {
	Rule      string  `json:"rule"`
	Signal    string  `json:"signal"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Baseline is the learned level of a baseline rule, 0 otherwise.
	Baseline float64 `json:"baseline,omitempty"`
}

// String describes the trigger in a line.
func (t Trigger) String() string {
	if b := t.Breach; b != nil {
		s := fmt.Sprintf("rule %q: %s = %s > %s", b.Rule, b.Signal, textfmt.Value(b.Value), textfmt.Value(b.Threshold))
		if b.Baseline != 0 {
			s += fmt.Sprintf(" (baseline %s)", textfmt.Value(b.Baseline))
		}
		return s
	}
	if t.Reason != "" {
		return string(t.Kind) + ": " + t.Reason
	}
	return string(t.Kind)
}
