package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/internal/testkit/contention"
	"github.com/lockdiag/lockdiag/lockreport"
)

// contend runs contention.Mutex (waiters and holders in
// contention.HotLockWorker) for d and waits for its goroutines to exit.
func contend(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	wait := contention.Mutex(ctx, 8, 50*time.Microsecond)
	wait()
}

// contentionTrace returns an execution trace of contend, written by
// runtime/trace.Start.
func contentionTrace(t *testing.T) []byte {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("tracing is already enabled (go test -trace?)")
	}
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("cannot trace: %v", err)
	}
	contend(200 * time.Millisecond)
	trace.Stop()
	return buf.Bytes()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeReport(t *testing.T, r result) *lockreport.Report {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("got %v", r)
	}
	var rep lockreport.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, r.stdout)
	}
	return &rep
}

func hasHotLockSite(rep *lockreport.Report) bool {
	for _, s := range rep.Sites {
		if strings.HasSuffix(s.Func, "contention.HotLockWorker") && s.Kind == "Mutex.Lock" && s.Total > 0 {
			return true
		}
	}
	return false
}

func TestAnalyzeTrace(t *testing.T) {
	data := contentionTrace(t)
	file := writeTemp(t, "trace.out", data)

	r := runCLI(t, nil, nil, "analyze", file)
	if r.code != exitOK || !strings.Contains(r.stdout, "HotLockWorker") || !strings.Contains(r.stdout, "LOCK SITES") {
		t.Fatalf("analyze %s: want the report naming HotLockWorker; got %v", file, r)
	}
	if r.stderr != "" {
		t.Errorf("analyze printed to stderr: %s", r.stderr)
	}

	rep := decodeReport(t, runCLI(t, nil, nil, "analyze", "-json", file))
	if !hasHotLockSite(rep) || rep.LockWait <= 0 || rep.Window == nil {
		t.Errorf("analyze -json: want a Mutex.Lock site in HotLockWorker, lock wait and a window; got sites %+v, lock wait %v, window %v", rep.Sites, rep.LockWait, rep.Window)
	}

	// Flags after the file, -top, and the trace on stdin.
	rep = decodeReport(t, runCLI(t, nil, bytes.NewReader(data), "analyze", "-", "-json", "-top", "1"))
	if len(rep.Sites) != 1 || !hasHotLockSite(rep) {
		t.Errorf("analyze - -json -top 1 (stdin): want exactly the HotLockWorker site; got %+v", rep.Sites)
	}

	// A gzipped trace.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	rep = decodeReport(t, runCLI(t, nil, nil, "analyze", "-json", writeTemp(t, "trace.out.gz", gz.Bytes())))
	if !hasHotLockSite(rep) {
		t.Errorf("analyze of a gzipped trace: no HotLockWorker site; got %+v", rep.Sites)
	}
}

// snapshotBundle takes a snapshot of a real diag.Monitor while
// contention.Mutex runs, with both profiles on, and returns the bundle.
func snapshotBundle(t *testing.T) []byte {
	t.Helper()
	if trace.IsEnabled() {
		t.Skip("tracing is already enabled (go test -trace?)")
	}
	m, err := diag.New(diag.Config{
		Dir:                  t.TempDir(),
		Rules:                diag.RulesOff,
		Interval:             20 * time.Millisecond,
		MutexProfileFraction: 1,
		BlockProfileRate:     1,
		WallProfile:          -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	contend(300 * time.Millisecond)
	info, err := m.Snapshot(context.Background(), diag.SnapshotOptions{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bundle(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rezip copies a zip, leaving out the named files.
func rezip(t *testing.T, data []byte, drop ...string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if contains(drop, f.Name) {
			continue
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestAnalyzeBundle(t *testing.T) {
	data := snapshotBundle(t)
	file := writeTemp(t, "bundle.zip", data)

	r := runCLI(t, nil, nil, "analyze", file)
	for _, want := range []string{"lockdiag bundle " + file + "\nlockdiag snapshot ", "trigger: manual", "HotLockWorker", "PROFILES (mutex fraction 1/1, block rate 1ns)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("analyze %s: no %q in the output; got %v", file, want, r)
		}
	}

	rep := decodeReport(t, runCLI(t, nil, nil, "analyze", "-json", file))
	if !hasHotLockSite(rep) {
		t.Errorf("analyze -json of the bundle: no HotLockWorker site; got %+v", rep.Sites)
	}
	p := rep.Profiles
	if p == nil || p.MutexFraction != 1 || p.BlockRate != 1 || p.MutexTotal <= 0 || p.BlockTotal <= 0 {
		t.Fatalf("analyze -json of the bundle: want both profiles joined at the bundle's rates; got %+v", p)
	}
	// Joined: the trace's site carries its block profile entry, its
	// holder the mutex profile's.
	var blockJoined, mutexJoined bool
	for _, s := range rep.Sites {
		if !strings.HasSuffix(s.Func, "HotLockWorker") {
			continue
		}
		blockJoined = blockJoined || (s.BlockProfile != nil && s.BlockProfile.Delay > 0)
		for _, h := range s.Holders {
			mutexJoined = mutexJoined || (h.MutexProfile != nil && h.MutexProfile.Delay > 0)
		}
	}
	if !blockJoined || !mutexJoined {
		t.Errorf("the HotLockWorker site is not joined with the profiles: block %v, mutex %v; sites %+v", blockJoined, mutexJoined, rep.Sites)
	}

	// The same bundle on stdin.
	rep = decodeReport(t, runCLI(t, nil, bytes.NewReader(data), "analyze", "-json", "-"))
	if !hasHotLockSite(rep) || rep.Profiles == nil || rep.Profiles.MutexTotal <= 0 {
		t.Errorf("analyze -json - (bundle on stdin): got sites %+v, profiles %+v", rep.Sites, rep.Profiles)
	}

	// A bundle without its trace: the report comes from the profiles.
	noTrace := writeTemp(t, "notrace.zip", rezip(t, data, "trace.out"))
	rep = decodeReport(t, runCLI(t, nil, nil, "analyze", "-json", noTrace))
	if !strings.Contains(rep.TraceUnavailable, "no trace.out") || rep.Profiles == nil || rep.Profiles.MutexTotal <= 0 {
		t.Errorf("analyze of a bundle without trace.out: want a profile-only report saying why; got trace_unavailable %q, profiles %+v", rep.TraceUnavailable, rep.Profiles)
	}

	// The bundle's profiles given separately, joined with its trace.
	dir := t.TempDir()
	unzip(t, data, dir, "trace.out", "mutex.pb.gz", "block.pb.gz")
	rep = decodeReport(t, runCLI(t, nil, nil, "analyze", "-json",
		"-mutex", filepath.Join(dir, "mutex.pb.gz"), "-block", filepath.Join(dir, "block.pb.gz"), "-block-rate", "1",
		filepath.Join(dir, "trace.out")))
	p = rep.Profiles
	if !hasHotLockSite(rep) || p == nil || p.MutexTotal <= 0 || p.BlockTotal <= 0 || p.BlockRate != 1 || p.MutexFraction != 0 {
		t.Errorf("analyze -mutex -block: want both profiles joined (block rate 1, mutex fraction unknown); got %+v", p)
	}
}

func unzip(t *testing.T, data []byte, dir string, names ...string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		rc, err := zr.Open(name)
		if err != nil {
			t.Fatalf("bundle has no %s: %v", name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.out")
	os.WriteFile(garbage, []byte("this is not a trace, just some text\n"), 0o644)
	empty := filepath.Join(dir, "empty.out")
	os.WriteFile(empty, nil, 0o644)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("notes.txt")
	w.Write([]byte("hello"))
	zw.Close()
	notBundle := filepath.Join(dir, "other.zip")
	os.WriteFile(notBundle, zb.Bytes(), 0o644)
	oldTrace := filepath.Join(dir, "old.trace")
	os.WriteFile(oldTrace, []byte("go 1.19 trace\x00\x00\x00\x01\x02\x03"), 0o644)
	badZip := filepath.Join(dir, "bad.zip")
	os.WriteFile(badZip, []byte("PK\x03\x04 and then nothing"), 0o644)
	var badTrace bytes.Buffer
	zw = zip.NewWriter(&badTrace)
	w, _ = zw.Create("trace.out")
	w.Write([]byte("garbage"))
	zw.Close()
	badTraceZip := filepath.Join(dir, "badtrace.zip")
	os.WriteFile(badTraceZip, badTrace.Bytes(), 0o644)

	for _, tc := range []struct {
		args  []string
		stdin string
		want  []string
	}{
		{[]string{garbage}, "", []string{garbage, "not a Go execution trace or a lockdiag bundle"}},
		{[]string{oldTrace}, "", []string{oldTrace, "a Go execution trace that cannot be read"}},
		{[]string{"-"}, "garbage on stdin", []string{"standard input", "not a Go execution trace"}},
		{[]string{"-"}, "", []string{"standard input is empty"}},
		{[]string{empty}, "", []string{empty, "is empty"}},
		{[]string{dir}, "", []string{dir, "is a directory"}},
		{[]string{filepath.Join(dir, "missing.out")}, "", []string{"missing.out", "no such file"}},
		{[]string{notBundle}, "", []string{notBundle, "not a lockdiag bundle"}},
		{[]string{badZip}, "", []string{badZip, "not a readable zip file"}},
		{[]string{badTraceZip}, "", []string{badTraceZip, "its trace.out is not a readable Go execution trace"}},
		{[]string{"-mutex", garbage, badTraceZip}, "", []string{garbage, "is not a pprof profile"}},
	} {
		r := runCLI(t, nil, strings.NewReader(tc.stdin), append([]string{"analyze"}, tc.args...)...)
		if r.code != exitFailure || r.stdout != "" {
			t.Errorf("analyze %s: want exit 1 and no output; got %v", strings.Join(tc.args, " "), r)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("analyze %s: stderr has no %q: %s", strings.Join(tc.args, " "), w, r.stderr)
			}
		}
		if strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("analyze %s: want a one-line error; got %q", strings.Join(tc.args, " "), r.stderr)
		}
	}
}

// TestAnalyzeTruncatedTrace: a trace cut short gives the report of what
// was read, and a failure that says so.
func TestAnalyzeTruncatedTrace(t *testing.T) {
	data, err := os.ReadFile("../../lockreport/testdata/convoy.trace")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.trace")
	if err := os.WriteFile(cut, data[:len(data)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, nil, "analyze", cut)
	if r.code != exitFailure {
		t.Errorf("analyze of a truncated trace: exit %d, want %d\nstderr: %s", r.code, exitFailure, r.stderr)
	}
	if !strings.Contains(r.stderr, "covers only part of the trace") || !strings.Contains(r.stderr, cut) {
		t.Errorf("stderr does not say the trace was cut: %q", r.stderr)
	}
	if r.stdout == "" {
		t.Error("no report of the part that was read")
	}
}
