package flightrec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/lockdiag/lockdiag/flightrec"
)

// Analyze a trace file, as written by runtime/trace.Start, `go test -trace`
// or a flight recorder, and print the report.
func ExampleAnalyze() {
	f, err := os.Open("trace.out")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	rep, err := flightrec.Analyze(f, flightrec.AnalyzeOptions{})
	if err != nil {
		// The trace could not be read; rep still says so, and holds
		// whatever the profiles in the options showed.
		fmt.Fprintln(os.Stderr, err)
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// Analyze the recent window of the process's own flight recorder.
func ExampleAnalyze_recorder() {
	rec := flightrec.New(flightrec.Config{})
	if err := rec.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err) // for example, another flight recorder is active
		return
	}
	defer rec.Stop()

	// ... later, when something looks wrong:
	w, err := rec.Snapshot(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	rep, err := flightrec.Analyze(bytes.NewReader(w), flightrec.AnalyzeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(rep.Headline)
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
