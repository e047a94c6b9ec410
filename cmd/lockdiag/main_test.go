package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is what one in-process run of the command printed.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in-process with args, an empty
// environment unless env is given, and stdin as standard input.
func runCLI(t *testing.T, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
	if c.stdin == nil {
		c.stdin = strings.NewReader("")
	}
	code := c.run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// notifyBuffer is a concurrency-safe buffer whose readers can wait for a
// string to appear without polling.
type notifyBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{changed: make(chan struct{})} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return n, err
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer contains s, and fails the test after
// timeout.
func (b *notifyBuffer) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := strings.Contains(b.buf.String(), s)
		ch := b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %q; got:\n%s", timeout, s, b.String())
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{nil, exitUsage, "", "Commands:"},
		{[]string{"help"}, exitOK, "Commands:", ""},
		{[]string{"-h"}, exitOK, "analyze", ""},
		{[]string{"help", "watch"}, exitOK, "usage: lockdiag watch", ""},
		{[]string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"analyze"}, exitUsage, "", "missing FILE"},
		{[]string{"analyze", "-h"}, exitOK, "usage: lockdiag analyze", ""},
		{[]string{"analyze", "a", "b"}, exitUsage, "", "too many arguments: b"},
		{[]string{"analyze", "-top", "0", "x"}, exitUsage, "", "-top must be at least 1"},
		{[]string{"analyze", "-budget", "-1s", "x"}, exitUsage, "", "-budget must be positive"},
		{[]string{"analyze", "-bogus", "x"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"analyze", "-top", "many", "x"}, exitUsage, "", `invalid value "many" for flag -top`},
		{[]string{"snapshots"}, exitUsage, "", "missing URL"},
		{[]string{"snapshots", "ftp://example.com"}, exitUsage, "", "the scheme must be http or https"},
		{[]string{"snapshot", "127.0.0.1:1", "../../etc"}, exitUsage, "", "is not a snapshot id"},
		{[]string{"fetch", "127.0.0.1:1", "latest", "more"}, exitUsage, "", "too many arguments: more"},
		{[]string{"take", "-wall", "-1s", "127.0.0.1:1"}, exitUsage, "", "-wall cannot be negative"},
		{[]string{"watch"}, exitUsage, "", "missing URL"},
		{[]string{"watch", "-every", "0", "127.0.0.1:1"}, exitUsage, "", "-every must be from 1 to 600"},
		{[]string{"watch", "-n", "-3", "127.0.0.1:1"}, exitUsage, "", "-n cannot be negative"},
		{[]string{"watch", "http://"}, exitUsage, "", "no host"},
		{[]string{"watch", "http://127.0.0.1:99999"}, exitUsage, "", "bad port"},
	} {
		r := runCLI(t, nil, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.inStdout) || !strings.Contains(r.stderr, tc.inStderr) {
			t.Errorf("lockdiag %s: got %v\nwant exit %d, stdout with %q, stderr with %q", strings.Join(tc.args, " "), r, tc.code, tc.inStdout, tc.inStderr)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	var got []string
	fs := newFlagSet("x", "[-json] A B", "")
	j := fs.Bool("json", false, "")
	c := &cli{stdout: io.Discard, stderr: io.Discard}
	got, code, ok := c.parse(fs, []string{"a", "-json", "--", "-b"}, 2, "A", "B")
	if !ok || code != 0 || !*j || strings.Join(got, ",") != "a,-b" {
		t.Errorf("parse: got %q, json %v, code %d, ok %v; want [a -b], json true", got, *j, code, ok)
	}
}
