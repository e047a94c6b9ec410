package bundle

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/lockreport"
)

func build(t *testing.T) ([]byte, Meta, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		TraceFile:      []byte("go 1.26 trace\x00not really a trace"),
		MutexFile:      {0x1f, 0x8b, 1, 2, 3},
		GoroutinesFile: []byte("goroutine profile: total 1\n1 @ 0x1\n"),
		NamedLocksFile: []byte(`{"locks":[{"lock.id":"inventory_shard_7","lock.type":"mutex"}]}`),
	}
	var b Builder
	// The trace is deflated ahead, as a snapshot does.
	z, err := Deflate(files[TraceFile])
	if err != nil {
		t.Fatal(err)
	}
	if back, err := io.ReadAll(z.Open()); err != nil || !bytes.Equal(back, files[TraceFile]) || z.Size() != int64(len(files[TraceFile])) {
		t.Fatalf("Deflated reads back %q, %v (size %d), want %q", back, err, z.Size(), files[TraceFile])
	}
	b.AddDeflated(TraceFile, z)
	for _, name := range []string{MutexFile, GoroutinesFile, NamedLocksFile} {
		b.Add(name, files[name])
	}
	b.Note(BlockFile, "off", "block profiling is off", time.Now())
	meta := Meta{
		ID: "20261130-120000-000", Time: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Trigger:              Trigger{Kind: TriggerManual},
		MutexProfileFraction: 100, MainModule: "example.com/svc", Trace: "10 MB covering 10s",
	}
	rep := &lockreport.Report{Headline: "16 goroutines waited on the Mutex locked in main.(*Cache).Get"}
	data, meta, err := b.Build(meta, rep)
	if err != nil {
		t.Fatal(err)
	}
	return data, meta, files
}

// TestBuildOpen: what a Builder writes, Open reads back whole: the files,
// meta.json (with every file's size, its own included), the report and
// the options for a new analysis.
func TestBuildOpen(t *testing.T) {
	data, built, files := build(t)
	b, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	meta := b.Meta()
	if meta.ID != built.ID || !meta.Time.Equal(built.Time) || meta.Headline != built.Headline || meta.MainModule != "example.com/svc" {
		t.Errorf("meta read back = %+v, built %+v", meta, built)
	}
	if meta.Headline == "" || !strings.Contains(meta.Headline, "(*Cache).Get") {
		t.Errorf("meta headline %q is not the report's", meta.Headline)
	}
	if len(meta.Collection) != 1 || meta.Collection[0].Part != BlockFile || meta.Collection[0].Status != "off" {
		t.Errorf("collection notes = %+v", meta.Collection)
	}
	sizes := map[string]int64{}
	for _, f := range meta.Files {
		sizes[f.Name] = f.Bytes
	}
	for name, want := range files {
		got, err := b.File(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s read back as %q (%v), want %q", name, got, err, want)
		}
		if sizes[name] != int64(len(want)) {
			t.Errorf("meta.json lists %s with %d bytes, want %d", name, sizes[name], len(want))
		}
	}
	metaJSON, err := b.File(MetaFile)
	if err != nil || sizes[MetaFile] != int64(len(metaJSON)) {
		t.Errorf("meta.json lists itself with %d bytes, it has %d (%v)", sizes[MetaFile], len(metaJSON), err)
	}
	for _, name := range []string{ReportTextFile, ReportJSONFile} {
		if !b.Has(name) || sizes[name] == 0 {
			t.Errorf("no %s in the bundle (listed with %d bytes)", name, sizes[name])
		}
	}
	if txt, _ := b.File(ReportTextFile); !strings.Contains(string(txt), built.Headline) {
		t.Errorf("report.txt does not hold the headline:\n%s", txt)
	}
	rep, err := b.Report()
	if err != nil || rep.Headline != built.Headline {
		t.Errorf("Report() = %+v, %v", rep, err)
	}
	if m, err := ReadMeta(bytes.NewReader(data), int64(len(data))); err != nil || m.ID != built.ID {
		t.Errorf("ReadMeta = %+v, %v", m, err)
	}

	opts, err := b.Options()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opts.MutexProfile, files[MutexFile]) || opts.MutexFraction != 100 || opts.BlockProfile != nil {
		t.Errorf("options' profiles: mutex %q at 1/%d, block %q", opts.MutexProfile, opts.MutexFraction, opts.BlockProfile)
	}
	if !bytes.Equal(opts.Goroutines, files[GoroutinesFile]) || opts.MainModule != "example.com/svc" || opts.TraceUnavailable != "" {
		t.Errorf("options: goroutines %q, module %q, trace unavailable %q", opts.Goroutines, opts.MainModule, opts.TraceUnavailable)
	}
	if len(opts.NamedLocks) != 1 || opts.NamedLocks[0].Name != "inventory_shard_7" {
		t.Errorf("options' named locks = %+v", opts.NamedLocks)
	}

	// Compressed files are stored as they are; the rest deflated.
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		want := zip.Deflate
		if strings.HasSuffix(f.Name, ".gz") {
			want = zip.Store
		}
		if f.Method != want {
			t.Errorf("%s stored with method %d, want %d", f.Name, f.Method, want)
		}
	}

	if _, err := b.File(WallFile); !errors.Is(err, ErrNoFile) {
		t.Errorf("a missing file: %v, want ErrNoFile", err)
	}
	if _, err := b.Open(WallFile); !errors.Is(err, ErrNoFile) {
		t.Errorf("opening a missing file: %v, want ErrNoFile", err)
	}
}

// TestOpenRezipped: a bundle unpacked into a folder and zipped again, or
// a zip of a trace alone, opens; the options say when there is no trace.
func TestOpenRezipped(t *testing.T) {
	zipOf := func(files map[string]string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for name, content := range files {
			w, err := zw.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(content))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	b, err := Open(zipOf(map[string]string{"snap/" + TraceFile: "trace bytes", "snap/notes.md": "mine"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.File(TraceFile); err != nil || string(got) != "trace bytes" {
		t.Errorf("trace.out in a folder: %q, %v", got, err)
	}
	if b.Meta().ID != "" {
		t.Errorf("a zip without meta.json has meta %+v", b.Meta())
	}

	b, err = Open(zipOf(map[string]string{MutexFile: "profile", MetaFile: `{"id":"x","trace":"unavailable: the program owns the flight recorder"}`}))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := b.Options()
	if err != nil || !strings.Contains(opts.TraceUnavailable, "no trace.out") || !strings.Contains(opts.TraceUnavailable, "owns the flight recorder") {
		t.Errorf("options of a bundle without a trace: %q, %v", opts.TraceUnavailable, err)
	}
}

// TestOpenRejects: what is not a bundle gets an error that says what it
// is, never a panic.
func TestOpenRejects(t *testing.T) {
	data, _, _ := build(t)
	var other bytes.Buffer
	zw := zip.NewWriter(&other)
	w, _ := zw.Create("README.md")
	w.Write([]byte("hello"))
	zw.Close()
	var badMeta bytes.Buffer
	zw = zip.NewWriter(&badMeta)
	w, _ = zw.Create(MetaFile)
	w.Write([]byte("{not json"))
	zw.Close()

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a readable zip"},
		{"text", []byte("goroutine 1 [running]:\n"), "not a readable zip"},
		{"cut short", data[:len(data)/2], "not a readable zip"},
		{"another zip", other.Bytes(), "not a lockdiag bundle"},
		{"bad meta.json", badMeta.Bytes(), "meta.json"},
	} {
		b, err := Open(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open = %v, %v; want an error saying %q", c.name, b, err, c.want)
		}
	}
	if _, err := ReadMeta(bytes.NewReader(other.Bytes()), int64(other.Len())); err == nil || !strings.Contains(err.Error(), "no meta.json") {
		t.Errorf("ReadMeta of a zip without meta.json: %v", err)
	}
}
