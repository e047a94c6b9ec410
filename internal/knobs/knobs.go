// Package knobs declares configuration settings once: each [Knob] ties a
// field of a configuration struct to its environment variable, its
// default, the rule its values must follow and its name in JSON. A table
// of knobs then fills in defaults, checks a struct, reads the environment
// and encodes the struct, so that a new setting is one line of a table.
package knobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A Knob is one setting of a configuration struct C.
type Knob[C any] struct {
	// Env is the environment variable, Default how the default reads in
	// it, Help one line on what the setting does.
	Env, Default, Help string
	// JSON is the setting's name in the struct's JSON form; "" leaves it
	// out.
	JSON string

	set   func(c *C, v string) error // from the environment
	def   func(c *C)                 // the default, for a zero field
	check func(c *C) error           // a value no caller may set
	get   func(c *C) any             // for JSON
	load  func(c *C, raw []byte) error
}

// Off is the word that turns an optional setting off in the environment.
const Off = "off"

// Duration is a time.Duration setting: its environment value is a Go
// duration within [lo, hi], or "off" (the field is then -1) when offable.
// Negative fields mean off; zero means def.
func Duration[C any](env, jsonName, help string, f func(*C) *time.Duration, def, lo, hi time.Duration, offable bool) Knob[C] {
	k := Knob[C]{Env: env, JSON: jsonName, Help: help, Default: fmtDuration(def)}
	k.set = func(c *C, v string) error {
		if offable && (v == Off || v == "0") {
			*f(c) = -1
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("must be a duration like 250ms or 2s" + offWord(offable))
		}
		if d < lo || d > hi {
			return fmt.Errorf("must be between %v and %v%s", lo, hi, offWord(offable))
		}
		*f(c) = d
		return nil
	}
	k.def = func(c *C) {
		if *f(c) == 0 {
			*f(c) = def
		}
	}
	k.check = func(c *C) error {
		if d := *f(c); !offable && d < 0 {
			return fmt.Errorf("negative (%v)", d)
		}
		return nil
	}
	k.get = func(c *C) any {
		if d := *f(c); d < 0 {
			return Off
		}
		return f(c).String()
	}
	k.load = func(c *C, raw []byte) error {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		if s == Off {
			*f(c) = -1
			return nil
		}
		d, err := time.ParseDuration(s)
		*f(c) = d
		return err
	}
	return k
}

// Int is an integer setting within [lo, hi]; when offable, "off" stores
// off (a value outside [lo, hi], usually -1). Zero means def.
func Int[C any](env, jsonName, help string, f func(*C) *int, def, lo, hi int, offable bool, off int) Knob[C] {
	k := Knob[C]{Env: env, JSON: jsonName, Help: help, Default: strconv.Itoa(def)}
	k.set = func(c *C, v string) error {
		if offable && v == Off {
			*f(c) = off
			return nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be a whole number" + offWord(offable))
		}
		if x < lo || x > hi {
			return fmt.Errorf("must be between %d and %d%s", lo, hi, offWord(offable))
		}
		*f(c) = x
		return nil
	}
	k.def = func(c *C) {
		if *f(c) == 0 {
			*f(c) = def
		}
	}
	k.check = func(c *C) error {
		if x := *f(c); x < 0 && !offable {
			return fmt.Errorf("negative (%d)", x)
		}
		return nil
	}
	k.get = func(c *C) any { return *f(c) }
	k.load = func(c *C, raw []byte) error { return json.Unmarshal(raw, f(c)) }
	return k
}

// Size is a byte count within [lo, hi], written 10MiB, 512KiB, 1GB or
// 1048576. Zero means def.
func Size[C any](env, jsonName, help string, f func(*C) *int64, def, lo, hi int64) Knob[C] {
	k := Knob[C]{Env: env, JSON: jsonName, Help: help, Default: FormatSize(def)}
	k.set = func(c *C, v string) error {
		n, err := ParseSize(v, lo, hi)
		if err == nil {
			*f(c) = n
		}
		return err
	}
	k.def = func(c *C) {
		if *f(c) == 0 {
			*f(c) = def
		}
	}
	k.check = func(c *C) error {
		if n := *f(c); n < 0 {
			return fmt.Errorf("negative (%d)", n)
		}
		return nil
	}
	k.get = func(c *C) any { return *f(c) }
	k.load = func(c *C, raw []byte) error { return json.Unmarshal(raw, f(c)) }
	return k
}

// Custom is a setting with its own parser, default and JSON value: parse
// reads an environment value into c; def (if not nil) fills in the
// default; get (if not nil) gives the JSON value, which load reads back.
func Custom[C any](env, jsonName, def, help string, parse func(c *C, v string) error, setDef func(*C), get func(*C) any, load func(*C, []byte) error) Knob[C] {
	return Knob[C]{Env: env, JSON: jsonName, Default: def, Help: help, set: parse, def: setDef, get: get, load: load}
}

// String is a string setting; valid (if not nil) checks environment
// values, and def is the default for an empty field ("" for none).
func String[C any](env, jsonName, defText, help string, f func(*C) *string, def func() string, valid func(string) error) Knob[C] {
	k := Knob[C]{Env: env, JSON: jsonName, Help: help, Default: defText}
	k.set = func(c *C, v string) error {
		if valid != nil {
			if err := valid(v); err != nil {
				return err
			}
		}
		*f(c) = v
		return nil
	}
	if def != nil {
		k.def = func(c *C) {
			if *f(c) == "" {
				*f(c) = def()
			}
		}
	}
	k.get = func(c *C) any { return *f(c) }
	k.load = func(c *C, raw []byte) error { return json.Unmarshal(raw, f(c)) }
	return k
}

func offWord(offable bool) string {
	if offable {
		return ", or off"
	}
	return ""
}

// A Table is the settings of one configuration struct.
type Table[C any] []Knob[C]

// Defaults fills in the default of every zero field of c.
func (t Table[C]) Defaults(c *C) {
	for _, k := range t {
		if k.def != nil {
			k.def(c)
		}
	}
}

// Check returns an error naming every field of c with a value no setting
// may have; prefix starts each message ("diag: Config.").
func (t Table[C]) Check(c *C, prefix string) error {
	var errs []error
	for _, k := range t {
		if k.check == nil {
			continue
		}
		if err := k.check(c); err != nil {
			errs = append(errs, fmt.Errorf("%s%s (%s): %w", prefix, k.JSON, k.Env, err))
		}
	}
	return errors.Join(errs...)
}

// FromEnv reads every variable of t that lookup finds into c. A malformed
// value leaves its field as it was and is reported in the error, which
// names the variable, the rule and the default used instead; prefix starts
// each message ("diag: ").
func (t Table[C]) FromEnv(c *C, lookup func(string) (string, bool), prefix string) error {
	var errs []error
	for _, k := range t {
		v, ok := lookup(k.Env)
		if !ok || k.set == nil {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if len(v) > 4096 {
			errs = append(errs, fmt.Errorf("%s%s: value longer than 4096 bytes; using the default %s", prefix, k.Env, k.Default))
			continue
		}
		trial := *c
		if err := k.set(&trial, v); err != nil {
			errs = append(errs, fmt.Errorf("%s%s=%q: %v; using the default %s", prefix, k.Env, v, err, k.Default))
			continue
		}
		*c = trial
	}
	return errors.Join(errs...)
}

// Encode writes the settings of c that have a JSON name, in table
// order.
func (t Table[C]) Encode(c *C) ([]byte, error) {
	b := []byte{'{'}
	for _, k := range t {
		if k.JSON == "" || k.get == nil {
			continue
		}
		v, err := json.Marshal(k.get(c))
		if err != nil {
			return nil, err
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k.JSON)
		b = append(b, ':')
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// Decode reads what Encode writes; unknown names are ignored.
func (t Table[C]) Decode(c *C, data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for _, k := range t {
		raw, ok := m[k.JSON]
		if !ok || k.load == nil || k.JSON == "" {
			continue
		}
		if err := k.load(c, raw); err != nil {
			return fmt.Errorf("%s: %w", k.JSON, err)
		}
	}
	return nil
}

// ParseSize reads a byte count with an optional unit: 1048576, 512KiB,
// 10MiB, 1GiB, 10MB (decimal units are accepted too), within [lo, hi].
func ParseSize(v string, lo, hi int64) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	num, mult := v, 1.0
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("must be a size like 10MiB, 512KiB or 1048576")
	}
	x := f * mult
	if x < float64(lo) || x > float64(hi) {
		return 0, fmt.Errorf("must be between %s and %s", FormatSize(lo), FormatSize(hi))
	}
	return int64(x), nil
}

// FormatSize writes n with the largest binary unit that divides it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// ParseSwitch reads on/off (and 1/0, true/false, yes/no).
func ParseSwitch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "1", "true", "yes":
		return true, nil
	case "off", "0", "false", "no":
		return false, nil
	}
	return false, errors.New("must be on or off")
}

// fmtDuration writes a default duration the way people write it: 100ms,
// 10s, 1m, 5m, 1h.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ParseInt reads a whole number within [lo, hi].
func ParseInt(v string, lo, hi int) (int, error) {
	x, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("must be a whole number")
	}
	if x < lo || x > hi {
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	}
	return x, nil
}

// ParseShare reads a share as a percentage (0.5%) or a fraction (0.005),
// within [lo, hi] as a fraction.
func ParseShare(v string, lo, hi float64) (float64, error) {
	num, pct := strings.CutSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("must be a share like 0.5% or 0.005")
	}
	if pct {
		f /= 100
	}
	if f < lo || f > hi {
		return 0, fmt.Errorf("must be between %g%% and %g%%", lo*100, hi*100)
	}
	return f, nil
}
