package flightrec

// Temporary stand-in so that the packages built on flightrec compile while
// the analyzer is written; replaced by analyze.go.

import (
	"fmt"
	"io"
	"time"

	"github.com/google/pprof/profile"
)

// AnalyzeOptions configures [Analyze].
type AnalyzeOptions struct {
	Mutex, Block     *profile.Profile
	MutexFraction    int
	BlockRate        int
	TraceUnavailable string
	Top              int
	Budget           time.Duration
}

// Report is the result of [Analyze].
type Report struct {
	Headline string `json:"headline"`
	Partial  bool   `json:"partial,omitempty"`
}

// Analyze reads a trace.
func Analyze(trace io.Reader, opts AnalyzeOptions) (*Report, error) {
	return &Report{Headline: "analysis not written yet"}, nil
}

// WriteText writes r as text.
func (r *Report) WriteText(w io.Writer) error {
	_, err := fmt.Fprintln(w, r.Headline)
	return err
}
