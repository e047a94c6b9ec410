// Package coalesce runs one call at a time and shares its result with
// every caller that arrives while it is in flight: the flight recorder
// allows one write of its window at a time, and a snapshot of a process
// is taken once however many ask for it.
package coalesce

import (
	"context"
	"fmt"
	"sync"
)

// A Group runs at most one call at a time. The zero value is ready to
// use; a Group must not be copied after first use.
type Group[T any] struct {
	mu  sync.Mutex
	cur *Call[T]
	wg  sync.WaitGroup
}

// A Call is one run of a function, shared by the callers that joined it.
type Call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Do returns the call in flight and joined=true, or starts fn in a
// goroutine of its own and returns its call. The goroutine runs fn to the
// end even if every caller stops waiting, so that the callers still
// waiting get its result; [Group.Wait] waits for it.
func (g *Group[T]) Do(fn func() (T, error)) (c *Call[T], joined bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != nil {
		return g.cur, true
	}
	c = &Call[T]{done: make(chan struct{})}
	g.cur = c
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			// A panic in fn must not take the program down: the
			// callers get it as an error.
			if r := recover(); r != nil {
				c.err = fmt.Errorf("panic: %v", r)
			}
			g.mu.Lock()
			g.cur = nil
			g.mu.Unlock()
			close(c.done)
		}()
		c.val, c.err = fn()
	}()
	return c, false
}

// InFlight reports whether a call is running.
func (g *Group[T]) InFlight() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur != nil
}

// Wait waits until no call is running.
func (g *Group[T]) Wait() { g.wg.Wait() }

// Wait returns the call's result, or ctx's error if ctx ends first.
func (c *Call[T]) Wait(ctx context.Context) (T, error) {
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Done is closed when the call has returned.
func (c *Call[T]) Done() <-chan struct{} { return c.done }
