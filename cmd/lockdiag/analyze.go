package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockdiag/lockdiag/bundle"
	"github.com/lockdiag/lockdiag/lockreport"
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
trace, and replace a bundle's own profiles.

-module names the traced program's main module: the report says where its
own code entered each lock ("called from main.handleRequest"). A bundle
records it; for other traces package main is used, or else the outermost
module outside the standard library that the waiters' stacks share.`

// Bounds on what is read into memory from an input.
const (
	maxProfileBytes = 256 << 20
	maxBundleBytes  = 4 << 30
)

func (c *cli) analyze(ctx context.Context, args []string) int {
	fs := newFlagSet("analyze", "[-json] [-top N] [-budget D] [-mutex FILE] [-block FILE] [-module PATH] FILE|-", analyzeAbout)
	asJSON := fs.Bool("json", false, "print the report as JSON (durations in nanoseconds)")
	top := fs.Int("top", 10, "list the top `N` lock sites")
	budget := fs.Duration("budget", time.Minute, "time limit of the analysis; the report is marked partial when it runs out")
	mutexFile := fs.String("mutex", "", "join the mutex profile in `FILE` (pprof format)")
	blockFile := fs.String("block", "", "join the block profile in `FILE` (pprof format)")
	mutexFraction := fs.Int("mutex-fraction", 0, "the mutex profile `fraction` -mutex was recorded at, if known")
	blockRate := fs.Int("block-rate", 0, "the block profile `rate` (ns) -block was recorded at, if known")
	module := fs.String("module", "", "the traced program's main module `path` (its own code; default: a bundle's, else package main or the outermost module the stacks share)")
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
	in, err := c.openInput(name)
	if err != nil {
		return c.fail("analyze", err)
	}
	defer in.Close()

	var opts lockreport.Options
	var header bytes.Buffer // what the bundle is, for the text report
	trace := in.r
	if b := in.bundle; b != nil {
		if opts, err = b.Options(); err != nil {
			return c.fail("analyze", fmt.Errorf("%s: %v", displayName(name), err))
		}
		fmt.Fprintf(&header, "lockdiag bundle %s\n", displayName(name))
		bundle.WriteHeader(&header, b.Meta())
		if b.Has(bundle.TraceFile) {
			rc, err := b.Open(bundle.TraceFile)
			if err != nil {
				return c.fail("analyze", fmt.Errorf("%s: trace.out: %v", displayName(name), err))
			}
			defer rc.Close()
			trace = bufio.NewReaderSize(rc, 1<<20)
		}
	}
	opts.Top = *top
	if *mutexFile != "" {
		if opts.MutexProfile, err = readProfileFile(*mutexFile); err != nil {
			return c.fail("analyze", err)
		}
	}
	if *blockFile != "" {
		if opts.BlockProfile, err = readProfileFile(*blockFile); err != nil {
			return c.fail("analyze", err)
		}
	}
	if *mutexFraction > 0 {
		opts.MutexFraction = *mutexFraction
	}
	if *blockRate > 0 {
		opts.BlockRate = *blockRate
	}
	if *module != "" {
		opts.MainModule = *module
	}

	// An interrupt cancels ctx, and the time limit ends the analysis
	// early: either way the report says how far it got.
	actx, cancel := context.WithTimeout(ctx, *budget)
	defer cancel()
	rep, err := analyzeSafely(actx, trace, opts)
	if ctx.Err() != nil {
		return c.fail("analyze", errors.New("interrupted"))
	}
	if err != nil {
		if errors.Is(err, lockreport.ErrUnreadableTrace) {
			what := "not a Go execution trace or a lockdiag bundle"
			switch {
			case in.bundle != nil:
				what = "its trace.out is not a readable Go execution trace"
			case bytes.HasPrefix(in.head, []byte("go 1.")):
				what = "a Go execution trace that cannot be read (corrupt, or from a Go version this build does not know)"
			}
			detail := strings.TrimPrefix(err.Error(), lockreport.ErrUnreadableTrace.Error()+": ")
			return c.fail("analyze", fmt.Errorf("%s: %s (%s)", displayName(name), what, detail))
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
		if header.Len() > 0 {
			fmt.Fprintf(out, "%s\n", header.Bytes())
		}
		if err := rep.WriteText(out); err != nil {
			return c.fail("analyze", err)
		}
	}
	if err := out.Flush(); err != nil {
		return c.fail("analyze", err)
	}
	// A trace cut short or corrupt part way gives a report of what was
	// read; say so and fail, so that scripts notice. Running out of the
	// time budget (-budget) is not a fault of the input.
	if rep.Partial && actx.Err() == nil {
		return c.fail("analyze", fmt.Errorf("%s: the report covers only part of the trace: %s", displayName(name), rep.PartialReason))
	}
	return exitOK
}

func displayName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

// input is an opened FILE argument: either a bundle or a stream (a
// trace, decompressed if it was gzipped).
type input struct {
	bundle *bundle.Bundle
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
			b, err := bundle.Open(data)
			if err != nil {
				return nil, fmt.Errorf("standard input: %v", err)
			}
			return &input{bundle: b}, nil
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
		defer f.Close()
		if st.Size() > maxBundleBytes {
			return nil, fmt.Errorf("%s: larger than %d MiB, not a lockdiag bundle", name, maxBundleBytes>>20)
		}
		data, err := os.ReadFile(name)
		if err == nil {
			var b *bundle.Bundle
			if b, err = bundle.Open(data); err == nil {
				return &input{bundle: b}, nil
			}
		}
		return nil, fmt.Errorf("%s: %v", name, err)
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

// readProfileFile reads a pprof profile file; lockreport parses it.
func readProfileFile(name string) ([]byte, error) {
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
	if _, err := profile.ParseData(data); err != nil {
		return nil, fmt.Errorf("%s is not a pprof profile: %v", name, err)
	}
	return data, nil
}

// analyzeSafely runs the analysis, turning a panic in it into an error.
func analyzeSafely(ctx context.Context, trace io.Reader, opts lockreport.Options) (rep *lockreport.Report, err error) {
	defer func() {
		if r := recover(); r != nil {
			rep, err = nil, fmt.Errorf("the analysis failed: %v", r)
		}
	}()
	return lockreport.Analyze(ctx, trace, opts)
}
