package bundle

import (
	"encoding/json"
	"time"

	"github.com/lockdiag/lockdiag/internal/jsondur"
)

// Durations in meta.json are Go duration strings ("1.091s"), like its
// config's; bundles written before, with integer nanoseconds, still read.

// MarshalJSON writes meta.json's fields with Took as a string.
func (m Meta) MarshalJSON() ([]byte, error) {
	type plain Meta
	return json.Marshal(struct {
		plain
		Took jsondur.D `json:"took"`
	}{plain(m), jsondur.D(m.Took)})
}

// UnmarshalJSON reads meta.json, old or new.
func (m *Meta) UnmarshalJSON(b []byte) error {
	type plain Meta
	var aux struct {
		plain
		Took jsondur.D `json:"took"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*m = Meta(aux.plain)
	m.Took = time.Duration(aux.Took)
	return nil
}

// MarshalJSON writes the note with Took as a string.
func (n Note) MarshalJSON() ([]byte, error) {
	type plain Note
	return json.Marshal(struct {
		plain
		Took jsondur.D `json:"took"`
	}{plain(n), jsondur.D(n.Took)})
}

// UnmarshalJSON reads a note, old or new.
func (n *Note) UnmarshalJSON(b []byte) error {
	type plain Note
	var aux struct {
		plain
		Took jsondur.D `json:"took"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*n = Note(aux.plain)
	n.Took = time.Duration(aux.Took)
	return nil
}
