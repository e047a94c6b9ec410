package diag

import (
	"io"
	"time"
)

// ThreadsSection is the OS view of the process's threads in a report.
type ThreadsSection struct{}

func (t *ThreadsSection) writeText(w io.Writer) error { return nil }

// threadSampler samples /proc/self/task for the thread signals.
type threadSampler struct{}

func newThreadSampler() *threadSampler                                  { return &threadSampler{} }
func (t *threadSampler) sample(now time.Time, out *[numSignals]float64) {}
func (t *threadSampler) close()                                         {}
func (t *threadSampler) snapshotJSON(series []Sample) ([]byte, error)   { return nil, errNoThreads }
