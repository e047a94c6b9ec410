// Command bench measures what lockdiag costs and how fast it reacts, and
// prints the results as markdown tables (and writes them to a file with
// -out):
//
//	go run ./bench                      # every section, a few minutes on 2 cores
//	go run ./bench -only detect         # one section
//	go run ./bench -out BENCHMARKS.md
//
// Each section runs in this one process, one after another; comparisons
// are made side by side (A/B alternating) and reported as medians.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// A section measures one thing and writes a markdown section.
type section struct {
	name string
	help string
	run  func(w io.Writer, quick bool) error
}

var sections []section

func register(s section) { sections = append(sections, s) }

func main() {
	only := flag.String("only", "", "comma-separated sections to run (default all): "+sectionNames())
	out := flag.String("out", "", "also write the report to this file")
	quick := flag.Bool("quick", false, "fewer repetitions, for a smoke test")
	flag.Parse()

	var buf bytes.Buffer
	w := io.MultiWriter(os.Stdout, &buf)
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# lockdiag benchmarks\n\n")
	fmt.Fprintf(w, "Machine: %s, %s/%s, %d CPUs, GOMAXPROCS=%d, %s. Date: %s.\n",
		host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Reproduce: `go run ./bench%s`.\n\n", flagsLine(*only, *quick))

	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for n := range want {
		if !slices.ContainsFunc(sections, func(s section) bool { return s.name == n }) {
			log.Fatalf("bench: no section %q; have %s", n, sectionNames())
		}
	}
	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		start := time.Now()
		log.Printf("bench: %s ...", s.name)
		if err := s.run(w, *quick); err != nil {
			log.Fatalf("bench: %s: %v", s.name, err)
		}
		log.Printf("bench: %s took %v", s.name, time.Since(start).Round(time.Second))
	}
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func sectionNames() string {
	var n []string
	for _, s := range sections {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

func flagsLine(only string, quick bool) string {
	s := ""
	if only != "" {
		s += " -only " + only
	}
	if quick {
		s += " -quick"
	}
	return s
}

// percentile returns the p-th percentile (0..100) of xs by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// median returns the middle value, or the mean of the two middle ones.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d float64) string { return fmt.Sprintf("%.0f ms", d) }
