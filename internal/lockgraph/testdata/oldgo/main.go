package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

func gid() int {
	var b [64]byte
	n := runtime.Stack(b[:], false)
	f := bytes.Fields(b[:n])
	id, _ := strconv.Atoi(string(f[1]))
	return id
}

type Account struct {
	id      int
	balance int
	name    string // 16 bytes
	mu      sync.Mutex
}

//go:noinline
func transfer(a, b *Account, amt int) {
	a.mu.Lock()
	fmt.Fprintf(os.Stderr, "transfer g%d a=%p b=%p a.mu=%p b.mu=%p\n", gid(), a, b, &a.mu, &b.mu)
	time.Sleep(50 * time.Millisecond)
	b.mu.Lock()
	a.balance -= amt
	b.balance += amt
	b.mu.Unlock()
	a.mu.Unlock()
}

type Cache struct {
	hits int64
	mu   sync.RWMutex
	m    map[string]int
}

//go:noinline
func (c *Cache) migrate(d time.Duration) {
	c.mu.Lock()
	fmt.Fprintf(os.Stderr, "migrate g%d c=%p mu=%p\n", gid(), c, &c.mu)
	time.Sleep(d)
	c.mu.Unlock()
}

//go:noinline
func (c *Cache) Get(k string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

//go:noinline
func (c *Cache) Put(k string, v int) {
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
}

//go:noinline
func (c *Cache) scan(d time.Duration) {
	c.mu.RLock()
	fmt.Fprintf(os.Stderr, "scan g%d c=%p\n", gid(), c)
	time.Sleep(d)
	c.mu.RUnlock()
}

type Conn struct {
	mu sync.Mutex
	nc net.Conn
}

type Inner struct {
	x  [3]int64
	mu sync.Mutex
}
type Outer struct {
	a int64
	Inner
}

//go:noinline
func (in *Inner) work() {
	in.mu.Lock()
	in.x[0]++
	in.mu.Unlock()
}

//go:noinline
func (o *Outer) hold(d time.Duration) {
	o.mu.Lock()
	time.Sleep(d)
	o.mu.Unlock()
}

//go:noinline
func lockTwice(mu *sync.Mutex) {
	mu.Lock()
	mu.Lock()
}

func main() {
	ctx := context.Background()
	_ = ctx
	a := &Account{id: 1}
	b := &Account{id: 2}
	fmt.Fprintf(os.Stderr, "off Account.mu=%d Cache.mu=%d Outer.Inner=%d Inner.mu=%d\n", unsafe.Offsetof(a.mu), unsafe.Offsetof(Cache{}.mu), unsafe.Offsetof(Outer{}.Inner), unsafe.Offsetof(Inner{}.mu))
	go transfer(a, b, 1)
	go transfer(b, a, 1)
	c := &Cache{m: map[string]int{}}
	go c.migrate(time.Hour)
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < 2; i++ {
		go c.Get("x")
	}
	go c.Put("y", 1)
	// writer waiting for reader
	c2 := &Cache{m: map[string]int{}}
	go c2.scan(time.Hour)
	time.Sleep(10 * time.Millisecond)
	go c2.Put("z", 2)
	time.Sleep(10 * time.Millisecond)
	go c2.Get("z") // reader behind pending writer
	o := &Outer{}
	fmt.Fprintf(os.Stderr, "o=%p inner=%p mu=%p\n", o, &o.Inner, &o.mu)
	go o.hold(time.Hour)
	time.Sleep(10 * time.Millisecond)
	go o.work()
	var m sync.Mutex
	fmt.Fprintf(os.Stderr, "self mu=%p\n", &m)
	go lockTwice(&m)
	time.Sleep(200 * time.Millisecond)
	lvl, _ := strconv.Atoi(os.Getenv("LVL"))
	pprof.Lookup("goroutine").WriteTo(os.Stdout, lvl)
}
