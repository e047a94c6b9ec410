package diag

import (
	"encoding/json"
	"time"

	"github.com/lockdiag/lockdiag/internal/jsondur"
)

// Durations in the JSON of Status, SnapshotInfo and Breach are Go duration
// strings ("29s", "78ms"), as in meta.json's config; integer nanoseconds
// (what older versions wrote) still read.

// MarshalJSON writes the status with durations as strings.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		Uptime        jsondur.D `json:"uptime"`
		HoldersWindow jsondur.D `json:"holders_window,omitempty"`
		HoldersTotal  jsondur.D `json:"holders_total,omitempty"`
		HoldersOther  jsondur.D `json:"holders_other,omitempty"`
	}{plain(s), jsondur.D(s.Uptime), jsondur.D(s.HoldersWindow), jsondur.D(s.HoldersTotal), jsondur.D(s.HoldersOther)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Status) UnmarshalJSON(b []byte) error {
	type plain Status
	var aux struct {
		plain
		Uptime        jsondur.D `json:"uptime"`
		HoldersWindow jsondur.D `json:"holders_window,omitempty"`
		HoldersTotal  jsondur.D `json:"holders_total,omitempty"`
		HoldersOther  jsondur.D `json:"holders_other,omitempty"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*s = Status(aux.plain)
	s.Uptime, s.HoldersWindow = time.Duration(aux.Uptime), time.Duration(aux.HoldersWindow)
	s.HoldersTotal, s.HoldersOther = time.Duration(aux.HoldersTotal), time.Duration(aux.HoldersOther)
	return nil
}

// MarshalJSON writes the snapshot's description with Took as a string.
func (s SnapshotInfo) MarshalJSON() ([]byte, error) {
	type plain SnapshotInfo
	return json.Marshal(struct {
		plain
		Took jsondur.D `json:"took"`
	}{plain(s), jsondur.D(s.Took)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *SnapshotInfo) UnmarshalJSON(b []byte) error {
	type plain SnapshotInfo
	var aux struct {
		plain
		Took jsondur.D `json:"took"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*s = SnapshotInfo(aux.plain)
	s.Took = time.Duration(aux.Took)
	return nil
}

// MarshalJSON writes the breach with Duration as a string.
func (x Breach) MarshalJSON() ([]byte, error) {
	type plain Breach
	return json.Marshal(struct {
		plain
		Duration jsondur.D `json:"duration,omitempty"`
	}{plain(x), jsondur.D(x.Duration)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (x *Breach) UnmarshalJSON(b []byte) error {
	type plain Breach
	var aux struct {
		plain
		Duration jsondur.D `json:"duration,omitempty"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*x = Breach(aux.plain)
	x.Duration = time.Duration(aux.Duration)
	return nil
}
