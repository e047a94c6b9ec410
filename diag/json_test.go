package diag

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/bundle"
)

// TestJSONDurations: durations are written as Go duration strings and
// read in both forms (integer nanoseconds from older versions).
func TestJSONDurations(t *testing.T) {
	info := SnapshotInfo{ID: "x", Took: 78 * time.Millisecond}
	st := Status{Uptime: 29 * time.Second, HoldersWindow: 10 * time.Second, HoldersTotal: 62 * time.Second, HoldersOther: 5 * time.Millisecond, Snapshots: []SnapshotInfo{info}}
	b := Breach{Breach: bundle.Breach{Rule: "r"}, Duration: 1500 * time.Millisecond, Peak: 3}
	meta := bundle.Meta{ID: "m", Took: 1091 * time.Millisecond, Collection: []bundle.Note{{Part: "trace.out", Took: 2 * time.Millisecond}}}
	for _, tt := range []struct {
		v    any
		want []string
	}{
		{info, []string{`"took":"78ms"`}},
		{st, []string{`"uptime":"29s"`, `"holders_window":"10s"`, `"holders_total":"1m2s"`, `"holders_other":"5ms"`, `"took":"78ms"`}},
		{b, []string{`"duration":"1.5s"`, `"rule":"r"`, `"peak":3`}},
		{meta, []string{`"took":"1.091s"`, `"took":"2ms"`}},
	} {
		data, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(data), w) {
				t.Errorf("%T: %s lacks %s", tt.v, data, w)
			}
		}
	}

	var gotSt Status
	if err := json.Unmarshal([]byte(`{"uptime":29000000000,"holders_window":"10s","snapshots":[{"id":"x","took":78000000}]}`), &gotSt); err != nil {
		t.Fatal(err)
	}
	if gotSt.Uptime != 29*time.Second || gotSt.HoldersWindow != 10*time.Second || gotSt.Snapshots[0].Took != 78*time.Millisecond {
		t.Errorf("read back %+v", gotSt)
	}
	var gotB Breach
	if err := json.Unmarshal([]byte(`{"rule":"r","signal":"mutex_wait","duration":"1.5s","snapshot":true}`), &gotB); err != nil {
		t.Fatal(err)
	}
	if gotB.Duration != 1500*time.Millisecond || gotB.Rule != "r" || gotB.Signal != "mutex_wait" || !gotB.Snapshot {
		t.Errorf("read back %+v", gotB)
	}
	var gotM bundle.Meta
	if err := json.Unmarshal([]byte(`{"id":"m","took":1091000000,"collection":[{"part":"p","status":"ok","took":"2ms"}]}`), &gotM); err != nil {
		t.Fatal(err)
	}
	if gotM.Took != 1091*time.Millisecond || gotM.Collection[0].Took != 2*time.Millisecond {
		t.Errorf("read back %+v", gotM)
	}
}
