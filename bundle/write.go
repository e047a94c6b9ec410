package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
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
	name string
	data []byte
}

// Add adds a file. The data is kept, not copied.
func (b *Builder) Add(name string, data []byte) {
	b.files = append(b.files, file{name, data})
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
	files := append(b.files[:len(b.files):len(b.files)], file{ReportTextFile, txt.Bytes()}, file{ReportJSONFile, js})

	meta.Files = []File{{Name: MetaFile}}
	for _, f := range files {
		meta.Files = append(meta.Files, File{Name: f.name, Bytes: int64(len(f.data))})
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
	}
	buf.Grow(size + 1024)
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	for _, f := range append([]file{{MetaFile, metaJSON}}, files...) {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: meta.Time}
		if strings.HasSuffix(f.name, ".gz") {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err == nil {
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
