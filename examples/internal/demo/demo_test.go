package demo

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lockdiag/lockdiag/diag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type hot struct{ mu sync.Mutex }

// lockedWork is the phase's lock site and critical section.
func (h *hot) lockedWork() {
	h.mu.Lock()
	Spin(50 * time.Microsecond)
	h.mu.Unlock()
}

// TestRunFindsThePhaseSite runs one phase under a real monitor: the
// result must name the phase's own site and count its wait.
func TestRunFindsThePhaseSite(t *testing.T) {
	m, err := diag.New(diag.Config{Dir: diag.DirOff, Rules: diag.RulesOff, TraceWindow: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	h := &hot{}
	r, err := Run(m, Phase{
		Name:    "hot",
		Funcs:   []string{"(*hot).lockedWork"},
		Workers: 4,
		Op:      func(w, i int) { h.lockedWork() },
	}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sites := r.Sites()
	if len(sites) != 1 || !strings.HasSuffix(sites[0].Func, "(*hot).lockedWork") || r.LockWait <= 0 || r.Ops == 0 {
		t.Errorf("sites %+v, wait %v, ops %d", sites, r.LockWait, r.Ops)
	}
	if _, err := Run(nil, Phase{}, time.Second); err == nil {
		t.Error("Run without a monitor succeeded")
	}
}
