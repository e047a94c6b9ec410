// Package jsondur writes durations in lockdiag's JSON as Go duration
// strings ("29s", "78ms", "1m2.886s") instead of integer nanoseconds, and
// reads both forms, so that JSON written before the change still reads.
package jsondur

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// D is a time.Duration that is JSON-encoded as its String form.
type D time.Duration

// MarshalJSON writes d as a string: "1.5s".
func (d D) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("1.5s") or a number of
// nanoseconds (the old form).
func (d *D) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("jsondur: %w", err)
		}
		*d = D(v)
		return nil
	}
	var ns int64
	if err := json.Unmarshal(b, &ns); err != nil {
		return fmt.Errorf("jsondur: a duration must be a string like \"1.5s\" or integer nanoseconds: %w", err)
	}
	*d = D(ns)
	return nil
}
