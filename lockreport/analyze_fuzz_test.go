package lockreport

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzAnalyze feeds mutated traces to Analyze: it must never panic or hang,
// and must always return a report that can be written.
func FuzzAnalyze(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.trace"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) <= 16<<10 {
			f.Add(data)
		}
		f.Add(data[:min(len(data), 4<<10)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		rep, err := Analyze(context.Background(), bytes.NewReader(data), Options{MutexProfile: encode(testMutexProfile())})
		if rep == nil {
			t.Fatalf("nil report (err %v)", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("Analyze took %v with a 200ms budget", d)
		}
		if err := rep.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Fatal(err)
		}
	})
}
