package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/flightrec"
)

const analyzeAbout = `
Analyze prints the lock-contention report of FILE: who waited on which lock,
for how long, and which critical sections made them wait.

FILE is a Go execution trace (from runtime/trace.Start, "go test -trace",
net/http/pprof's /debug/pprof/trace, or a bundle's trace.out; gzipped is fine)
or a lockdiag snapshot bundle (.zip), whose mutex and block profile deltas
are joined with its trace. "-" reads standard input.

-mutex and -block join pprof mutex and block profiles given separately (for
example from /debug/pprof/mutex); they should cover the same time as the
trace, and replace a bundle's own profiles.`

// Bounds on what is read into memory from an input.
const (
	maxProfileBytes = 256 << 20
	maxMetaBytes    = 4 << 20
)

func (c *cli) analyze(ctx context.Context, args []string) int {
	fs := newFlagSet("analyze", "[-json] [-top N] [-budget D] [-mutex FILE] [-block FILE] FILE|-", analyzeAbout)
	asJSON := fs.Bool("json", false, "print the report as JSON (durations in nanoseconds)")
	top := fs.Int("top", 10, "list the top `N` lock sites")
	budget := fs.Duration("budget", time.Minute, "time limit of the analysis; the report is marked partial when it runs out")
	mutexFile := fs.String("mutex", "", "join the mutex profile in `FILE` (pprof format)")
	blockFile := fs.String("block", "", "join the block profile in `FILE` (pprof format)")
	mutexFraction := fs.Int("mutex-fraction", 0, "the mutex profile `fraction` -mutex was recorded at, if known")
	blockRate := fs.Int("block-rate", 0, "the block profile `rate` (ns) -block was recorded at, if known")
	pos, code, ok := c.parse(fs, args, 1, "FILE")
	if !ok {
		return code
	}
	switch {
	case *top < 1:
		return c.usageError(fs, "-top must be at least 1, not %d", *top)
	case *budget <= 0:
		return c.usageError(fs, "-budget must be positive, not %v", *budget)
	case *mutexFraction < 0 || *blockRate < 0:
		return c.usageError(fs, "-mutex-fraction and -block-rate cannot be negative")
	}
	name := pos[0]
	opts := flightrec.AnalyzeOptions{Top: *top, Budget: *budget}

	in, err := c.openInput(name)
	if err != nil {
		return c.fail("analyze", err)
	}
	defer in.Close()

	var header string // what the bundle is, for the text report
	var trace io.Reader
	if in.zip != nil {
		b, err := readBundle(in.zip, name)
		if err != nil {
			return c.fail("analyze", err)
		}
		defer b.close()
		opts.Mutex, opts.Block = b.mutex, b.block
		opts.MutexFraction, opts.BlockRate = b.meta.MutexProfileFraction, b.meta.BlockProfileRate
		if b.trace != nil {
			trace = b.trace
		} else {
			opts.TraceUnavailable = "the bundle has no trace.out"
			if b.meta.Trace != "" {
				opts.TraceUnavailable += " (" + b.meta.Trace + ")"
			}
		}
		header = b.header(name)
	} else {
		trace = in.r
	}

	if *mutexFile != "" {
		if opts.Mutex, err = readProfileFile(*mutexFile); err != nil {
			return c.fail("analyze", err)
		}
	}
	if *blockFile != "" {
		if opts.Block, err = readProfileFile(*blockFile); err != nil {
			return c.fail("analyze", err)
		}
	}
	if *mutexFraction > 0 {
		opts.MutexFraction = *mutexFraction
	}
	if *blockRate > 0 {
		opts.BlockRate = *blockRate
	}

	// Analyze cannot be canceled: on an interrupt, stop waiting for it
	// (closing the input makes it return soon).
	type result struct {
		rep *flightrec.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{nil, fmt.Errorf("the analysis failed: %v", r)}
			}
		}()
		rep, err := flightrec.Analyze(trace, opts)
		done <- result{rep, err}
	}()
	var rep *flightrec.Report
	select {
	case <-ctx.Done():
		return c.fail("analyze", errors.New("interrupted"))
	case r := <-done:
		rep, err = r.rep, r.err
	}
	if err != nil {
		if errors.Is(err, flightrec.ErrUnreadableTrace) {
			what := "not a Go execution trace or a lockdiag bundle"
			switch {
			case in.zip != nil:
				what = "its trace.out is not a readable Go execution trace"
			case bytes.HasPrefix(in.head, []byte("go 1.")):
				what = "a Go execution trace that cannot be read (corrupt, or from a Go version this build does not know)"
			}
			return c.fail("analyze", fmt.Errorf("%s: %s: %v", displayName(name), what, err))
		}
		return c.fail("analyze", fmt.Errorf("%s: %v", displayName(name), err))
	}

	out := bufio.NewWriter(c.stdout)
	if *asJSON {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return c.fail("analyze", err)
		}
		out.Write(data)
		out.WriteByte('\n')
	} else {
		if header != "" {
			fmt.Fprintf(out, "%s\n\n", header)
		}
		if err := rep.WriteText(out); err != nil {
			return c.fail("analyze", err)
		}
	}
	if err := out.Flush(); err != nil {
		return c.fail("analyze", err)
	}
	return exitOK
}

func displayName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// input is an opened FILE argument: either a zip (a bundle) or a stream
// (a trace, decompressed if it was gzipped).
type input struct {
	zip    *zip.Reader
	r      io.Reader
	head   []byte // the first bytes of the (decompressed) trace
	closer io.Closer
}

func (in *input) Close() {
	if in.closer != nil {
		in.closer.Close()
	}
}

var (
	zipMagic  = []byte("PK\x03\x04")
	gzipMagic = []byte{0x1f, 0x8b}
)

// openInput opens name ("-" for stdin) and tells a zip from a trace by its
// first bytes.
func (c *cli) openInput(name string) (*input, error) {
	if name == "-" {
		data, err := io.ReadAll(c.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %v", err)
		}
		if len(data) == 0 {
			return nil, errors.New("standard input is empty: give a Go execution trace or a lockdiag bundle")
		}
		if bytes.HasPrefix(data, zipMagic) {
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return nil, fmt.Errorf("standard input: not a readable zip file: %v", err)
			}
			return &input{zip: zr}, nil
		}
		return unzipped(name, bytes.NewReader(data), nil)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory: give a Go execution trace or a lockdiag bundle (.zip)", name)
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if n == 0 {
		f.Close()
		return nil, fmt.Errorf("%s is empty: give a Go execution trace or a lockdiag bundle", name)
	}
	if bytes.HasPrefix(head, zipMagic) {
		zr, err := zip.NewReader(f, st.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a readable zip file: %v", name, err)
		}
		return &input{zip: zr, closer: f}, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return unzipped(name, bufio.NewReaderSize(f, 1<<20), f)
}

// unzipped returns r as an input, gunzipping it when it starts with the
// gzip magic.
func unzipped(name string, r io.Reader, closer io.Closer) (*input, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	head, _ := br.Peek(2)
	if !bytes.Equal(head, gzipMagic) {
		head, _ = br.Peek(16)
		return &input{r: br, head: bytes.Clone(head), closer: closer}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, fmt.Errorf("%s: not a readable gzip file: %v", displayName(name), err)
	}
	unzipped := bufio.NewReaderSize(zr, 1<<20)
	head, _ = unzipped.Peek(16)
	return &input{r: unzipped, head: bytes.Clone(head), closer: closer}, nil
}

// bundleMeta is the part of a bundle's meta.json that analyze uses.
type bundleMeta struct {
	ID                   string       `json:"id"`
	Time                 time.Time    `json:"time"`
	Trigger              diag.Trigger `json:"trigger"`
	Trace                string       `json:"trace"`
	MutexProfileFraction int          `json:"mutex_profile_fraction"`
	BlockProfileRate     int          `json:"block_profile_rate"`
}

// bundle is what analyze takes from a snapshot bundle.
type bundle struct {
	meta         bundleMeta
	haveMeta     bool
	trace        io.Reader
	traceCloser  io.Closer
	mutex, block *profile.Profile
}

func (b *bundle) close() {
	if b.traceCloser != nil {
		b.traceCloser.Close()
	}
}

func (b *bundle) header(name string) string {
	if !b.haveMeta || b.meta.ID == "" {
		return "lockdiag bundle " + displayName(name)
	}
	s := fmt.Sprintf("lockdiag bundle %s: snapshot %s", displayName(name), b.meta.ID)
	if !b.meta.Time.IsZero() {
		s += ", " + b.meta.Time.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	if b.meta.Trigger.Kind != "" {
		s += "\ntrigger: " + b.meta.Trigger.String()
	}
	return s
}

// readBundle finds trace.out, mutex.pb.gz, block.pb.gz and meta.json in a
// bundle. Files are matched by their base name, so a bundle that was
// unpacked into a folder and zipped again still works.
func readBundle(zr *zip.Reader, name string) (*bundle, error) {
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		base := path.Base(f.Name)
		if _, dup := files[base]; !dup && !f.FileInfo().IsDir() {
			files[base] = f
		}
	}
	name = displayName(name)
	if files["trace.out"] == nil && files["mutex.pb.gz"] == nil && files["block.pb.gz"] == nil {
		return nil, fmt.Errorf("%s: a zip file, but not a lockdiag bundle: it has no trace.out, mutex.pb.gz or block.pb.gz", name)
	}
	b := &bundle{}
	if f := files["meta.json"]; f != nil {
		data, err := readZipFile(f, maxMetaBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: meta.json: %v", name, err)
		}
		if err := json.Unmarshal(data, &b.meta); err != nil {
			return nil, fmt.Errorf("%s: meta.json: %v", name, err)
		}
		b.haveMeta = true
	}
	for _, p := range []struct {
		file string
		dst  **profile.Profile
	}{{"mutex.pb.gz", &b.mutex}, {"block.pb.gz", &b.block}} {
		f := files[p.file]
		if f == nil {
			continue
		}
		data, err := readZipFile(f, maxProfileBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", name, p.file, err)
		}
		if *p.dst, err = profile.ParseData(data); err != nil {
			return nil, fmt.Errorf("%s: %s is not a pprof profile: %v", name, p.file, err)
		}
	}
	if f := files["trace.out"]; f != nil {
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: trace.out: %v", name, err)
		}
		b.trace, b.traceCloser = bufio.NewReaderSize(rc, 1<<20), rc
	}
	return b, nil
}

func readZipFile(f *zip.File, limit int64) ([]byte, error) {
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

func readProfileFile(name string) (*profile.Profile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(data) > maxProfileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxProfileBytes>>20)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a pprof profile: %v", name, err)
	}
	return p, nil
}
