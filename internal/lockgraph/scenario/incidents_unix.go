//go:build unix

package scenario

import (
	"fmt"
	"sync"
	"syscall"
)

func init() {
	register("syscall-holder", true, syscallHolder)
}

// Journal's sync holds the lock across a blocking read(2) on a pipe: the
// goroutine is in state "syscall".
type Journal struct {
	fd int
	mu sync.Mutex
}

//go:noinline
func (j *Journal) sync(held chan<- struct{}) error {
	j.mu.Lock()
	held <- struct{}{}
	var b [1]byte
	_, err := syscall.Read(j.fd, b[:])
	j.mu.Unlock()
	return err
}

//go:noinline
func (j *Journal) Write(b []byte) {
	j.mu.Lock()
	j.fd += 0
	j.mu.Unlock()
}

func syscallHolder(r *Run) error {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		return err
	}
	j := &Journal{fd: p[0]}
	r.setAddr("object", addr(j))
	r.setAddr("lock", addr(&j.mu))
	held := make(chan struct{}, 1)
	r.goRole("holder", func() {
		j.sync(held)
		syscall.Close(p[0])
		syscall.Close(p[1])
	})
	<-held
	r.onRelease(func() {
		syscall.Write(p[1], []byte{1})
	})
	for i := 1; i <= 2; i++ {
		role := fmt.Sprintf("waiter%d", i)
		r.goRole(role, func() { j.Write(nil) })
		r.expect(role, stateMutex)
	}
	r.expect("holder", "syscall")
	return nil
}
