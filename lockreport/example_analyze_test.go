package lockreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/lockdiag/lockdiag/flightrec"
	"github.com/lockdiag/lockdiag/lockreport"
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
	rep, err := lockreport.Analyze(context.Background(), f, lockreport.Options{})
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
	w, err := rec.Window(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// Bound the analysis' time: the report says how far it got.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := lockreport.Analyze(ctx, bytes.NewReader(w), lockreport.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(rep.Headline)
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
