// Package testkit is what the tests and benchmarks of several packages share:
// waiting for a condition (WaitFor), contention made on purpose
// (testkit/contention) and a headless-Chromium client (testkit/chromium).
package testkit

import (
	"os"
	"os/exec"
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

// CIEnv is the environment variable .ci/run sets: with it, a test that
// needs an outside program fails when the program is missing, instead of
// skipping (a CI run must not pass without its tests).
const CIEnv = "LOCKDIAG_CI"

// NeedTool skips t when an outside program it needs is missing, or fails
// it when CIEnv is set. found is whether the program is there; install
// says how to get it (e.g. "apt-get install prometheus").
func NeedTool(t testing.TB, found bool, what, install string) {
	t.Helper()
	if found {
		return
	}
	if os.Getenv(CIEnv) != "" {
		t.Fatalf("%s is missing and %s is set, so this test must run: %s", what, CIEnv, install)
	}
	t.Skipf("%s is missing (%s); set %s=1 to make this a failure", what, install, CIEnv)
}

// LookPath returns the path of an executable on PATH, or "" if there is
// none.
func LookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}
