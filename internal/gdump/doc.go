// Package gdump parses Go goroutine dumps: the traceback text of
// [runtime.Stack] with all=true, of panics and fatal errors, of SIGQUIT and
// of runtime/pprof's goroutine profile at debug=2 (all the same format), and
// the aggregated goroutine profile at debug=1 ("N @ 0x... #\t0x...\tfunc+0x..").
//
// # What a dump holds
//
// debug=2 (and every runtime traceback) has, per goroutine: its id, its
// status or wait reason ("sync.Mutex.Lock", "IO wait", "sleep", "running"),
// the minutes it has been blocked (printed from 1 minute on), whether it is
// locked to a thread, its pprof labels when the runtime prints them (see
// below), and its frames: function, file, line and the argument words the
// runtime found for each frame that was not inlined. A word followed by "?"
// may be stale (the runtime's liveness data says its spill slot is dead);
// see [Arg.Inaccurate]. The "created by" line gives the creating function and
// goroutine.
//
// debug=1 aggregates goroutines with identical stacks and labels: there are
// no ids, states, arguments or wait times, and the runtime's own frames at
// the top of each stack are left out; [Goroutine.Count] says how many
// goroutines share the stack.
//
// # Labels in tracebacks
//
// Go 1.26 prints pprof labels inside the status brackets when
// GODEBUG=tracebacklabels=1 ("[select, labels:{"k": "v"}]:"). Go 1.27 prints
// them after the brackets, quoting only keys and values that need it
// ("[select] {k: v}:"), and turns this on by default for main modules that
// declare go >= 1.27; GODEBUG=tracebacklabels=0 turns it off. Both forms are
// read into [Goroutine.Labels]. debug=1 has them on a "# labels:" line.
//
// # Errors
//
// [Parse] reads what it can: a truncated or partly garbled dump gives the
// goroutines it could read, together with an error that names the lines it
// could not (each a [*SyntaxError]). Text outside goroutine records (a panic
// message, "runtime stack:", register dumps) is skipped without error.
//
// # Cost
//
// Parsing is linear in the input: 1.4-2.5 µs and 0.9 KB of memory per
// goroutine of a server-shaped dump of 20,000 goroutines (370-530 MB/s;
// BenchmarkDump in internal/lockgraph, on a shared 2-vCPU VM). Taking the
// dump costs more: the runtime stops the world for runtime.Stack(buf,
// true), 5-15 µs per goroutine measured the same way. Function and file
// names are interned, and goroutines, frames and argument words are
// allocated in blocks: a dump of 20,000 goroutines costs about 300
// allocations.
//
// # What the runtime's numbers mean
//
// "N minutes" is stamped by the garbage collector: a GC's stack scan
// records the start time of the previous completed GC as the moment a
// blocked goroutine blocked (runtime/mgcmark.go, markroot). A goroutine
// blocked for a second after a quiet minute can show "1 minutes", and one
// blocked for minutes shows nothing until two GCs have run.
package gdump
