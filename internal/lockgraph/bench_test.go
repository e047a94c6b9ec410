package lockgraph

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/lockdiag/lockdiag/internal/gdump"
	"github.com/lockdiag/lockdiag/internal/lockgraph/scenario"
)

// benchConn stands for a connection a server goroutine serves.
type benchConn struct {
	id   int64
	buf  []byte
	mu   sync.Mutex
	seen int
}

//go:noinline
func (c *benchConn) serve(stop <-chan struct{}) { c.readLoop(stop) }

//go:noinline
func (c *benchConn) readLoop(stop <-chan struct{}) {
	<-stop
	c.seen++
}

//go:noinline
func benchWorker(depth int, jobs <-chan int, stop <-chan struct{}) int {
	if depth > 0 {
		return benchWorker(depth-1, jobs, stop) + 1
	}
	select {
	case j := <-jobs:
		return j
	case <-stop:
		return 0
	}
}

//go:noinline
func benchPoolWait(c *sync.Cond, done *bool) {
	c.L.Lock()
	for !*done {
		c.Wait()
	}
	c.L.Unlock()
}

// benchDump returns a real debug=2 dump of this process with about n
// goroutines shaped like a server's (60% connections parked on a channel,
// 25% workers in a select six frames deep, 15% in sync.Cond.Wait), plus
// three lock incidents: a Mutex with its sleeping holder, readers and a
// writer behind a writer on the network, a chain. Everything is released
// before it returns.
func benchDump(b *testing.B, n int) []byte {
	b.Helper()
	stop := make(chan struct{})
	jobs := make(chan int)
	cond := sync.NewCond(new(sync.Mutex))
	done := false
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		switch {
		case i%20 < 12:
			c := &benchConn{id: int64(i)}
			go func() { defer wg.Done(); c.serve(stop) }()
		case i%20 < 17:
			go func() { defer wg.Done(); benchWorker(5, jobs, stop) }()
		default:
			go func() { defer wg.Done(); benchPoolWait(cond, &done) }()
		}
	}
	var runs []*scenario.Run
	for _, name := range []string{"mutex-sleep", "rwmutex-writer-io", "chain"} {
		r, err := scenario.Start(name)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, r)
	}
	dump := scenario.AllStacks()
	for _, r := range runs {
		r.Release()
	}
	close(stop)
	cond.L.Lock()
	done = true
	cond.Broadcast()
	cond.L.Unlock()
	wg.Wait()
	return dump
}

// BenchmarkDump measures, per goroutine of a dump of 1k and 20k
// goroutines: taking it (runtime.Stack, which stops the world), parsing
// it, analysing it, and parse+analyse.
func BenchmarkDump(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		dump := benchDump(b, n)
		d, err := gdump.Parse(bytes.NewReader(dump))
		if err != nil {
			b.Fatal(err)
		}
		ng := float64(len(d.Goroutines))
		if r := Analyze(d, Options{}); len(r.Locks) != 4 || len(r.Chains) != 1 {
			b.Fatalf("locks %v chains %v", r.Locks, r.Chains)
		}
		perG := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ng, "ns/goroutine")
		}
		b.Run(fmt.Sprintf("parse/goroutines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(dump)))
			for b.Loop() {
				gdump.Parse(bytes.NewReader(dump))
			}
			perG(b)
		})
		b.Run(fmt.Sprintf("analyze/goroutines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Analyze(d, Options{})
			}
			perG(b)
		})
		b.Run(fmt.Sprintf("parse+analyze/goroutines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, _ := gdump.Parse(bytes.NewReader(dump))
				Analyze(d, Options{})
			}
			perG(b)
		})
		b.Run(fmt.Sprintf("runtime.Stack/goroutines=%d", n), func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() { defer wg.Done(); benchWorker(5, nil, stop) }()
			}
			buf := make([]byte, 2*len(dump))
			for b.Loop() {
				runtime.Stack(buf, true)
			}
			perG(b)
			close(stop)
			wg.Wait()
		})
	}
}
