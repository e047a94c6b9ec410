package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits on the input of [Parse].
const (
	// MaxInput is the longest rule text Parse accepts, in bytes.
	MaxInput = 4096
	// MaxRules is the most rules Parse accepts in one text.
	MaxRules = 32
)

// An Op is the comparison of a rule. The zero value is [Greater].
type Op uint8

const (
	Greater      Op = iota // >
	GreaterEqual           // >=
)

// String returns ">" or ">=".
func (o Op) String() string {
	if o == GreaterEqual {
		return ">="
	}
	return ">"
}

// holds reports whether v op threshold is true. NaN compares false.
func (o Op) holds(v, threshold float64) bool {
	if o == GreaterEqual {
		return v >= threshold
	}
	return v > threshold
}

// A Rule is one lock-wait SLO: a signal compared with an absolute
// threshold, or with a multiple of the signal's own moving baseline.
type Rule struct {
	// Signal is the name of the signal the rule watches.
	Signal string
	// Op is the comparison.
	Op Op
	// Threshold is the absolute threshold of a threshold rule, in the
	// signal's unit (seconds for durations). Unused when Factor > 0.
	Threshold float64
	// Factor > 0 makes this a baseline rule: its threshold is Factor
	// times the signal's baseline, but at least Min and at most Max.
	Factor float64
	// Min is the floor of a baseline rule's threshold.
	Min float64
	// Max is the ceiling of a baseline rule's threshold: a value above it
	// always breaches, however high the baseline has grown. Zero means
	// no ceiling.
	Max float64
	// For is how long the condition must hold before the rule breaches.
	For time.Duration
}

// IsBaseline reports whether r compares with a baseline.
func (r Rule) IsBaseline() bool { return r.Factor > 0 }

// Ceiling returns the ceiling of a baseline rule's threshold: Max, or
// +Inf when there is none.
func (r Rule) Ceiling() float64 {
	if r.Max > 0 {
		return r.Max
	}
	return math.Inf(1)
}

// String returns r in the canonical form of the rule language, which
// Parse reads back into an equal Rule: numbers in the shortest form that
// round-trips, thresholds given as durations printed in seconds, "for"
// durations as [time.Duration.String] prints them, a zero Min and a zero
// For left out. For example "mutex_wait > 4x baseline min 1 for 100ms".
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Signal)
	b.WriteByte(' ')
	b.WriteString(r.Op.String())
	b.WriteByte(' ')
	if r.IsBaseline() {
		b.WriteString(formatNumber(r.Factor))
		b.WriteString("x baseline")
		if r.Min != 0 {
			b.WriteString(" min ")
			b.WriteString(formatNumber(r.Min))
		}
		if r.Max != 0 {
			b.WriteString(" max ")
			b.WriteString(formatNumber(r.Max))
		}
	} else {
		b.WriteString(formatNumber(r.Threshold))
	}
	if r.For != 0 {
		b.WriteString(" for ")
		b.WriteString(r.For.String())
	}
	return b.String()
}

// formatNumber prints v so that parseValue reads back the same float64:
// integers below 1e15 in plain digits, everything else in the shortest
// form of strconv's 'g' format.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Parse reads rules in the rule language (see the package doc). Empty
// rules are allowed, so "" and ";" give no rules and a nil error.
//
// Every signal must be one of signals; if signals is nil, any identifier
// is accepted. Errors start with "rules:" and say which rule, at which
// column (byte offset + 1, or line and column if text has several lines),
// what was expected and what was found instead. Texts longer than
// [MaxInput] and texts with more than [MaxRules] rules are errors. Parse
// never panics.
func Parse(text string, signals []string) ([]Rule, error) {
	if len(text) > MaxInput {
		return nil, fmt.Errorf("rules: text is %d bytes long, the limit is %d", len(text), MaxInput)
	}
	p := &parser{text: text, signals: signals}
	var rs []Rule
	for {
		tok := p.next()
		switch tok.kind {
		case tokEOF:
			return rs, nil
		case tokSemi:
			continue
		}
		p.ruleNum = len(rs) + 1
		if len(rs) == MaxRules {
			return nil, p.errorf(tok, "too many rules (the limit is %d)", MaxRules)
		}
		r, err := p.rule(tok)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
}

type tokKind uint8

const (
	tokEOF  tokKind = iota
	tokSemi         // ;
	tokOp           // one or more of > < = !
	tokWord         // anything else up to a space, ';' or operator byte
)

type token struct {
	kind tokKind
	off  int // byte offset in the text
	text string
}

// found describes tok for an error message.
func (t token) found() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	}
	return quote(t.text)
}

// quote quotes s for an error message, cut after 32 bytes.
func quote(s string) string {
	if len(s) > 32 {
		return strconv.Quote(s[:32]) + "..."
	}
	return strconv.Quote(s)
}

type parser struct {
	text    string
	off     int
	signals []string
	ruleNum int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isOpByte(c byte) bool { return c == '>' || c == '<' || c == '=' || c == '!' }

func (p *parser) next() token {
	for p.off < len(p.text) && isSpace(p.text[p.off]) {
		p.off++
	}
	start := p.off
	if start == len(p.text) {
		return token{kind: tokEOF, off: start}
	}
	c := p.text[start]
	switch {
	case c == ';':
		p.off++
		return token{kind: tokSemi, off: start, text: ";"}
	case isOpByte(c):
		for p.off < len(p.text) && isOpByte(p.text[p.off]) {
			p.off++
		}
		return token{kind: tokOp, off: start, text: p.text[start:p.off]}
	}
	for p.off < len(p.text) {
		c := p.text[p.off]
		if isSpace(c) || c == ';' || isOpByte(c) {
			break
		}
		p.off++
	}
	return token{kind: tokWord, off: start, text: p.text[start:p.off]}
}

// errorf returns an error positioned at tok.
func (p *parser) errorf(tok token, format string, args ...any) error {
	return fmt.Errorf("rules: rule %d at %s: %s", p.ruleNum, p.position(tok.off), fmt.Sprintf(format, args...))
}

func (p *parser) position(off int) string {
	if !strings.Contains(p.text, "\n") {
		return fmt.Sprintf("column %d", off+1)
	}
	before := p.text[:off]
	line := strings.Count(before, "\n") + 1
	col := off - (strings.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// rule parses one rule whose first token is first.
func (p *parser) rule(first token) (Rule, error) {
	var r Rule
	if first.kind != tokWord || !isIdent(first.text) {
		return r, p.errorf(first, "expected a signal name, found %s", first.found())
	}
	if p.signals != nil && !contains(p.signals, first.text) {
		return r, p.errorf(first, "unknown signal %s (known signals: %s)", quote(first.text), strings.Join(p.signals, ", "))
	}
	r.Signal = first.text

	op := p.next()
	switch {
	case op.kind == tokOp && op.text == ">":
		r.Op = Greater
	case op.kind == tokOp && op.text == ">=":
		r.Op = GreaterEqual
	default:
		return r, p.errorf(op, "expected \">\" or \">=\" after %s, found %s", quote(r.Signal), op.found())
	}

	val := p.next()
	v, isFactor, err := parseValue(val, true)
	if err != nil {
		return r, p.errorf(val, "expected a number, duration or factor (like 4x) after %q, found %s%s", op.text, val.found(), err)
	}
	after := val.text
	if isFactor {
		if v < 1 {
			return r, p.errorf(val, "the factor %s must be at least 1", quote(val.text))
		}
		r.Factor = v
		tok := p.next()
		if tok.kind != tokWord || tok.text != "baseline" {
			return r, p.errorf(tok, "expected \"baseline\" after %s, found %s", quote(val.text), tok.found())
		}
		after = "baseline"
	} else {
		r.Threshold = v
	}

	tok := p.next()
	sawMin, sawMax, sawFor := false, false, false
	if isFactor && tok.kind == tokWord && tok.text == "min" {
		val := p.next()
		v, _, err := parseValue(val, false)
		if err != nil {
			return r, p.errorf(val, "expected a number or duration after \"min\", found %s%s", val.found(), err)
		}
		r.Min = v
		after, sawMin = val.text, true
		tok = p.next()
	}
	if isFactor && tok.kind == tokWord && tok.text == "max" {
		val := p.next()
		v, _, err := parseValue(val, false)
		if err != nil {
			return r, p.errorf(val, "expected a number or duration after \"max\", found %s%s", val.found(), err)
		}
		if v < r.Min || v == 0 {
			return r, p.errorf(val, "the ceiling %s must be above 0 and at least the floor (min %s)", quote(val.text), formatNumber(r.Min))
		}
		r.Max = v
		after, sawMax = val.text, true
		tok = p.next()
	}
	if tok.kind == tokWord && tok.text == "for" {
		val := p.next()
		d, err := parseFor(val)
		if err != nil {
			return r, p.errorf(val, "expected a duration (like 2s) after \"for\", found %s%s", val.found(), err)
		}
		r.For = d
		after, sawFor = val.text, true
		tok = p.next()
	}
	if tok.kind != tokSemi && tok.kind != tokEOF {
		expect := `"for", ";" or end of input`
		switch {
		case sawFor:
			expect = `";" or end of input`
		case isFactor && !sawMin && !sawMax:
			expect = `"min", "max", "for", ";" or end of input`
		case isFactor && !sawMax:
			expect = `"max", "for", ";" or end of input`
		}
		return r, p.errorf(tok, "expected %s after %s, found %s", expect, quote(after), tok.found())
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Reasons appended to a parse error message.
const (
	errNegative errSuffix = "must not be negative"
	errRange    errSuffix = "out of range"
)

// parseValue reads a number ("0.5", "20", "1e3"), a Go duration in
// seconds ("250ms"), or if factorOK a factor ("4x"). A non-nil error is
// an errSuffix to append to the caller's message.
func parseValue(tok token, factorOK bool) (v float64, isFactor bool, err error) {
	if tok.kind != tokWord {
		return 0, false, errSuffix("")
	}
	s := tok.text
	if s[0] == '-' {
		if numberLen(s[1:]) > 0 {
			return 0, false, errNegative
		}
		return 0, false, errSuffix("")
	}
	n := numberLen(s)
	if n == 0 {
		return 0, false, errSuffix("")
	}
	switch unit := s[n:]; {
	case unit == "":
	case unit == "x" && factorOK:
		isFactor = true
	default:
		d, err := parseDuration(s)
		if err != nil {
			return 0, false, err
		}
		return d.Seconds(), false, nil
	}
	v, err = strconv.ParseFloat(s[:n], 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false, errRange
	}
	return v, isFactor, nil
}

// parseFor reads the duration after "for".
func parseFor(tok token) (time.Duration, error) {
	if tok.kind != tokWord {
		return 0, errSuffix("")
	}
	s := tok.text
	if s[0] == '-' {
		if _, err := parseDuration(s[1:]); err == nil {
			return 0, errNegative
		}
		return 0, errSuffix("")
	}
	return parseDuration(s)
}

// parseDuration is [time.ParseDuration] with an error that tells a value
// out of range from a malformed one.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, nil
	}
	if durationSyntax(s) {
		return 0, errRange
	}
	return 0, errSuffix("")
}

// durationSyntax reports whether s is a sequence of decimal numbers, each
// with a unit, as time.ParseDuration accepts it (without a sign).
func durationSyntax(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		i, digits := 0, 0
		for ; i < len(s) && ('0' <= s[i] && s[i] <= '9' || s[i] == '.'); i++ {
			if s[i] != '.' {
				digits++
			}
		}
		if digits == 0 || strings.Count(s[:i], ".") > 1 {
			return false
		}
		s = s[i:]
		unit := ""
		for _, u := range []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"} {
			if strings.HasPrefix(s, u) && len(u) > len(unit) {
				unit = u
			}
		}
		if unit == "" {
			return false
		}
		s = s[len(unit):]
	}
	return true
}

// errSuffix is an error whose text is appended to a parse error message.
type errSuffix string

func (e errSuffix) Error() string {
	if e == "" {
		return ""
	}
	return ": " + string(e)
}

// numberLen returns the length of the decimal number at the start of s:
// digits with an optional fraction and exponent, as in 12, 0.5, .5, 1e3,
// 2.5E-3. It returns 0 if s does not start with a number.
func numberLen(s string) int {
	i, digits := 0, 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && '0' <= s[k] && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}
