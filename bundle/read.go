package bundle

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/lockdiag/lockdiag/lockreport"
)

// ErrNoFile is wrapped by the error [Bundle.File] returns for a file the
// bundle does not have.
var ErrNoFile = errors.New("no such file in the bundle")

// Limits on what is read into memory from a bundle's files.
const (
	maxMetaBytes = 4 << 20
	maxFileBytes = 1 << 30
)

// A Bundle is an opened bundle. Its methods are safe for concurrent use.
type Bundle struct {
	data  []byte
	files map[string]*zip.File // by base name
	meta  Meta
}

// ReadMeta reads only the meta.json of the bundle in r (size bytes): it
// does not read the other files.
func ReadMeta(r io.ReaderAt, size int64) (Meta, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Meta{}, fmt.Errorf("bundle: not a zip file: %w", err)
	}
	for _, f := range zr.File {
		if path.Base(f.Name) == MetaFile {
			return readMeta(f)
		}
	}
	return Meta{}, errors.New("bundle: no meta.json")
}

func readMeta(f *zip.File) (Meta, error) {
	var meta Meta
	js, err := readFile(f, maxMetaBytes)
	if err == nil {
		err = json.Unmarshal(js, &meta)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("bundle: meta.json: %w", err)
	}
	return meta, nil
}

// Open reads a bundle from its zip bytes, which it keeps. Files are found
// by their base name, so a bundle that was unpacked into a folder and
// zipped again still opens. A zip without meta.json opens too (its Meta is
// zero) if it has a trace or a profile; anything else is an error.
func Open(data []byte) (*Bundle, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a readable zip file: %w", err)
	}
	b := &Bundle{data: data, files: make(map[string]*zip.File)}
	for _, f := range zr.File {
		base := path.Base(f.Name)
		if _, dup := b.files[base]; !dup && !f.FileInfo().IsDir() {
			b.files[base] = f
		}
	}
	if b.files[TraceFile] == nil && b.files[MutexFile] == nil && b.files[BlockFile] == nil && b.files[MetaFile] == nil {
		return nil, errors.New("a zip file, but not a lockdiag bundle: it has no meta.json, trace.out, mutex.pb.gz or block.pb.gz")
	}
	if f := b.files[MetaFile]; f != nil {
		if b.meta, err = readMeta(f); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Meta returns the bundle's meta.json.
func (b *Bundle) Meta() Meta { return b.meta }

// Bytes returns the bundle's zip. It must not be modified.
func (b *Bundle) Bytes() []byte { return b.data }

// Has reports whether the bundle has the named file.
func (b *Bundle) Has(name string) bool { return b.files[name] != nil }

// File returns one file's content. It returns an error wrapping
// [ErrNoFile] if there is no such file.
func (b *Bundle) File(name string) ([]byte, error) {
	f := b.files[name]
	if f == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoFile, name)
	}
	data, err := readFile(f, maxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("bundle: %s: %w", name, err)
	}
	return data, nil
}

// Open returns a reader of one file's content, for files too large to
// hold in memory twice (trace.out).
func (b *Bundle) Open(name string) (io.ReadCloser, error) {
	f := b.files[name]
	if f == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoFile, name)
	}
	return f.Open()
}

// Report returns the analysis stored in report.json.
func (b *Bundle) Report() (*lockreport.Report, error) {
	js, err := b.File(ReportJSONFile)
	if err != nil {
		return nil, err
	}
	var rep lockreport.Report
	if err := json.Unmarshal(js, &rep); err != nil {
		return nil, fmt.Errorf("bundle: report.json: %w", err)
	}
	return &rep, nil
}

// Options returns what [lockreport.Analyze] needs to analyze the bundle
// again besides its trace: the profiles and their rates, the program's
// main module, the scans of the parked goroutines and the OS threads
// stored with the report, and the named locks and lock-order inversions
// of named-locks.json. When the bundle has no trace, TraceUnavailable
// says why.
func (b *Bundle) Options() (lockreport.Options, error) {
	opts := lockreport.Options{
		MutexFraction:  b.meta.MutexProfileFraction,
		MutexFractions: b.meta.MutexProfileFractions,
		BlockRate:      b.meta.BlockProfileRate,
		MainModule:     b.meta.MainModule,
	}
	var err error
	if b.Has(MutexFile) {
		if opts.MutexProfile, err = b.File(MutexFile); err != nil {
			return opts, err
		}
	}
	if b.Has(BlockFile) {
		if opts.BlockProfile, err = b.File(BlockFile); err != nil {
			return opts, err
		}
	}
	if !b.Has(TraceFile) {
		opts.TraceUnavailable = "the bundle has no trace.out"
		if b.meta.Trace != "" {
			opts.TraceUnavailable += " (" + b.meta.Trace + ")"
		}
	}
	for _, name := range []string{GoroutinesFullFile, GoroutinesFile} {
		if b.Has(name) {
			if opts.Goroutines, err = b.File(name); err != nil {
				return opts, err
			}
			break
		}
	}
	if b.Has(NamedLocksFile) {
		data, err := b.File(NamedLocksFile)
		if err != nil {
			return opts, err
		}
		var nl NamedLocks
		if err := json.Unmarshal(data, &nl); err != nil {
			return opts, fmt.Errorf("bundle: %s: %w", NamedLocksFile, err)
		}
		opts.NamedLocks, opts.Inversions = nl.Locks, nl.Inversions
	}
	if b.Has(ReportJSONFile) {
		rep, err := b.Report()
		if err != nil {
			return opts, err
		}
		opts.Parked = rep.Parked
		if rep.OSThreads != nil {
			th := rep.OSThreads.Threads
			opts.Threads = &th
		}
	}
	return opts, nil
}

func readFile(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d MiB", limit>>20)
	}
	return data, nil
}
