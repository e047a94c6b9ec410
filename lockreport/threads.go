package lockreport

import "golang.org/x/exp/trace"

// threadRec is what the trace last showed on one OS thread.
type threadRec struct {
	id      trace.ThreadID
	g       *gstate
	gid     trace.GoID
	lastRun int64
	// set when the goroutine exited
	exited    bool
	exitStack *stackInfo
}

// threadTable tracks the goroutine that ran last on each OS thread, for
// ThreadActivity (joined with /proc by thread id).
type threadTable struct {
	list []*threadRec
	byID map[trace.ThreadID]*threadRec
}

// ranOn records that g started running on thread tid at t.
func (tt *threadTable) ranOn(g *gstate, tid trace.ThreadID, t int64) {
	if tid == trace.NoThread {
		return
	}
	tr := g.thread
	if tr == nil || tr.id != tid {
		tr = tt.get(tid)
		if tr == nil {
			return
		}
		g.thread = tr
	}
	tr.g, tr.gid, tr.lastRun, tr.exited, tr.exitStack = g, g.id, t, false, nil
}

// get returns the record of thread tid, nil past maxThreads. Most
// programs have a few dozen threads: a linear scan beats the map there.
func (tt *threadTable) get(tid trace.ThreadID) *threadRec {
	if len(tt.list) <= 32 {
		for _, tr := range tt.list {
			if tr.id == tid {
				return tr
			}
		}
	} else if tr := tt.byID[tid]; tr != nil {
		return tr
	}
	if len(tt.list) >= maxThreads {
		return nil
	}
	tr := &threadRec{id: tid}
	tt.byID[tid] = tr
	tt.list = append(tt.list, tr)
	return tr
}

// exited records that g, which may have run last on its thread, exited.
func (tt *threadTable) exited(g *gstate) {
	if tr := g.thread; tr != nil && tr.g == g {
		tr.exited = true
		tr.exitStack = g.lastStack
	}
}
