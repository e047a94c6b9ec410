package lockreport

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lockdiag/lockdiag/internal/textfmt"
)

// siteEnded reports whether the waits at a site had stopped well before
// the window ended (win long): no goroutine waited there at the end, and
// the last wait ended at least a second (and a fifth of the window)
// before.
func siteEnded(s Site, win time.Duration) bool {
	return win > 0 && s.WaitingAtEnd == 0 && win-s.Last >= max(time.Second, win/5)
}

// endedHeadline opens the headline of contention that had ended.
func endedHeadline(s Site, win time.Duration) string {
	return fmt.Sprintf("Contention ended %s before the window's end (it went from +%s to +%s): ",
		textfmt.Dur(win-s.Last), textfmt.Dur(s.First), textfmt.Dur(s.Last))
}

// endedFinding says that the site's contention had ended, and what it
// was while it lasted (inner, if anything was found).
func endedFinding(s Site, win time.Duration, inner Finding) Finding {
	f := Finding{Kind: "contention-ended", Site: siteOf(s)}
	f.Summary = fmt.Sprintf("Contention ended: the waits on %s%s went from +%s to +%s of the %s window, and none since "+
		"(%s before its end); %s waited %s.", lockPhrase(s), callerPhrase(s.Caller, s.Func), textfmt.Dur(s.First), textfmt.Dur(s.Last),
		textfmt.Dur(win), textfmt.Dur(win-s.Last), textfmt.Plural(s.Waiters, "goroutine", "goroutines"), textfmt.Dur(s.Total))
	if inner.Kind != "" {
		f.Summary += " While it lasted: " + inner.Summary
		f.Evidence = append(f.Evidence, inner.Evidence...)
	}
	f.Evidence = append(f.Evidence, "trace: waits begun per second of the window: "+perSecondLine(s.PerSecond, win))
	return f
}

// perSecondLine is "+0s 2700, +1s 2703, ..., +7s 0".
func perSecondLine(per []int, win time.Duration) string {
	n := int(win / time.Second)
	if win%time.Second != 0 {
		n++
	}
	var parts []string
	for i := 0; i < max(n, len(per)); i++ {
		v := 0
		if i < len(per) {
			v = per[i]
		}
		parts = append(parts, "+"+strconv.Itoa(i)+"s "+strconv.Itoa(v))
	}
	return strings.Join(parts, ", ")
}
