// Command convoy shows an RWMutex convoy: readers with long critical
// sections and a writer that comes by periodically. While the writer
// waits for the readers to leave, every new reader queues behind it; when
// the writer unlocks, the whole queue of readers wakes at once. lockdiag's
// report names the writer's wait and the convoy.
//
//	go run ./examples/convoy
package main

import (
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/lockdiag/lockdiag/diag/auto"
	"github.com/lockdiag/lockdiag/examples/internal/demo"
)

// catalog is read by many, rarely written.
type catalog struct {
	mu    sync.RWMutex
	items map[int]string
}

// Search holds the read lock for a long scan.
func (c *catalog) Search(prefix int) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	demo.Spin(500 * time.Microsecond) // scanning every item
	return len(c.items) + prefix
}

// Reload replaces an item under the write lock.
func (c *catalog) Reload(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[i%64] = fmt.Sprint(i)
	demo.Spin(200 * time.Microsecond)
}

func main() {
	d := flag.Duration("duration", 8*time.Second, "how long the workload runs")
	readers := flag.Int("readers", 12, "reader goroutines")
	flag.Parse()
	m := auto.Monitor()
	demo.Intro("convoy", "runs the workload for 8s (-duration), then exits", auto.Addr())

	c := &catalog{items: make(map[int]string)}
	r, err := demo.Run(m, demo.Phase{
		Name:    "RWMutex readers with long critical sections, a writer every 20ms",
		Funcs:   []string{"(*catalog).Search", "(*catalog).Reload"},
		Workers: *readers,
		Op:      func(w, i int) { c.Search(i) },
		Background: func(ctx demo.Context) {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Reload(i)
				}
			}
		},
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	r.Print()
	fmt.Println("\nEvery writer waits for the long readers to leave, and the readers that arrive meanwhile wait for the")
	fmt.Println("writer: one Unlock then wakes them all. Shorter read sections, or copy-on-write, end the convoy.")
	demo.Done("convoy", m, r)
}
