package lockreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/lockreport"
)

// TestWriteReports writes the report (JSON and text) of every fixture
// trace, every scenario bundle and every *.trace in
// $LOCKDIAG_REPORTS_TRACES to $LOCKDIAG_REPORTS_OUT, so that a change to
// the analysis' speed can be checked not to change what it reports:
//
//	LOCKDIAG_REPORTS_OUT=/tmp/before go test -run TestWriteReports ./lockreport
//	(change the analysis)
//	LOCKDIAG_REPORTS_OUT=/tmp/after go test -run TestWriteReports ./lockreport
//	diff -r /tmp/before /tmp/after
//
// Skipped unless LOCKDIAG_REPORTS_OUT is set.
func TestWriteReports(t *testing.T) {
	out := os.Getenv("LOCKDIAG_REPORTS_OUT")
	if out == "" {
		t.Skip("LOCKDIAG_REPORTS_OUT not set")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, rep *lockreport.Report) {
		t.Helper()
		js, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		if err := os.WriteFile(filepath.Join(out, name+".json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name+".txt"), text.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	traces, _ := filepath.Glob("testdata/*.trace")
	if dir := os.Getenv("LOCKDIAG_REPORTS_TRACES"); dir != "" {
		more, _ := filepath.Glob(filepath.Join(dir, "*.trace"))
		traces = append(traces, more...)
	}
	for _, f := range traces {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := lockreport.Analyze(context.Background(), bytes.NewReader(data), lockreport.Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		write("trace-"+strings.TrimSuffix(filepath.Base(f), ".trace"), rep)
	}
	zips, _ := filepath.Glob(filepath.Join(scenarioDir, "*.zip"))
	for _, f := range zips {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Open(data)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := b.Options()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := b.Open(bundle.TraceFile)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := lockreport.Analyze(context.Background(), rc, opts)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		write("bundle-"+strings.TrimSuffix(filepath.Base(f), ".zip"), rep)
	}
	t.Logf("wrote %d reports to %s", len(traces)+len(zips), out)
}
