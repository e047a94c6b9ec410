package lockreport

import (
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/lockdiag/lockdiag/internal/stacks"
)

// program tells the program's own code from the libraries' and the
// standard library's: package main, and the packages of the main module.
type program struct {
	module string // "" when only package main is known
	source string // how module was found
}

func (p program) is(fn string) bool {
	pkg := stacks.Package(fn)
	if pkg == "main" {
		return true
	}
	return p.module != "" && p.module != "main" && (pkg == p.module || strings.HasPrefix(pkg, p.module+"/"))
}

// callerIn returns the first frame of fs from index i outward that is the
// program's code, or false.
func (p program) callerIn(fs []Frame, i int) (Frame, bool) {
	for j := max(i, 0); j < len(fs); j++ {
		if p.is(fs[j].Func) {
			return fs[j], true
		}
	}
	return Frame{}, false
}

// guessProgram finds the program's code in a foreign trace: package main
// when the waiters' stacks show it; else the outermost module outside
// the standard library that the stacks share (a test binary's package
// under test, a plugin's module).
func guessProgram(opts Options, waiters []*stackInfo) program {
	if opts.MainModule != "" {
		return program{module: opts.MainModule, source: "the build info"}
	}
	count := map[string]int{}
	for _, si := range waiters {
		if si == nil || si.own {
			continue
		}
		for _, f := range si.frames {
			if stacks.Package(f.Func) == "main" {
				return program{module: "main", source: "package main in the stacks"}
			}
		}
		for j := len(si.frames) - 1; j >= 0; j-- {
			pkg := stacks.Package(si.frames[j].Func)
			if !stacks.Std(pkg) && !stacks.Internal(si.frames[j].Func) && pkg != "" {
				count[stacks.Module(pkg)] += max(si.lw.waits, 1)
				break
			}
		}
	}
	var mods []string
	for m := range count {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b string) int {
		if c := cmp.Compare(count[b], count[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if len(mods) > 0 {
		return program{module: mods[0], source: "the outermost module the waiters' stacks share"}
	}
	return program{}
}

// name is how the report names a function: package-qualified with the
// import path shortened, "logrus.(*Entry).write", "log.(*Logger).output".
func name(fn string) string { return stacks.Short(fn) }

// moduleOf is the module of fn to show next to its name, "" for the
// standard library and the program.
func (p program) moduleOf(fn string) string {
	if fn == "" || p.is(fn) || stacks.Internal(fn) {
		return ""
	}
	pkg := stacks.Package(fn)
	if stacks.Std(pkg) || pkg == "main" {
		return ""
	}
	return stacks.Module(pkg)
}

// siteLabel is "logrus.(*Entry).log (entry.go:323)".
func siteLabel(f Frame) string {
	if f.Func == "?" || f.Func == "" {
		return "an unknown site (blocked before the window, no stack)"
	}
	if f.File == "" {
		return name(f.Func)
	}
	return name(f.Func) + " (" + path.Base(f.File) + ":" + strconv.Itoa(f.Line) + ")"
}

// funcAt is siteLabel for a holder or a waker.
func funcAt(f Frame) string {
	if f.Func == "" || f.Func == "?" {
		return "an unknown function"
	}
	return siteLabel(f)
}
