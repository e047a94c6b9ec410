// Command rwmutex shows a read-mostly map behind a sync.Mutex, then the
// same map behind a sync.RWMutex, and what lockdiag's report says about
// each: readers that queue behind each other, then readers that share the
// lock.
//
//	go run ./examples/rwmutex
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

// mutexStore guards its map with a plain Mutex: readers exclude each other.
type mutexStore struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *mutexStore) Get(k int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	demo.Spin(2 * time.Microsecond) // the work of a lookup: hashing, copying
	return s.m[k]
}

func (s *mutexStore) Set(k, v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
}

// rwStore guards the same map with an RWMutex: readers share it.
type rwStore struct {
	mu sync.RWMutex
	m  map[int]int
}

func (s *rwStore) Get(k int) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	demo.Spin(2 * time.Microsecond)
	return s.m[k]
}

func (s *rwStore) Set(k, v int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
}

func main() {
	d := flag.Duration("phase", 6*time.Second, "how long each version runs")
	readers := flag.Int("readers", 8, "reader goroutines")
	flag.Parse()
	m := auto.Monitor()
	demo.Intro("rwmutex", "runs two versions for 6s each (-phase), then exits", auto.Addr())

	ms := &mutexStore{m: fill()}
	a, err := demo.Run(m, demo.Phase{
		Name:    "read-mostly map behind a sync.Mutex",
		Funcs:   []string{"(*mutexStore).Get", "(*mutexStore).Set"},
		Workers: *readers,
		Op:      func(w, i int) { ms.Get(i % 1024) },
		Background: func(ctx demo.Context) {
			writer(ctx, func(i int) { ms.Set(i%1024, i) })
		},
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	a.Print()

	rs := &rwStore{m: fill()}
	b, err := demo.Run(m, demo.Phase{
		Name:    "the same map behind a sync.RWMutex",
		Funcs:   []string{"(*rwStore).Get", "(*rwStore).Set"},
		Workers: *readers,
		Op:      func(w, i int) { rs.Get(i % 1024) },
		Background: func(ctx demo.Context) {
			writer(ctx, func(i int) { rs.Set(i%1024, i) })
		},
	}, *d)
	if err != nil {
		log.Fatal(err)
	}
	b.Print()
	demo.Compare(a, b)
	fmt.Println("\nWith one reader at a time the readers queue: the report names the Mutex and that its holders are readers too.")
	fmt.Println("With an RWMutex they share it; what wait is left is behind the writer.")
	demo.Done("rwmutex", m, a, b)
}

func fill() map[int]int {
	m := make(map[int]int, 1024)
	for i := range 1024 {
		m[i] = i
	}
	return m
}

// writer updates the map every 5ms.
func writer(ctx demo.Context, set func(i int)) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set(i)
		}
	}
}
