// Command lockdiag reads lock-contention reports: it analyzes Go execution
// traces and lockdiag snapshot bundles, and talks to a service that serves
// /debug/locks.
//
// Usage:
//
//	lockdiag analyze [-json] [-top N] [-budget D] [-mutex FILE] [-block FILE] FILE|-
//	lockdiag snapshots [-token T] [-json] URL
//	lockdiag snapshot  [-token T] [-json] URL [ID|latest]
//	lockdiag fetch     [-token T] [-o FILE] URL [ID|latest]
//	lockdiag take      [-token T] [-wall D] URL
//	lockdiag watch     [-token T] [-every N] [-n N] URL
//
// FILE is any Go execution trace (runtime/trace.Start, `go test -trace`,
// /debug/pprof/trace, a bundle's trace.out) or a snapshot bundle (.zip).
// URL is where the service listens (127.0.0.1:6061, http://host:port) or a
// full /debug/locks URL. The token may also come from LOCKDIAG_TOKEN.
//
// Exit status: 0 on success, 1 on failure, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first interrupt, a second one kills the program.
		<-ctx.Done()
		stop()
	}()
	c := &cli{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: isTerminal(os.Stdout),
	}
	code := c.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cli holds what the commands read and write, so that tests can run them
// in-process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal says whether stdout is a terminal: watch then redraws one
	// status line instead of printing one line per sample.
	terminal bool
	// columns is the terminal's width; if zero, it is asked for.
	columns int
	// backoff is watch's first delay before reconnecting; if zero, 250ms.
	backoff time.Duration
}

type command struct {
	name    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) int
}

var commands = []command{
	{"analyze", "the contention report of a Go execution trace or a snapshot bundle", (*cli).analyze},
	{"snapshots", "list the snapshots of a running service", (*cli).snapshots},
	{"snapshot", "print a snapshot's report", (*cli).snapshot},
	{"fetch", "download a snapshot bundle (.zip)", (*cli).fetch},
	{"take", "take a snapshot now", (*cli).take},
	{"watch", "follow a service's lock-wait signals, breaches and snapshots live", (*cli).watch},
}

// run runs the command named by args[0] and returns the exit status.
func (c *cli) run(ctx context.Context, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(c.stderr, "lockdiag: internal error: %v\n", r)
			code = exitFailure
		}
	}()
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			for _, cmd := range commands {
				if cmd.name == args[1] {
					return cmd.run(c, ctx, []string{"-h"})
				}
			}
			fmt.Fprintf(c.stderr, "lockdiag help: unknown command %q\n", args[1])
			return exitUsage
		}
		c.usage(c.stdout)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd.run(c, ctx, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "lockdiag: unknown command %q\n\n", name)
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "lockdiag explains lock contention in Go programs.\n\nUsage:\n\n  lockdiag <command> [flags] [arguments]\n\nCommands:\n\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun \"lockdiag <command> -h\" for a command's flags.\n")
}

// flagSet is a flag.FlagSet with the command's usage text, that accepts
// flags after the arguments too ("lockdiag snapshot URL -json").
type flagSet struct {
	*flag.FlagSet
	cmd, args, about string
}

func newFlagSet(cmd, args, about string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, cmd: cmd, args: args, about: about}
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: lockdiag %s %s\n\n%s\n", fs.cmd, fs.args, strings.TrimSpace(fs.about))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parse parses flags and arguments in any order, and checks that there
// are at least min arguments and at most len(names); names name them in
// errors. It returns the exit status to use and false when the command
// must not go on: usage printed for -h (0) or for an error (2).
func (c *cli) parse(fs *flagSet, args []string, min int, names ...string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(c.stdout)
				return nil, exitOK, false
			}
			return nil, c.usageError(fs, "%v", err), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			// Everything after "--" is an argument.
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, c.usageError(fs, "missing %s", names[len(pos)]), false
	case len(pos) > len(names):
		return nil, c.usageError(fs, "too many arguments: %s", strings.Join(pos[len(names):], " ")), false
	}
	return pos, 0, true
}

func (c *cli) usageError(fs *flagSet, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "lockdiag %s: %s\n", fs.cmd, fmt.Sprintf(format, a...))
	fmt.Fprintf(c.stderr, "usage: lockdiag %s %s\nRun \"lockdiag %s -h\" for details.\n", fs.cmd, fs.args, fs.cmd)
	return exitUsage
}

// fail reports a failure of cmd and returns exitFailure.
func (c *cli) fail(cmd string, err error) int {
	fmt.Fprintf(c.stderr, "lockdiag %s: %v\n", cmd, err)
	return exitFailure
}

// isTerminal reports whether f is a character device (a terminal), which
// is good enough to decide whether to redraw a line in place.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
