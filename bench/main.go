// Command bench measures what lockdiag costs and how fast it reacts, and
// prints the results as markdown tables (and writes them to a file with
// -out):
//
//	go run ./bench                      # every section, about 10 minutes on 2 cores
//	go run ./bench -quick               # fewer repetitions, a smoke test of about 2 minutes
//	go run ./bench -only overhead,scale # some sections
//	go run ./bench -out BENCHMARKS.md
//
// Each section runs in this one process, one after another; comparisons
// are made side by side (A/B alternating within one run) and reported as
// medians of ratios. Every section says how much CPU other processes used
// while it ran, since that is the main source of noise on a shared
// machine.
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
	"strconv"
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

// sectionOrder is the order sections run and appear in; sections not
// listed come after, in registration order.
var sectionOrder = []string{"overhead", "steady", "detect", "incidents", "snapshot", "analysis", "memory", "scale"}

func orderSections() {
	rank := func(s section) int {
		if i := slices.Index(sectionOrder, s.name); i >= 0 {
			return i
		}
		return len(sectionOrder)
	}
	slices.SortStableFunc(sections, func(a, b section) int { return rank(a) - rank(b) })
}

func main() {
	if spec := os.Getenv(incidentChildEnv); spec != "" {
		runIncidentChild(spec)
		return
	}
	orderSections()
	only := flag.String("only", "", "comma-separated sections to run (default all): "+sectionNames())
	out := flag.String("out", "", "also write the report to this file")
	quick := flag.Bool("quick", false, "fewer repetitions, for a smoke test")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [-quick] [-only sections] [-out BENCHMARKS.md]\n\nsections:\n")
		for _, s := range sections {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-9s %s\n", s.name, s.help)
		}
		fmt.Fprintln(flag.CommandLine.Output())
		flag.PrintDefaults()
	}
	flag.Parse()

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

	var buf bytes.Buffer
	w := io.MultiWriter(os.Stdout, &buf)
	runStart := time.Now()
	runCPU := readCPU()
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# lockdiag benchmarks\n\n")
	fmt.Fprintf(w, "- Machine: %s (%s), %s/%s, %d CPUs, GOMAXPROCS=%d, %s.\n",
		host, cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(w, "- Date: %s. Load average at start: %s.\n", runStart.UTC().Format("2006-01-02 15:04 MST"), loadavg())
	fmt.Fprintf(w, "- Reproduce: `go run ./bench%s` (on a quiet machine; `-only NAME` runs one section, `-quick` is a smoke test).\n", flagsLine(*only, *quick))
	fmt.Fprintf(w, "- Ratios compare two configurations measured in the same run, alternating, and are reported as medians over repetitions;\n")
	fmt.Fprintf(w, "  each section ends with the CPU that *other* processes used while it ran (from /proc/stat minus this process), the main source of noise.\n\n")

	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		start := time.Now()
		cpu := readCPU()
		goroutines := runtime.NumGoroutine()
		log.Printf("bench: %s ...", s.name)
		if err := s.run(w, *quick); err != nil {
			log.Fatalf("bench: %s: %v", s.name, err)
		}
		took := time.Since(start)
		fmt.Fprintf(w, "_Section %s took %v; %s._\n", s.name, took.Round(time.Second), readCPU().othersSince(cpu))
		if left := settleGoroutines(goroutines, 3*time.Second); left > 0 {
			fmt.Fprintf(w, " _%d goroutines were still running after the section ended._\n", left)
			log.Printf("bench: %s left %d goroutines behind", s.name, left)
		}
		fmt.Fprintln(w)
		log.Printf("bench: %s took %v", s.name, took.Round(time.Second))
	}
	fmt.Fprintf(w, "---\nThe whole run took %v; %s. Load average at the end: %s.\n",
		time.Since(runStart).Round(time.Second), readCPU().othersSince(runCPU), loadavg())
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
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "steady" {
			s += " -steady " + f.Value.String()
		}
	})
	return s
}

// settleGoroutines waits up to d for the goroutine count to fall back to
// n and returns how many are left above it.
func settleGoroutines(n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		left := runtime.NumGoroutine() - n
		if left <= 0 || time.Now().After(deadline) {
			return max(left, 0)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleep waits for d. It is time.Sleep under a name that says the
// benchmark is letting a window pass.
func sleep(d time.Duration) { time.Sleep(d) }

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadavg returns the three load averages of /proc/loadavg.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuSample is the machine's busy and stolen CPU time and this process's
// CPU time at one moment.
type cpuSample struct {
	t           time.Time
	busy, steal float64 // seconds, all CPUs, from /proc/stat
	self        float64 // seconds, this process (user + system)
	ok          bool
}

// clockTick is USER_HZ, the unit of /proc/stat; 100 on every Linux
// architecture Go supports.
const clockTick = 100

func readCPU() cpuSample {
	s := cpuSample{t: time.Now(), self: selfCPU()}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	v := make([]float64, len(f)-1)
	for i := range v {
		n, _ := strconv.ParseFloat(f[i+1], 64)
		v[i] = n / clockTick
	}
	// user nice system idle iowait irq softirq steal ...
	s.busy = v[0] + v[1] + v[2] + v[5] + v[6]
	s.steal = v[7]
	s.ok = true
	return s
}

// othersSince says how many CPUs other processes kept busy, on average,
// between then and s.
func (s cpuSample) othersSince(then cpuSample) string {
	el := s.t.Sub(then.t).Seconds()
	if !s.ok || !then.ok || el <= 0 {
		return "CPU use of other processes unknown"
	}
	others := max(0, (s.busy-then.busy)-(s.self-then.self)) / el
	self := (s.self - then.self) / el
	msg := fmt.Sprintf("this process used %.2f CPUs, other processes %.2f of %d", self, others, runtime.NumCPU())
	if st := (s.steal - then.steal) / el; st >= 0.01 {
		msg += fmt.Sprintf(", the hypervisor stole %.2f", st)
	}
	if others >= 0.1*float64(runtime.NumCPU()) {
		msg += " (**other load was present: expect extra noise**)"
	}
	return msg
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
