package bundle

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lockdiag/lockdiag/lockreport"
)

// TestWriteTextOpenWith: every file report.txt tells how to open is
// opened with the command the README's bundle table gives for it.
func TestWriteTextOpenWith(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// A table row: | `file` | what | `command` |
	row := regexp.MustCompile("(?m)^\\| `([^`]+\\.(?:out|pb\\.gz))` \\|.*\\| `(go tool [^`]+)` \\|$")
	readmeCmd := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		readmeCmd[m[1]] = m[2]
	}
	if len(readmeCmd) < 4 {
		t.Fatalf("the README's bundle table gives commands for %v, want the trace and the profiles", readmeCmd)
	}

	meta := Meta{ID: "20261130-140617-319", Collection: []Note{{Part: GoroutineLeakFile, Status: "ok"}}}
	var b bytes.Buffer
	if err := WriteText(&b, meta, &lockreport.Report{Headline: "no lock contention"}); err != nil {
		t.Fatal(err)
	}
	_, hints, ok := strings.Cut(b.String(), "\nOpen the artifacts:\n")
	if !ok {
		t.Fatalf("report.txt has no \"Open the artifacts\":\n%s", b.String())
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(hints), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		fields := strings.Fields(cmd)
		file := fields[len(fields)-1]
		want, ok := readmeCmd[file]
		if !ok {
			t.Errorf("report.txt opens %s, which the README's bundle table does not list", file)
			continue
		}
		seen++
		if cmd != want {
			t.Errorf("report.txt opens %s with %q, the README with %q", file, cmd, want)
		}
	}
	if seen != 5 {
		t.Errorf("report.txt names %d of the files, want 5 (trace, mutex, block, wall, goroutine leak):\n%s", seen, hints)
	}
}
