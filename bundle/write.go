package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/lockreport"
)

// A Builder gathers a bundle's files and the notes on how each part was
// collected, then writes the bundle. The zero value is ready to use; a
// Builder is used by one goroutine.
type Builder struct {
	files []file
	notes []Note
}

type file struct {
	name     string
	data     []byte
	deflated *Deflated // data compressed ahead of Build; data is nil
}

// A Deflated is a file's contents deflated ahead of [Builder.Build], so
// that its uncompressed bytes need not be kept until then: a snapshot
// compresses the trace window as soon as it has it, and its analysis
// reads the trace back through [Deflated.Open]. The window's bytes can
// then be collected before the parse, which holds about a window of its
// own.
type Deflated struct {
	data []byte // raw deflate
	crc  uint32
	size int64
}

// Deflate compresses data at the fastest level.
func Deflate(data []byte) (*Deflated, error) {
	var buf bytes.Buffer
	buf.Grow(len(data)/3 + 1024)
	fw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if _, err := fw.Write(data); err != nil {
		return nil, fmt.Errorf("bundle: deflating: %w", err)
	}
	if err := fw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: deflating: %w", err)
	}
	out := buf.Bytes()
	if cap(out) > len(out)+len(out)/4 {
		out = bytes.Clone(out)
	}
	return &Deflated{data: out, crc: crc32.ChecksumIEEE(data), size: int64(len(data))}, nil
}

// Size returns the uncompressed size.
func (d *Deflated) Size() int64 { return d.size }

// Compressed returns the compressed size.
func (d *Deflated) Compressed() int64 { return int64(len(d.data)) }

// Open returns a reader of the uncompressed contents.
func (d *Deflated) Open() io.Reader { return flate.NewReader(bytes.NewReader(d.data)) }

// AddDeflated adds a file deflated ahead (see [Deflate]).
func (b *Builder) AddDeflated(name string, d *Deflated) {
	b.files = append(b.files, file{name: name, deflated: d})
}

// Add adds a file. The data is kept, not copied.
func (b *Builder) Add(name string, data []byte) {
	b.files = append(b.files, file{name: name, data: data})
}

// Note records what happened to a part of the bundle, which started at
// start.
func (b *Builder) Note(part, status, detail string, start time.Time) {
	b.notes = append(b.notes, Note{Part: part, Status: status, Detail: detail, Took: time.Since(start).Round(time.Microsecond)})
}

// Build writes the report (report.txt and report.json) and meta.json, and
// returns the bundle as a zip together with its meta, whose Files,
// Headline, Partial and Collection it fills in. Compressed files are
// stored as they are; the rest is deflated at the fastest level: bundles
// are built on the host's CPU.
func (b *Builder) Build(meta Meta, rep *lockreport.Report) ([]byte, Meta, error) {
	meta.Headline, meta.Partial = rep.Headline, rep.Partial
	meta.Collection = b.notes
	var txt bytes.Buffer
	if err := WriteText(&txt, meta, rep); err != nil {
		return nil, Meta{}, fmt.Errorf("bundle: writing the report: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, Meta{}, fmt.Errorf("bundle: encoding the report: %w", err)
	}
	files := append(b.files[:len(b.files):len(b.files)], file{name: ReportTextFile, data: txt.Bytes()}, file{name: ReportJSONFile, data: js})

	meta.Files = []File{{Name: MetaFile}}
	for _, f := range files {
		n := int64(len(f.data))
		if f.deflated != nil {
			n = f.deflated.size
		}
		meta.Files = append(meta.Files, File{Name: f.name, Bytes: n})
	}
	// meta.json lists its own size: encode until it holds still (the
	// size's digits can change it once).
	var metaJSON []byte
	for range 3 {
		if metaJSON, err = json.MarshalIndent(meta, "", "  "); err != nil {
			return nil, Meta{}, fmt.Errorf("bundle: encoding meta.json: %w", err)
		}
		if meta.Files[0].Bytes == int64(len(metaJSON)) {
			break
		}
		meta.Files[0].Bytes = int64(len(metaJSON))
	}

	// The zip is at most the files plus their headers: sized so, its
	// buffer never doubles on the way.
	var buf bytes.Buffer
	size := len(metaJSON)
	for _, f := range files {
		size += len(f.data) + 128 + 2*len(f.name)
		if f.deflated != nil {
			size += len(f.deflated.data)
		}
	}
	buf.Grow(size + 1024)
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	for _, f := range append([]file{{name: MetaFile, data: metaJSON}}, files...) {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: meta.Time}
		if strings.HasSuffix(f.name, ".gz") {
			h.Method = zip.Store
		}
		var w io.Writer
		var err error
		if d := f.deflated; d != nil {
			h.CRC32, h.CompressedSize64, h.UncompressedSize64 = d.crc, uint64(len(d.data)), uint64(d.size)
			if w, err = zw.CreateRaw(h); err == nil {
				_, err = w.Write(d.data)
			}
		} else if w, err = zw.CreateHeader(h); err == nil {
			_, err = w.Write(f.data)
		}
		if err != nil {
			return nil, Meta{}, fmt.Errorf("bundle: writing %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, Meta{}, fmt.Errorf("bundle: %w", err)
	}
	// The memory ring counts lengths: keep a right-sized copy when
	// compression left much of the buffer unused.
	if out := buf.Bytes(); cap(out) <= len(out)+len(out)/4 {
		return out, meta, nil
	}
	return bytes.Clone(buf.Bytes()), meta, nil
}
