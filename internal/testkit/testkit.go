// Package testkit is what the tests and benchmarks of several packages share:
// waiting for a condition (WaitFor), contention made on purpose
// (testkit/contention) and a headless-Chromium client (testkit/chromium).
package testkit

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10ms until it returns true, and fails the test
// with what if it has not within timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
