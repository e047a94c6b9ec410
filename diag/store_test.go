package diag

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
)

// fakeBundle builds a small bundle for meta, with a payload of size bytes.
func fakeBundle(t *testing.T, m bundle.Meta, size int) []byte {
	t.Helper()
	meta, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{"meta.json": meta, "trace.out.gz": bytes.Repeat([]byte{'x'}, size)} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func addN(t *testing.T, s *store, n, size int) []string {
	t.Helper()
	var ids []string
	base := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	for i := range n {
		id := s.nextID(base.Add(time.Duration(i) * time.Second))
		meta := bundle.Meta{ID: id, Headline: "h" + id}
		s.add(meta, fakeBundle(t, meta, size))
		ids = append(ids, id)
	}
	return ids
}

func TestStoreLimits(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Keep: 3, MaxDisk: 1 << 30, MemoryKeep: 2, MemoryMaxBytes: 1 << 30}
	s := newStore(cfg, slog.New(slog.DiscardHandler))
	ids := addN(t, s, 5, 100)

	list := s.list()
	if len(list) != 3 {
		t.Fatalf("listed %d snapshots, want 3 (Keep): %+v", len(list), list)
	}
	if list[0].ID != ids[4] || list[2].ID != ids[2] {
		t.Errorf("list order = %s..%s, want newest %s first", list[0].ID, list[2].ID, ids[4])
	}
	if len(s.mem) != 2 {
		t.Errorf("%d in memory, want 2", len(s.mem))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
	if len(files) != 3 {
		t.Errorf("%d files on disk, want 3", len(files))
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v %v, want 0644", f, fi.Mode(), err)
		}
	}
	// An evicted-from-memory snapshot is served from disk.
	data, err := storeFile(s, ids[2], "meta.json")
	if err != nil {
		t.Fatalf("reading from disk: %v", err)
	}
	var meta bundle.Meta
	if err := json.Unmarshal(data, &meta); err != nil || meta.ID != ids[2] {
		t.Errorf("meta from disk = %+v, %v", meta, err)
	}
	if _, err := storeFile(s, ids[0], "meta.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned snapshot: err = %v, want ErrNotFound", err)
	}
	if id, err := s.resolve("latest"); err != nil || id != ids[4] {
		t.Errorf("latest = %s, %v; want %s", id, err, ids[4])
	}
}

func TestStoreDiskBytes(t *testing.T) {
	dir := t.TempDir()
	s := newStore(Config{Dir: dir, Keep: 100, MaxDisk: 25_000, MemoryKeep: 1, MemoryMaxBytes: 1 << 30}, slog.New(slog.DiscardHandler))
	addN(t, s, 5, 10_000)
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 25_000 || len(files) != 2 {
		t.Errorf("%d files, %d bytes on disk; want 2 within 25000", len(files), total)
	}
}

func TestStoreMemoryBytes(t *testing.T) {
	s := newStore(Config{Dir: DirOff, MemoryKeep: 100, MemoryMaxBytes: 25_000}, slog.New(slog.DiscardHandler))
	ids := addN(t, s, 5, 10_000)
	if s.memBytes > 25_000 || len(s.mem) != 2 {
		t.Errorf("%d in memory, %d bytes; want 2 within 25000", len(s.mem), s.memBytes)
	}
	if got := s.list(); len(got) != 2 || got[0].ID != ids[4] {
		t.Errorf("list = %+v", got)
	}
}

func TestStoreUnwritableDirKeepsMemoryCopy(t *testing.T) {
	// A regular file where the directory should be: MkdirAll fails.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(Config{Dir: filepath.Join(blocker, "snaps"), Keep: 3, MaxDisk: 1 << 30, MemoryKeep: 2, MemoryMaxBytes: 1 << 30}, slog.New(slog.DiscardHandler))
	ids := addN(t, s, 1, 100)
	list := s.list()
	if len(list) != 1 || list[0].OnDisk || list[0].DiskError == "" {
		t.Fatalf("list = %+v, want one memory-only snapshot with a disk error", list)
	}
	if _, err := storeFile(s, ids[0], "meta.json"); err != nil {
		t.Errorf("memory copy unreadable: %v", err)
	}
	if st := s.diskStatus(); !strings.Contains(st, "failing") {
		t.Errorf("disk status = %q, want it to say failing", st)
	}
}

func TestStoreSeesEarlierRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Keep: 10, MaxDisk: 1 << 30, MemoryKeep: 4, MemoryMaxBytes: 1 << 30}
	first := newStore(cfg, slog.New(slog.DiscardHandler))
	ids := addN(t, first, 2, 100)
	// Junk in the directory is ignored.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "20261121-000000-000.zip"), []byte("not a zip"), 0o644)

	second := newStore(cfg, slog.New(slog.DiscardHandler))
	list := second.list()
	if len(list) != 2 || list[0].ID != ids[1] || !list[0].OnDisk || list[0].Headline != "h"+ids[1] {
		t.Errorf("second run lists %+v, want the first run's two", list)
	}
}

func TestStoreIDs(t *testing.T) {
	s := newStore(Config{Dir: DirOff}, slog.New(slog.DiscardHandler))
	at := time.Date(2026, 11, 22, 4, 8, 35, 123_000_000, time.UTC)
	a, b, c := s.nextID(at), s.nextID(at), s.nextID(at.Add(-time.Hour))
	if a != "20261122-040835-123" || b != a+"-1" || c != a+"-2" {
		t.Errorf("ids = %s %s %s", a, b, c)
	}
	for _, id := range []string{a, b, c} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, bad := range []string{"", "latest", "../etc/passwd", "20261122-040835-123/../x", "20261122-040835-12", "20261122-040835-123.zip"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
		if bad != "latest" {
			if _, err := s.resolve(bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("resolve(%q) err = %v", bad, err)
			}
		}
	}
}

// storeFile returns one file of a stored bundle.
func storeFile(s *store, id, name string) ([]byte, error) {
	b, err := s.get(id)
	if err != nil {
		return nil, err
	}
	return b.File(name)
}
