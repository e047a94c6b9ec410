// Command dumplocks prints what lockgraph finds in a goroutine dump: each
// lock with its waiters and likely holders, the deadlocks and the chains.
//
// Usage:
//
//	go run ./internal/lockgraph/internal/dumplocks [-hint site=holder]... [dump.txt]
//
// With no file it reads standard input (e.g. curl .../debug/pprof/goroutine?debug=2).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/lockgraph"
)

type hints []lockgraph.Hint

func (h *hints) String() string { return fmt.Sprint(*h) }

func (h *hints) Set(s string) error {
	site, holder, ok := strings.Cut(s, "=")
	if !ok {
		holder, site = s, ""
	}
	*h = append(*h, lockgraph.Hint{Site: site, Holder: holder, Source: "-hint"})
	return nil
}

func main() {
	var hs hints
	flag.Var(&hs, "hint", "`site=holder`: a function seen holding the lock waited for at site (site may be omitted)")
	flag.Parse()
	var r io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "dumplocks:", err)
			os.Exit(1)
		}
		defer f.Close()
		r = f
	}
	d, err := gdump.Parse(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dumplocks:", err)
		if len(d.Goroutines) == 0 {
			os.Exit(1)
		}
	}
	res := lockgraph.Analyze(d, lockgraph.Options{Hints: hs})
	fmt.Printf("%s dump, %d goroutines, %d locks with waiters\n", d.Format, d.Total, len(res.Locks))
	for _, l := range res.Locks {
		fmt.Printf("\n%s: %d waiter(s)\n", l, len(l.Waiters))
		for _, w := range l.Waiters {
			site := "(no call site)"
			if w.Site >= 0 {
				site = w.G.Frames[w.Site].Func
			}
			fmt.Printf("  waiter %s %s in %s\n", w.G.Header(), w.Kind, site)
		}
		for _, h := range l.Holders {
			fmt.Printf("  holder %s\n", h)
		}
		if l.NoHolder != "" {
			fmt.Printf("  %s\n", l.NoHolder)
		}
	}
	for _, x := range res.Deadlocks {
		fmt.Printf("\n%s\n", x)
	}
	for _, c := range res.Chains {
		fmt.Printf("\n%s\n", c)
	}
}
