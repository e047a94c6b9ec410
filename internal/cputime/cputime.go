// Package cputime reads the CPU time this process, or the calling thread,
// has used.
package cputime

import "time"

// Self returns this process's user plus system CPU seconds, and false
// where the system does not say.
func Self() (float64, bool) { return self() }

// Thread returns the CPU time the calling OS thread has used, and false
// where the system does not say (everywhere but Linux). A goroutine that
// compares two readings must stay on its thread in between
// (runtime.LockOSThread): unlike wall time, the difference does not grow
// while the thread waits for a CPU that other processes hold.
func Thread() (time.Duration, bool) { return thread() }
