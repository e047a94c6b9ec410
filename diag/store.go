package diag

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
)

// ErrNotFound is returned for a snapshot id that does not exist.
var ErrNotFound = errors.New("not found")

// idPattern is the shape of every snapshot id: UTC time to the
// millisecond, plus a counter when two share a millisecond.
var idPattern = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[0-9]{3}(-[0-9]{1,6})?$`)

// ValidID reports whether id has the shape of a snapshot id. Anything
// else is refused before it reaches a file name.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func makeID(t time.Time) string {
	t = t.UTC()
	return t.Format("20060102-150405-") + fmt.Sprintf("%03d", t.Nanosecond()/1e6)
}

// store keeps snapshot bundles: a bounded ring in memory and a bounded
// directory on disk. Safe for concurrent use.
type store struct {
	dir      string // "" when memory only
	keep     int
	maxDisk  int64
	memKeep  int
	memMax   int64
	log      *slog.Logger
	mu       sync.Mutex
	mem      []*memEntry // oldest first
	memBytes int64
	lastBase string // the newest id made, without counter
	seq      int
	disk     map[string]SnapshotInfo // infos of bundles on disk, by id
	diskErr  error                   // the last disk failure, nil once a write works
	// writeFault, if set, fails disk writes with its error (tests).
	writeFault func() error
}

type memEntry struct {
	info SnapshotInfo
	zip  []byte
}

func newStore(cfg Config, log *slog.Logger) *store {
	s := &store{
		keep:    cfg.Keep,
		maxDisk: cfg.MaxDisk,
		memKeep: cfg.MemoryKeep,
		memMax:  cfg.MemoryMaxBytes,
		log:     log,
		disk:    make(map[string]SnapshotInfo),
	}
	if cfg.Dir != DirOff {
		s.dir = cfg.Dir
	}
	return s
}

// nextID returns a new unique id for a snapshot taken at t. Ids sort in
// the order they were made, also when the clock steps back.
func (s *store) nextID(t time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := makeID(t)
	if base > s.lastBase {
		s.lastBase, s.seq = base, 0
		return base
	}
	s.seq++
	return fmt.Sprintf("%s-%d", s.lastBase, s.seq)
}

// infoOf describes a stored bundle of size bytes.
func infoOf(meta bundle.Meta, size int64) SnapshotInfo {
	return SnapshotInfo{
		ID: meta.ID, Time: meta.Time, Trigger: meta.Trigger, Headline: meta.Headline, Partial: meta.Partial,
		Took: meta.Took, Files: meta.Files, Bytes: size,
	}
}

// add stores a bundle in memory, then writes it to disk. A disk failure
// is logged and recorded in the info; the memory copy stays.
func (s *store) add(meta bundle.Meta, zipData []byte) SnapshotInfo {
	info := infoOf(meta, int64(len(zipData)))
	info.InMemory = true
	if s.dir != "" {
		if err := s.write(info.ID, zipData); err != nil {
			s.log.Error("diag: snapshot kept in memory only", "id", info.ID, "err", err)
			info.DiskError = err.Error()
		} else {
			info.OnDisk = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mem = append(s.mem, &memEntry{info: info, zip: zipData})
	s.memBytes += int64(len(zipData))
	// Evict the oldest, but always keep the newest one.
	for len(s.mem) > 1 && (len(s.mem) > s.memKeep || s.memBytes > s.memMax) {
		old := s.mem[0]
		s.mem = s.mem[1:]
		s.memBytes -= int64(len(old.zip))
		if !old.info.OnDisk {
			s.log.Warn("diag: snapshot dropped from memory and not on disk", "id", old.info.ID)
		}
	}
	if info.OnDisk {
		d := info
		d.InMemory = false
		s.disk[info.ID] = d
		s.prune()
	}
	return info
}

func (s *store) write(id string, data []byte) error {
	if s.writeFault != nil {
		if err := s.writeFault(); err != nil {
			err = fmt.Errorf("writing %s: %w", filepath.Join(s.dir, id+".zip"), err)
			s.setDiskErr(err)
			return err
		}
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		s.setDiskErr(err)
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+id+".*.tmp")
	if err != nil {
		s.setDiskErr(err)
		return err
	}
	// CreateTemp makes the file 0600: a bundle is as readable as the
	// program's other files (0644; the directory keeps its own mode).
	err = tmp.Chmod(0o644)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.dir, id+".zip"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		err = fmt.Errorf("writing %s: %w", filepath.Join(s.dir, id+".zip"), err)
	}
	s.setDiskErr(err)
	return err
}

func (s *store) setDiskErr(err error) {
	s.mu.Lock()
	s.diskErr = err
	s.mu.Unlock()
}

// prune removes the oldest bundles on disk beyond the count and byte
// limits. Called with s.mu held.
func (s *store) prune() {
	s.refreshDisk()
	ids := make([]string, 0, len(s.disk))
	var total int64
	for id, info := range s.disk {
		ids = append(ids, id)
		total += info.Bytes
	}
	slices.Sort(ids)
	for len(ids) > 0 && (len(ids) > s.keep || total > s.maxDisk) {
		id := ids[0]
		ids = ids[1:]
		err := os.Remove(filepath.Join(s.dir, id+".zip"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("diag: pruning snapshot", "id", id, "err", err)
		}
		total -= s.disk[id].Bytes
		delete(s.disk, id)
		for _, e := range s.mem {
			if e.info.ID == id {
				e.info.OnDisk = false
			}
		}
	}
}

// refreshDisk syncs s.disk with the directory: bundles written by an
// earlier run of the program appear, removed ones disappear. Called with
// s.mu held.
func (s *store) refreshDisk() {
	if s.dir == "" {
		return
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.diskErr = err
		}
		return
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".zip")
		if !ok || !ValidID(id) || !e.Type().IsRegular() {
			continue
		}
		seen[id] = true
		if _, ok := s.disk[id]; ok {
			continue
		}
		info, err := readInfo(filepath.Join(s.dir, e.Name()))
		if err != nil {
			s.log.Warn("diag: unreadable snapshot on disk", "file", e.Name(), "err", err)
			continue
		}
		s.disk[id] = info
	}
	for id := range s.disk {
		if !seen[id] {
			delete(s.disk, id)
		}
	}
}

// readInfo describes a bundle on disk from its meta.json.
func readInfo(path string) (SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SnapshotInfo{}, err
	}
	meta, err := bundle.ReadMeta(f, st.Size())
	if err != nil {
		return SnapshotInfo{}, err
	}
	info := infoOf(meta, st.Size())
	info.OnDisk = true
	return info, nil
}

// list returns every snapshot, newest first.
func (s *store) list() []SnapshotInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshDisk()
	byID := make(map[string]SnapshotInfo, len(s.disk)+len(s.mem))
	for id, info := range s.disk {
		byID[id] = info
	}
	for _, e := range s.mem {
		byID[e.info.ID] = e.info
	}
	out := make([]SnapshotInfo, 0, len(byID))
	for _, info := range byID {
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int { return strings.Compare(b.ID, a.ID) })
	return out
}

// resolve maps "latest" to the newest id.
func (s *store) resolve(id string) (string, error) {
	if id == "latest" {
		all := s.list()
		if len(all) == 0 {
			return "", fmt.Errorf("%w: no snapshots yet", ErrNotFound)
		}
		return all[0].ID, nil
	}
	if !ValidID(id) {
		return "", fmt.Errorf("%w: %q is not a snapshot id", ErrNotFound, id)
	}
	return id, nil
}

// get returns the bundle of id ("latest" for the newest).
func (s *store) get(id string) (*bundle.Bundle, error) {
	id, err := s.resolve(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var data []byte
	for _, e := range s.mem {
		if e.info.ID == id {
			data = e.zip
		}
	}
	dir := s.dir
	s.mu.Unlock()
	if data == nil {
		if dir == "" {
			return nil, fmt.Errorf("%w: snapshot %s", ErrNotFound, id)
		}
		data, err = os.ReadFile(filepath.Join(dir, id+".zip"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: snapshot %s", ErrNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("diag: snapshot %s: %w", id, err)
		}
	}
	b, err := bundle.Open(data)
	if err != nil {
		return nil, fmt.Errorf("diag: snapshot %s: %w", id, err)
	}
	return b, nil
}

// diskStatus describes the disk side for the status page.
func (s *store) diskStatus() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.dir == "":
		return "off (memory only)"
	case s.diskErr != nil:
		return fmt.Sprintf("%s (failing: %v; snapshots kept in memory)", s.dir, s.diskErr)
	}
	return s.dir
}
