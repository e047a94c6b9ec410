package lockreport

import "testing"

// TestLearnInsideOrder: nested with-lock helpers (handleOrder passes
// Guarded.With a closure, which passes withLock one of its own) are seen
// from stacks taken at different depths of the critical section; whatever
// order the stacks come in (they come from maps), the helper's parent is
// the outermost function whose closure ran inside it.
func TestLearnInsideOrder(t *testing.T) {
	frames := func(fns ...string) []Frame {
		fs := make([]Frame, len(fns))
		for i, fn := range fns {
			fs[i] = Frame{Func: fn}
		}
		return fs
	}
	// Inside the program's closure, and early, inside Guarded.With's
	// closure only. The owner, main.(*store).withLock, is at index 2 and 1.
	deep := frames("main.persistOrder", "main.handleOrder.func1", "main.(*Guarded[...]).With.func1",
		"main.(*store).withLock", "main.(*Guarded[...]).With", "main.handleOrder", "main.worker")
	early := frames("main.(*Guarded[...]).With.func1",
		"main.(*store).withLock", "main.(*Guarded[...]).With", "main.handleOrder", "main.worker")
	for _, order := range [][]int{{0, 1}, {1, 0}} {
		w := newWrapKnowledge()
		for _, i := range order {
			if i == 0 {
				w.learnInside(deep, 3)
			} else {
				w.learnInside(early, 1)
			}
		}
		if p, cb := w.with["main.(*store).withLock"], w.callback["main.(*store).withLock"]; p != "main.handleOrder" || cb != "main.handleOrder.func1" {
			t.Errorf("order %v: withLock's parent %q, callback %q; want main.handleOrder, main.handleOrder.func1", order, p, cb)
		}
	}
}
