package gdump

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds mutated dumps to Parse: it must never panic, always
// return a Dump, and say ErrNoGoroutines exactly when it read none.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 8<<10 {
			f.Add(b)
		}
		f.Add(b[:min(len(b), 2<<10)])
	}
	f.Add([]byte("goroutine 1 [select] {a: \"b\\\"}\", c: d}:\nmain.f({0x1, ...}, _)\n\t/x.go:1 +0x1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(bytes.NewReader(data))
		if d == nil {
			t.Fatalf("nil dump (err %v)", err)
		}
		if (len(d.Goroutines) == 0) != errors.Is(err, ErrNoGoroutines) {
			t.Fatalf("%d goroutines, err %v", len(d.Goroutines), err)
		}
		for _, g := range d.Goroutines {
			if g.Count < 0 || (d.Format == Traceback && g.Count != 1) {
				t.Fatalf("goroutine %d count %d", g.ID, g.Count)
			}
			_ = g.Header()
			for i := range g.Frames {
				_ = g.Frames[i].String()
			}
		}
	})
}
