// Command sharded shows one hot lock split into shards: a counter map
// behind one sync.Mutex that every goroutine updates, then the same map
// split into 32 shards with a lock each, and what lockdiag's report says
// before and after.
//
//	go run ./examples/sharded
package main

import (
	"flag"
	"fmt"
	"hash/maphash"
	"log"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag/auto"
	"github.com/lockdiag/lockdiag/examples/internal/demo"
)

// oneLock is a counter map behind one lock.
type oneLock struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *oneLock) Add(key string) {
	c.mu.Lock()
	c.m[key]++
	demo.Spin(time.Microsecond) // bookkeeping done under the lock
	c.mu.Unlock()
}

// shard is one part of a sharded map.
type shard struct {
	mu sync.Mutex
	m  map[string]int
	_  [40]byte // keep shards' locks on separate cache lines
}

// sharded spreads keys over shards by hash.
type sharded struct {
	seed   maphash.Seed
	shards [32]shard
}

func newSharded() *sharded {
	s := &sharded{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]int)
	}
	return s
}

func (s *sharded) Add(key string) {
	sh := &s.shards[maphash.String(s.seed, key)%uint64(len(s.shards))]
	sh.mu.Lock()
	sh.m[key]++
	demo.Spin(time.Microsecond)
	sh.mu.Unlock()
}

func main() {
	d := flag.Duration("phase", 6*time.Second, "how long each version runs")
	workers := flag.Int("workers", 16, "goroutines updating the map")
	flag.Parse()
	m := auto.Monitor()
	demo.Intro("sharded", "runs two versions for 6s each (-phase), then exits", auto.Addr())
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}

	one := &oneLock{m: make(map[string]int)}
	a, err := demo.Run(m, demo.Phase{
		Name:    "one hot lock",
		Funcs:   []string{"(*oneLock).Add"},
		Workers: *workers,
		Op:      func(w, i int) { one.Add(keys[(w*7919+i)%len(keys)]) },
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	a.Print()

	sh := newSharded()
	b, err := demo.Run(m, demo.Phase{
		Name:    "32 shards, a lock each",
		Funcs:   []string{"(*sharded).Add"},
		Workers: *workers,
		Op:      func(w, i int) { sh.Add(keys[(w*7919+i)%len(keys)]) },
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	b.Print()
	demo.Compare(a, b)
	fmt.Println("\nThe trace has no lock addresses: the 32 shards' locks share one call site, so the report counts them")
	fmt.Println("as one site. Their total wait is what fell.")
	demo.Done("sharded", m, a, b)
}
