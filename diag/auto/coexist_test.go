package auto

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"

	"github.com/lockdiag/lockdiag/diag"
)

// hostFirst is the host's own flight recorder, started before the
// import's init when LOCKDIAG_TEST_HOST_FR=first: package-level variables
// are initialized before any init function of the package runs, as a
// host's recorder started by a package initialized earlier would be.
var hostFirst = func() *trace.FlightRecorder {
	if os.Getenv("LOCKDIAG_TEST_CHILD") != "1" || os.Getenv("LOCKDIAG_TEST_HOST_FR") != "first" {
		return nil
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{})
	if err := fr.Start(); err != nil {
		panic(err)
	}
	return fr
}()

// coexistReport is what a child says about the two recorders.
type coexistReport struct {
	Status       string `json:"status"`       // the monitor's Status().Trace
	Report       string `json:"report"`       // the report of a snapshot
	HostStartErr string `json:"host_start"`   // the host's Start, when lockdiag came first
	HostEnabled  bool   `json:"host_enabled"` // the host's recorder still runs
	WriteErr     string `json:"write_err"`    // auto.Monitor().WriteTrace
	TraceBytes   int    `json:"trace_bytes"`  // what it wrote
	TraceEvents  int    `json:"trace_events"` // events x/exp/trace parsed from it
	ParseErr     string `json:"parse_err"`
}

// coexistChild runs in the child when LOCKDIAG_TEST_HOST_FR is set.
func coexistChild() {
	var rep coexistReport
	m := Monitor()
	rep.Status = m.Status().Trace
	var host *trace.FlightRecorder
	if hostFirst != nil {
		host = hostFirst
	} else {
		host = trace.NewFlightRecorder(trace.FlightRecorderConfig{})
		if err := host.Start(); err != nil {
			rep.HostStartErr = err.Error()
		}
	}
	rep.HostEnabled = host.Enabled()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if _, err := m.WriteTrace(ctx, &buf); err != nil {
		rep.WriteErr = err.Error()
	} else {
		rep.TraceBytes = buf.Len()
		rep.TraceEvents, rep.ParseErr = parseTrace(&buf)
	}
	if info, err := m.Snapshot(ctx, diag.SnapshotOptions{Reason: "coexistence test"}); err == nil {
		if b, err := m.Bundle(info.ID); err == nil {
			if txt, err := b.File("report.txt"); err == nil {
				rep.Report = string(txt)
			}
		}
	}
	if host.Enabled() {
		host.Stop()
	}
	Stop()
	json.NewEncoder(os.Stdout).Encode(rep)
	os.Exit(0)
}

func parseTrace(r io.Reader) (int, string) {
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return 0, err.Error()
	}
	n := 0
	for {
		_, err := tr.ReadEvent()
		if err == io.EOF {
			return n, ""
		}
		if err != nil {
			return n, err.Error()
		}
		n++
	}
}

func runCoexistChild(t *testing.T, order string) coexistReport {
	t.Helper()
	_, stderr, out := runChildRaw(t, "LOCKDIAG_TEST_HOST_FR="+order)
	var rep coexistReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child output %q: %v\nstderr:\n%s", out, err, stderr)
	}
	return rep
}

// TestHostRecorderFirst: a program whose own flight recorder runs before
// the import's init keeps it; lockdiag runs without a trace and says so
// in its status, in WriteTrace's error and in every report.
func TestHostRecorderFirst(t *testing.T) {
	rep := runCoexistChild(t, "first")
	if !rep.HostEnabled {
		t.Error("the host's recorder is not running")
	}
	if !strings.HasPrefix(rep.Status, "unavailable") || !strings.Contains(rep.Status, "flight recorder already enabled") {
		t.Errorf("status trace = %q, want unavailable: flight recorder already enabled", rep.Status)
	}
	if !strings.Contains(rep.WriteErr, "no trace") {
		t.Errorf("WriteTrace error = %q, want one that says there is no trace", rep.WriteErr)
	}
	if !strings.Contains(rep.Report, "trace:   unavailable:") || !strings.Contains(rep.Report, "flight recorder already enabled") {
		t.Errorf("the report does not say the trace is unavailable:\n%s", rep.Report)
	}
}

// TestLockdiagRecorderFirst: after the import, the program's own
// trace.NewFlightRecorder(...).Start() fails, and the documented way
// works: the program writes the window through auto.Monitor().WriteTrace,
// and it parses.
func TestLockdiagRecorderFirst(t *testing.T) {
	rep := runCoexistChild(t, "after")
	if !strings.Contains(rep.HostStartErr, "flight recorder already enabled") {
		t.Errorf("the host's Start = %q, want \"flight recorder already enabled\"", rep.HostStartErr)
	}
	if !strings.Contains(rep.Status, "recording") {
		t.Errorf("status trace = %q, want recording", rep.Status)
	}
	if rep.WriteErr != "" || rep.TraceBytes == 0 || rep.TraceEvents == 0 || rep.ParseErr != "" {
		t.Errorf("writing through lockdiag: err %q, %d bytes, %d events, parse error %q", rep.WriteErr, rep.TraceBytes, rep.TraceEvents, rep.ParseErr)
	}
	if !strings.Contains(rep.Report, "trace:   ") || strings.Contains(rep.Report, "trace:   unavailable") {
		t.Errorf("the snapshot taken beside the host's write has no trace:\n%.600s", rep.Report)
	}
}
