// Command tracedump prints the goroutine state transitions of a trace, with
// the top frames of their stacks. It is a debugging aid for the analyzer's
// fixtures.
//
//	go run ./flightrec/internal/tracedump flightrec/testdata/mutex.trace
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	frames := flag.Int("frames", 4, "frames of each stack to print")
	all := flag.Bool("all", false, "print every event, not only goroutine transitions")
	flag.Parse()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	short := func(s trace.Stack) string {
		var parts []string
		for fr := range s.Frames() {
			if len(parts) == *frames {
				break
			}
			fn := fr.Func
			if i := strings.LastIndex(fn, "/"); i >= 0 {
				fn = fn[i+1:]
			}
			parts = append(parts, fmt.Sprintf("%s:%d", fn, fr.Line))
		}
		return strings.Join(parts, " < ")
	}
	var t0 trace.Time
	for {
		ev, err := r.ReadEvent()
		if err != nil {
			fmt.Println("end:", err)
			return
		}
		if t0 == 0 {
			t0 = ev.Time()
		}
		switch ev.Kind() {
		case trace.EventSync:
			fmt.Printf("%10d SYNC %d\n", ev.Time()-t0, ev.Sync().N)
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			from, to := st.Goroutine()
			fmt.Printf("%10d M%-6d G%-4d %s->%s %q on G%d\n    st: %s\n    ev: %s\n", ev.Time()-t0, ev.Thread(), st.Resource.Goroutine(), from, to, st.Reason, ev.Goroutine(), short(st.Stack), short(ev.Stack()))
		default:
			if *all {
				fmt.Printf("%10d %v\n", ev.Time()-t0, ev.Kind())
			}
		}
	}
}
