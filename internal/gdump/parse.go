package gdump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrNoGoroutines is returned (wrapped) by [Parse] when the input holds no
// goroutine record at all: it is not a goroutine dump, or it was cut before
// the first one.
var ErrNoGoroutines = errors.New("gdump: no goroutine records found")

// A SyntaxError is a line of a dump that could not be read.
type SyntaxError struct {
	Line int    // 1-based line number in the input
	Msg  string // what was wrong
	Text string // the line, cut to 120 bytes
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("gdump: line %d: %s: %q", e.Line, e.Msg, e.Text)
}

const (
	// maxLineBytes bounds one line of input; longer lines (never printed
	// by the runtime: a frame has at most ~10 argument words, labels are
	// the longest) are reported and skipped.
	maxLineBytes = 1 << 20
	// maxErrors is how many SyntaxErrors Parse returns; the rest are
	// counted.
	maxErrors = 10
)

// Parse reads a goroutine dump in either format (see [Format]) and returns
// the goroutines it could read. The error, if any, joins a [*SyntaxError]
// for each of the first few lines it could not read (a truncated record,
// a garbled frame), or wraps [ErrNoGoroutines]; the returned Dump is
// never nil and holds every goroutine read before and after those lines,
// partial records included. Parse never panics.
func Parse(r io.Reader) (*Dump, error) {
	p := &parser{
		r:      bufio.NewReaderSize(r, 64<<10),
		dump:   &Dump{},
		strs:   make(map[string]string),
		format: 0,
	}
	readErr := p.run()
	if p.format == Traceback {
		p.dump.Format = Traceback
		p.dump.Total = len(p.dump.Goroutines)
	} else if p.format == Aggregated {
		p.dump.Format = Aggregated
		if p.dump.Total == 0 {
			for _, g := range p.dump.Goroutines {
				p.dump.Total += g.Count
			}
		}
	}
	var errs []error
	for _, e := range p.errs {
		errs = append(errs, e)
	}
	if p.nerr > len(p.errs) {
		errs = append(errs, fmt.Errorf("gdump: %d more lines could not be read", p.nerr-len(p.errs)))
	}
	if readErr != nil {
		errs = append(errs, fmt.Errorf("gdump: reading line %d: %w", p.lineNo+1, readErr))
	}
	if len(p.dump.Goroutines) == 0 {
		errs = append(errs, fmt.Errorf("%w (%d lines read)", ErrNoGoroutines, p.lineNo))
	}
	return p.dump, errors.Join(errs...)
}

type parser struct {
	r      *bufio.Reader
	long   []byte // a line longer than the reader's buffer
	lineNo int
	dump   *Dump
	strs   map[string]string
	format Format
	errs   []*SyntaxError
	nerr   int

	// The record being read.
	g          *Goroutine
	anc        *Ancestor // the ancestor stack being read, if any
	pending    Frame     // a function line waiting for its file line
	hasPending bool
	created    bool    // pending is the "created by" frame
	trailing   bool    // the record's last frame is complete
	frames     []Frame // the goroutine's frames so far

	// Slabs: goroutines, frames and argument words are carved from
	// large blocks, so that a dump costs a few allocations per hundred
	// goroutines instead of a dozen per goroutine.
	gSlab     []Goroutine
	frameSlab []Frame
	argSlab   []Arg
	args      []Arg // scratch for parseArgs
	cache     [1024]string
}

func (p *parser) newGoroutine() *Goroutine {
	if len(p.gSlab) == cap(p.gSlab) {
		p.gSlab = make([]Goroutine, 0, 256)
	}
	p.gSlab = p.gSlab[:len(p.gSlab)+1]
	return &p.gSlab[len(p.gSlab)-1]
}

func (p *parser) copyFrames(fs []Frame) []Frame {
	if len(fs) == 0 {
		return nil
	}
	if len(p.frameSlab)+len(fs) > cap(p.frameSlab) {
		p.frameSlab = make([]Frame, 0, max(2048, len(fs)))
	}
	n := len(p.frameSlab)
	p.frameSlab = append(p.frameSlab, fs...)
	return p.frameSlab[n : n+len(fs) : n+len(fs)]
}

func (p *parser) copyArgs(as []Arg) []Arg {
	if len(as) == 0 {
		return nil
	}
	if len(p.argSlab)+len(as) > cap(p.argSlab) {
		p.argSlab = make([]Arg, 0, max(4096, len(as)))
	}
	n := len(p.argSlab)
	p.argSlab = append(p.argSlab, as...)
	return p.argSlab[n : n+len(as) : n+len(as)]
}

// readLine returns the next line without its line ending; skip is set
// for a line too long to keep (it has been reported). The slice is valid
// until the next call.
func (p *parser) readLine() (line []byte, skip bool, err error) {
	line, err = p.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.long = append(p.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = p.r.ReadSlice('\n')
			if len(p.long)+len(line) > maxLineBytes {
				skip = true
				continue
			}
			p.long = append(p.long, line...)
		}
		line = p.long
	}
	if len(line) == 0 && err != nil {
		return nil, false, err
	}
	p.lineNo++
	if skip {
		p.fail(fmt.Sprintf("line longer than %d bytes skipped", maxLineBytes), line)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err == io.EOF {
		err = nil
	}
	return line, skip, err
}

func (p *parser) run() error {
	for {
		line, skip, err := p.readLine()
		if skip {
			continue
		}
		if err != nil {
			p.endRecord(true)
			if err == io.EOF {
				return nil
			}
			return err
		}
		switch p.format {
		case Traceback:
			p.traceback(line)
		case Aggregated:
			p.aggregated(line)
		default:
			p.detect(line)
		}
	}
}

// detect decides the format from the first line that belongs to a record.
// Lines before it (a panic message, "SIGQUIT: quit") are skipped.
func (p *parser) detect(line []byte) {
	switch {
	case isProfileHeader(line) || isCountLine(line):
		p.format = Aggregated
		p.aggregated(line)
	case bytes.HasPrefix(line, []byte("goroutine ")):
		if _, ok := p.parseHeader(line); ok {
			p.format = Traceback
			p.traceback(line)
		}
	}
}

func (p *parser) fail(msg string, line []byte) {
	p.nerr++
	if len(p.errs) < maxErrors {
		text := line
		if len(text) > 120 {
			text = text[:120]
		}
		p.errs = append(p.errs, &SyntaxError{Line: p.lineNo, Msg: msg, Text: string(text)})
	}
}

// intern returns b as a string shared by every occurrence in the dump.
// A small direct-mapped cache in front of the map catches the repeats
// (the same functions and files on every stack) cheaply.
func (p *parser) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := uint(len(b))*0x9e3779b1 ^ uint(b[len(b)-1]) ^ uint(b[len(b)/2])<<8 ^ uint(b[len(b)*3/4])<<16 ^ uint(b[len(b)/4])<<24
	slot := &p.cache[h%uint(len(p.cache))]
	if *slot == string(b) {
		return *slot
	}
	if s, ok := p.strs[string(b)]; ok {
		*slot = s
		return s
	}
	s := string(b)
	if len(p.strs) < 1<<20 {
		p.strs[s] = s
	}
	*slot = s
	return s
}

// endRecord closes the record being read. atEOF reports a record cut by
// the end of the input.
func (p *parser) endRecord(atEOF bool) {
	if p.hasPending {
		what := "frame " + p.pending.Func
		if p.created {
			what = "created-by line"
		}
		if atEOF {
			p.fail(what+" has no file:line line (input truncated?)", nil)
		}
		// A frame without its file line is still worth keeping.
		p.commitPending()
	}
	if p.g != nil {
		p.g.Frames = p.copyFrames(p.frames)
		if atEOF && len(p.g.Frames) == 0 && !p.g.StackUnavailable && p.format == Traceback {
			p.fail(fmt.Sprintf("goroutine %d has no frames (input truncated?)", p.g.ID), nil)
		}
	}
	p.g, p.anc, p.hasPending, p.created, p.trailing = nil, nil, false, false, false
	p.frames = p.frames[:0]
}

func (p *parser) setPending(f Frame, created bool) {
	p.pending, p.hasPending, p.created = f, true, created
}

func (p *parser) commitPending() {
	f := p.pending
	p.hasPending = false
	switch {
	case p.created:
		if p.anc != nil {
			p.anc.CreatedBy = f
		} else {
			p.g.CreatedBy = f
		}
		p.created = false
	case p.anc != nil:
		p.anc.Frames = append(p.anc.Frames, f)
	default:
		p.frames = append(p.frames, f)
	}
	p.trailing = true
}

// ---- debug=2 / traceback ----

var (
	prefixCreatedBy   = []byte("created by ")
	prefixOriginating = []byte("[originating from goroutine ")
	prefixGoroutine   = []byte("goroutine ")
	lineUnavailable   = []byte("goroutine running on other thread; stack unavailable")
	lineAdditional    = []byte("...additional frames elided...")
)

func (p *parser) traceback(line []byte) {
	if p.hasPending {
		if len(line) > 0 && line[0] == '\t' && !bytes.Equal(line[1:], lineUnavailable) {
			p.fileLine(line)
			return
		}
		if p.created {
			p.fail("created-by line has no file:line line", line)
		} else {
			p.fail("frame "+p.pending.Func+" has no file:line line", line)
		}
		p.commitPending()
	}
	if len(line) == 0 {
		p.endRecord(false)
		return
	}
	if bytes.HasPrefix(line, prefixGoroutine) {
		if g, ok := p.parseHeader(line); ok {
			p.endRecord(false)
			g.Line = p.lineNo
			p.dump.Goroutines = append(p.dump.Goroutines, g)
			p.g = g
			return
		}
		if p.g == nil && p.format == 0 {
			return
		}
		if p.g == nil {
			if bytes.HasSuffix(line, []byte(":")) && len(line) > 10 && isDigit(line[10]) {
				p.fail("malformed goroutine header", line)
			}
			return
		}
	}
	if p.g == nil {
		return // text between records
	}
	switch {
	case line[0] == '\t':
		if bytes.Equal(line[1:], lineUnavailable) {
			p.g.StackUnavailable = true
			return
		}
		p.fail("file:line line without a function line", line)
	case bytes.HasPrefix(line, prefixCreatedBy):
		p.createdBy(line[len(prefixCreatedBy):])
	case bytes.HasPrefix(line, prefixOriginating):
		rest := line[len(prefixOriginating):]
		id, ok := parseDecimal(bytes.TrimSuffix(rest, []byte("]:")))
		if !ok || !bytes.HasSuffix(rest, []byte("]:")) {
			p.fail("malformed ancestor line", line)
			return
		}
		p.g.Ancestors = append(p.g.Ancestors, Ancestor{ID: id})
		p.anc = &p.g.Ancestors[len(p.g.Ancestors)-1]
	case bytes.Equal(line, lineAdditional):
		if p.anc == nil {
			p.g.FramesElided = -1
		}
	case bytes.HasPrefix(line, []byte("...")) && bytes.HasSuffix(line, []byte(" frames elided...")):
		n, ok := parseDecimal(line[3 : len(line)-len(" frames elided...")])
		if !ok {
			p.fail("malformed elided-frames line", line)
			return
		}
		p.g.FramesElided = int(n)
	default:
		f, ok := p.funcLine(line)
		if ok {
			p.setPending(f, false)
			return
		}
		{
			if p.trailing {
				// Text right after a record without a blank line
				// ("exit status 2" from go run): the record is over.
				p.endRecord(false)
				return
			}
			p.fail("expected a function call line", line)
		}
	}
}

func (p *parser) createdBy(rest []byte) {
	var f Frame
	if i := bytes.LastIndex(rest, []byte(" in goroutine ")); i >= 0 {
		id, ok := parseDecimal(rest[i+len(" in goroutine "):])
		if !ok {
			p.fail("malformed created-by line", rest)
		} else if p.anc == nil {
			p.g.CreatorID = id
		}
		rest = rest[:i]
	}
	f.Func = p.intern(rest)
	p.setPending(f, true)
}

// funcLine parses "pkg.(*T).m(0x1, {0x2, 0x3}, 0x4?, ...)".
func (p *parser) funcLine(line []byte) (Frame, bool) {
	if len(line) < 3 || line[len(line)-1] != ')' {
		return Frame{}, false
	}
	open := bytes.LastIndexByte(line, '(')
	if open <= 0 {
		return Frame{}, false
	}
	name := line[:open]
	if bytes.IndexByte(name, ' ') >= 0 || bytes.IndexByte(name, '\t') >= 0 {
		return Frame{}, false
	}
	f := Frame{Func: p.intern(name)}
	args := line[open+1 : len(line)-1]
	if string(args) == "..." {
		f.Inlined = true
		return f, true
	}
	if len(args) > 0 {
		var ok bool
		p.args, ok = appendArgs(p.args[:0], args)
		f.Args = p.copyArgs(p.args)
		if !ok {
			p.fail("malformed arguments of "+f.Func, line)
		}
	}
	return f, true
}

// parseArgs reads the runtime's argument list: words "0x1f" or "0x1f?",
// "..." and "_", separated by ", ", with "{...}" around the words of an
// aggregate. It returns what it could read and whether all of it was
// well formed.
func parseArgs(s []byte) ([]Arg, bool) { return appendArgs(make([]Arg, 0, 4), s) }

// appendArgs is parseArgs appending to args.
func appendArgs(args []Arg, s []byte) ([]Arg, bool) {
	depth, param := 0, 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == ',':
			if depth == 0 {
				param++
			}
			i++
		case c == '{':
			depth++
			i++
		case c == '}':
			if depth == 0 {
				return args, false
			}
			depth--
			i++
		case c == '_':
			args = append(args, Arg{Param: param, Kind: Unknown})
			i++
		case c == '.':
			if !bytes.HasPrefix(s[i:], []byte("...")) {
				return args, false
			}
			args = append(args, Arg{Param: param, Kind: Elided})
			i += 3
		case c == '0' && i+1 < len(s) && s[i+1] == 'x':
			j := i + 2
			var v uint64
			for ; j < len(s) && j-i-2 < 17; j++ {
				d, ok := hexDigit(s[j])
				if !ok {
					break
				}
				v = v<<4 | uint64(d)
			}
			if j == i+2 || j-i-2 > 16 {
				return args, false
			}
			a := Arg{Value: v, Param: param}
			if j < len(s) && s[j] == '?' {
				a.Inaccurate = true
				j++
			}
			args = append(args, a)
			i = j
		default:
			return args, false
		}
	}
	return args, depth == 0
}

// fileLine parses "\t/path/to/file.go:123 +0x1f fp=0x.. sp=0x.. pc=0x..".
func (p *parser) fileLine(line []byte) {
	f := &p.pending
	s := line[1:]
	for {
		sp := bytes.LastIndexByte(s, ' ')
		if sp < 0 {
			break
		}
		tok := s[sp+1:]
		switch {
		case bytes.HasPrefix(tok, []byte("+0x")):
			f.Offset, _ = parseHex(tok[3:])
		case bytes.HasPrefix(tok, []byte("pc=0x")):
			f.PC, _ = parseHex(tok[5:])
		case bytes.HasPrefix(tok, []byte("fp=")), bytes.HasPrefix(tok, []byte("sp=")):
		default:
			goto done
		}
		s = s[:sp]
	}
done:
	colon := bytes.LastIndexByte(s, ':')
	n, ok := int64(0), false
	if colon > 0 {
		n, ok = parseDecimal(s[colon+1:])
	}
	if !ok {
		p.fail("malformed file:line line", line)
		f.File = p.intern(s)
	} else {
		f.File = p.intern(s[:colon])
		f.Line = int(n)
	}
	p.commitPending()
}

// parseHeader parses "goroutine 7 [sync.Mutex.Lock, 2 minutes]:",
// "goroutine 7 gp=0x.. m=3 mp=0x.. [running]:" and the label forms of Go
// 1.26 ("[select, labels:{"k": "v"}]:") and Go 1.27 ("[select] {k: v}:").
func (p *parser) parseHeader(line []byte) (*Goroutine, bool) {
	rest := line[len(prefixGoroutine):]
	i := 0
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	id, ok := parseDecimal(rest[:i])
	if !ok {
		return nil, false
	}
	rest = rest[i:]
	open := bytes.Index(rest, []byte(" ["))
	if open < 0 || !bytes.HasSuffix(rest, []byte(":")) {
		return nil, false
	}
	if open > 0 && !bytes.HasPrefix(rest, []byte(" gp=")) && !bytes.HasPrefix(rest, []byte(" m=")) {
		return nil, false
	}
	rest = rest[open+2 : len(rest)-1]
	// The closing bracket is the first ']' outside quotes.
	closeAt := -1
	for j := 0; j < len(rest); j++ {
		if rest[j] == '"' {
			j = skipQuoted(rest, j)
			continue
		}
		if rest[j] == ']' {
			closeAt = j
			break
		}
	}
	if closeAt < 0 {
		return nil, false
	}
	inner, after := rest[:closeAt], rest[closeAt+1:]
	g := p.newGoroutine()
	*g = Goroutine{ID: id, Count: 1}
	if k := bytes.Index(inner, []byte(" labels:{")); k >= 0 {
		labels, n, ok := parseLabels(inner[k+len(" labels:"):])
		if !ok || k+len(" labels:")+n != len(inner) {
			p.fail("malformed labels in goroutine header", line)
		}
		g.Labels = labels
		inner = inner[:k]
	}
	if len(after) > 0 {
		if after[0] != ' ' {
			return nil, false
		}
		labels, n, ok := parseLabels(after[1:])
		if !ok || n != len(after)-1 {
			p.fail("malformed labels in goroutine header", line)
		}
		g.Labels = labels
	}
	status, rest, _ := bytes.Cut(inner, []byte(", "))
	durable := bytes.HasSuffix(status, []byte(" (durable)"))
	status = bytes.TrimSuffix(status, []byte(" (durable)"))
	status = bytes.TrimSuffix(status, []byte(" (scan)"))
	if bytes.HasSuffix(status, []byte(" (leaked)")) {
		g.Leaked = true
		status = status[:len(status)-len(" (leaked)")]
	}
	if durable {
		g.State = p.intern(append(status[:len(status):len(status)], " (durable)"...))
	} else {
		g.State = p.intern(status)
	}
	for len(rest) > 0 {
		var part []byte
		part, rest, _ = bytes.Cut(rest, []byte(", "))
		switch {
		case bytes.HasSuffix(part, []byte(" minutes")):
			n, ok := parseDecimal(part[:len(part)-len(" minutes")])
			if ok {
				g.WaitMinutes = int(n)
			}
		case bytes.Equal(part, []byte("locked to thread")):
			g.LockedToThread = true
		case bytes.HasPrefix(part, []byte("synctest bubble ")):
			g.Bubble, _ = parseDecimal(part[len("synctest bubble "):])
		}
		// Anything else is a later runtime's addition; ignore it.
	}
	return g, true
}

// parseLabels reads "{k: v, "a b": "c"}" (tracebacks) or
// {"k":"v", "k2":"v2"} (debug=1): keys and values are Go-quoted or bare.
// It returns the labels, the bytes consumed and whether they were well
// formed.
func parseLabels(s []byte) (map[string]string, int, bool) {
	if len(s) == 0 || s[0] != '{' {
		return nil, 0, false
	}
	m := make(map[string]string)
	i := 1
	skipSpace := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	token := func() (string, bool) {
		skipSpace()
		if i < len(s) && s[i] == '"' {
			end := skipQuoted(s, i)
			if end >= len(s) {
				return "", false
			}
			v, err := strconv.Unquote(string(s[i : end+1]))
			i = end + 1
			return v, err == nil
		}
		start := i
		for i < len(s) && s[i] != ':' && s[i] != ',' && s[i] != '}' {
			i++
		}
		return string(bytes.TrimRight(s[start:i], " ")), true
	}
	skipSpace()
	if i < len(s) && s[i] == '}' {
		return nil, i + 1, true
	}
	for i < len(s) {
		k, ok := token()
		if !ok {
			return m, i, false
		}
		skipSpace()
		if i >= len(s) || s[i] != ':' {
			return m, i, false
		}
		i++
		v, ok := token()
		if !ok {
			return m, i, false
		}
		m[k] = v
		skipSpace()
		if i >= len(s) {
			return m, i, false
		}
		switch s[i] {
		case '}':
			return m, i + 1, true
		case ',':
			i++
		default:
			return m, i, false
		}
	}
	return m, i, false
}

// skipQuoted returns the index of the quote that closes the string opened
// at s[i], or len(s) if there is none.
func skipQuoted(s []byte, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(s)
}

// ---- debug=1 ----

func isProfileHeader(line []byte) bool {
	i := bytes.Index(line, []byte(" profile: total "))
	if i <= 0 || bytes.IndexByte(line[:i], ' ') >= 0 {
		return false
	}
	_, ok := parseDecimal(line[i+len(" profile: total "):])
	return ok
}

func isCountLine(line []byte) bool {
	i := bytes.Index(line, []byte(" @"))
	if i <= 0 {
		return false
	}
	_, ok := parseDecimal(line[:i])
	return ok
}

func (p *parser) aggregated(line []byte) {
	switch {
	case len(line) == 0:
		p.endRecord(false)
	case isProfileHeader(line):
		p.endRecord(false)
		n, _ := parseDecimal(line[bytes.LastIndexByte(line, ' ')+1:])
		p.dump.Total += int(n)
	case isCountLine(line):
		p.endRecord(false)
		i := bytes.Index(line, []byte(" @"))
		n, _ := parseDecimal(line[:i])
		p.g = p.newGoroutine()
		*p.g = Goroutine{Count: int(n), Line: p.lineNo}
		p.dump.Goroutines = append(p.dump.Goroutines, p.g)
	case p.g == nil:
		// Text between records.
	case bytes.HasPrefix(line, []byte("# labels: ")):
		labels, n, ok := parseLabels(line[len("# labels: "):])
		if !ok || n != len(line)-len("# labels: ") {
			p.fail("malformed labels line", line)
		}
		p.g.Labels = labels
	case bytes.HasPrefix(line, []byte("#\t")):
		p.aggregatedFrame(line)
	default:
		p.fail("expected a \"#\\t0x...\" frame line", line)
	}
}

// aggregatedFrame parses "#\t0x4e1458\tsync.(*RWMutex).RLock+0x58\t\t/usr/local/go/src/sync/rwmutex.go:74"
// (tabwriter pads with extra tabs) or "#\t0x4e1458" for a PC without a
// function.
func (p *parser) aggregatedFrame(line []byte) {
	var fields [4][]byte
	n := 0
	for _, f := range bytes.Split(line[2:], []byte("\t")) {
		if len(f) == 0 {
			continue
		}
		if n == len(fields)-1 {
			p.fail("too many fields in frame line", line)
			return
		}
		fields[n] = f
		n++
	}
	if n == 0 || !bytes.HasPrefix(fields[0], []byte("0x")) {
		p.fail("malformed frame line", line)
		return
	}
	var f Frame
	var ok bool
	if f.PC, ok = parseHex(fields[0][2:]); !ok {
		p.fail("malformed PC in frame line", line)
		return
	}
	if n >= 2 {
		fn := fields[1]
		if k := bytes.LastIndex(fn, []byte("+0x")); k > 0 {
			f.Offset, _ = parseHex(fn[k+3:])
			fn = fn[:k]
		}
		f.Func = p.intern(fn)
	}
	if n >= 3 {
		s := fields[2]
		colon := bytes.LastIndexByte(s, ':')
		l := int64(0)
		if colon > 0 {
			l, ok = parseDecimal(s[colon+1:])
		}
		if colon <= 0 || !ok {
			p.fail("malformed file:line in frame line", line)
			f.File = p.intern(s)
		} else {
			f.File = p.intern(s[:colon])
			f.Line = int(l)
		}
	}
	p.frames = append(p.frames, f)
}

// ---- small helpers ----

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseDecimal parses a non-negative decimal that fits in an int64 (at
// most 18 digits).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		d, ok := hexDigit(c)
		if !ok {
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}
