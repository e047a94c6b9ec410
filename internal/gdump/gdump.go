package gdump

import (
	"fmt"
	"strings"
)

// Format is the kind of dump a [Dump] was read from.
type Format uint8

const (
	// Traceback is the runtime's traceback format: runtime.Stack(buf,
	// true), panics, SIGQUIT, and the goroutine profile at debug=2.
	Traceback Format = iota + 1
	// Aggregated is the goroutine profile at debug=1: one record per
	// distinct stack, with a count, and no ids, states or arguments.
	Aggregated
)

func (f Format) String() string {
	switch f {
	case Traceback:
		return "debug=2"
	case Aggregated:
		return "debug=1"
	}
	return "unknown"
}

// A Dump is a parsed goroutine dump.
type Dump struct {
	Format Format
	// Goroutines are in the order of the input. For [Aggregated] dumps each
	// is one distinct stack and its Count says how many goroutines share it.
	Goroutines []*Goroutine
	// Total is the number of goroutines the dump covers: the "total N" of
	// a debug=1 header if there was one, else the sum of the Counts.
	Total int
}

// A Goroutine is one goroutine of a traceback dump, or one distinct stack
// of an aggregated dump.
type Goroutine struct {
	// ID is the goroutine id; 0 in aggregated dumps (and for the system
	// stacks, "goroutine 0 ... [idle]", of crash dumps).
	ID int64
	// State is the wait reason of a waiting goroutine ("sync.Mutex.Lock",
	// "IO wait", "chan receive", "sleep", ...) and the status otherwise
	// ("running", "runnable", "syscall"). Empty in aggregated dumps.
	State string
	// Leaked is set for goroutines that Go 1.27's goroutine leak detector
	// marked as leaked ("[sync.Mutex.Lock (leaked)]").
	Leaked bool
	// WaitMinutes is how long the goroutine has been blocked, in whole
	// minutes as the runtime prints them; 0 below one minute and when not
	// printed. The runtime's figure can be off by a GC interval either way
	// (see "What the runtime's numbers mean" in the package doc).
	WaitMinutes int
	// LockedToThread is set when the goroutine is wired to its OS thread
	// (runtime.LockOSThread).
	LockedToThread bool
	// Bubble is the testing/synctest bubble id, 0 if none.
	Bubble int64
	// Labels are the pprof labels printed for the goroutine; nil if none.
	Labels map[string]string
	// Frames are the goroutine's stack, innermost first.
	Frames []Frame
	// FramesElided counts frames the runtime left out of the middle of a
	// deep stack ("...N frames elided..."); -1 when it printed
	// "...additional frames elided..." without a count.
	FramesElided int
	// StackUnavailable is set when the runtime printed "goroutine running
	// on other thread; stack unavailable" (crash dumps).
	StackUnavailable bool
	// CreatedBy is the function that started the goroutine, with the file
	// and line of the go statement; its Func is empty for goroutines the
	// runtime does not print a creator for (goroutine 1, system goroutines).
	CreatedBy Frame
	// CreatorID is the goroutine that ran the go statement; 0 if not
	// printed (Go < 1.21, aggregated dumps).
	CreatorID int64
	// Ancestors are the stacks of the creating goroutines at the time of
	// creation, printed with GODEBUG=tracebackancestors=N.
	Ancestors []Ancestor
	// Count is the number of goroutines with this stack: 1 in traceback
	// dumps.
	Count int
	// Line is the line of the input where the goroutine's record starts.
	Line int
}

// An Ancestor is a creating goroutine's stack as recorded when it ran a go
// statement ("[originating from goroutine N]:"). Its frames have no
// arguments.
type Ancestor struct {
	ID        int64
	Frames    []Frame
	CreatedBy Frame
}

// A Frame is one function on a stack.
type Frame struct {
	// Func is the function as printed: "main.(*Cache).Get",
	// "main.main.func1", "pkg.F[...]" for generic functions.
	Func string
	File string
	Line int
	// PC is the program counter; only aggregated dumps and GOTRACEBACK≥system
	// tracebacks print it (0 otherwise).
	PC uint64
	// Offset is the PC's offset in the function (the "+0x1f"); 0 for
	// inlined frames and when not printed.
	Offset uint64
	// Inlined is set for frames printed with "(...)": the call was inlined
	// and the runtime has no arguments for it.
	Inlined bool
	// Args are the argument words of the frame in the order the runtime
	// prints them.
	Args []Arg
}

// ArgKind says what an argument position holds.
type ArgKind uint8

const (
	// Word is a machine word with a value.
	Word ArgKind = iota
	// Elided marks "...": the runtime stopped printing arguments (it
	// prints at most about ten words per frame).
	Elided
	// Unknown marks "_": the argument's offset was too large to record.
	Unknown
)

// An Arg is one printed argument word of a frame.
type Arg struct {
	// Value is the word; 0 unless Kind is Word.
	Value uint64
	// Param is the top-level argument the word belongs to, from 0: a
	// string or an interface is two words of one Param, and the words of a
	// struct are grouped in braces by the runtime. For a method, Param 0
	// is the receiver.
	Param int
	Kind  ArgKind
	// Inaccurate is set when the runtime marked the word with "?": the
	// value was read from a register spill slot that is not live at this
	// PC and may be stale or unrelated.
	Inaccurate bool
}

// Receiver returns the first argument word of the frame if it is accurate:
// for a method with a pointer receiver, the receiver.
func (f *Frame) Receiver() (uint64, bool) {
	if len(f.Args) == 0 {
		return 0, false
	}
	a := f.Args[0]
	if a.Kind != Word || a.Param != 0 || a.Inaccurate {
		return 0, false
	}
	return a.Value, true
}

// String returns "func(args)\n\tfile:line" as the runtime prints it
// (without the +0x offset).
func (f *Frame) String() string {
	var b strings.Builder
	b.WriteString(f.Func)
	b.WriteByte('(')
	if f.Inlined {
		b.WriteString("...")
	}
	writeArgs(&b, f.Args)
	fmt.Fprintf(&b, ")\n\t%s:%d", f.File, f.Line)
	return b.String()
}

func writeArgs(b *strings.Builder, args []Arg) {
	// The runtime groups words of one struct in braces; we kept only the
	// Param of each word, so aggregates print flat. That is enough for
	// humans reading a report.
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		switch a.Kind {
		case Elided:
			b.WriteString("...")
		case Unknown:
			b.WriteString("_")
		default:
			fmt.Fprintf(b, "%#x", a.Value)
			if a.Inaccurate {
				b.WriteByte('?')
			}
		}
	}
}

// Header returns the goroutine's first line as a traceback prints it,
// e.g. "goroutine 7 [sync.Mutex.Lock, 3 minutes]", or "3 goroutines" for an
// aggregated stack (one without a State).
func (g *Goroutine) Header() string {
	if g.State == "" {
		if g.Count == 1 {
			return "1 goroutine"
		}
		return fmt.Sprintf("%d goroutines", g.Count)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "goroutine %d [%s", g.ID, g.State)
	if g.Leaked {
		b.WriteString(" (leaked)")
	}
	if g.WaitMinutes > 0 {
		fmt.Fprintf(&b, ", %d minutes", g.WaitMinutes)
	}
	if g.LockedToThread {
		b.WriteString(", locked to thread")
	}
	b.WriteByte(']')
	return b.String()
}
