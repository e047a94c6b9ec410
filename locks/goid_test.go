package locks

import (
	"fmt"
	"sync"
	"testing"
)

func TestGoidMatchesStackHeader(t *testing.T) {
	needGoid(t)
	t.Logf("goid offset %d", goidOffset)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 100 {
		wg.Go(func() {
			if got, want := goid(), myID(); got != want {
				errs <- fmt.Sprintf("goid() = %d, runtime.Stack says %d", got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got, want := goid(), myID(); got != want {
		t.Errorf("goid() = %d in the test goroutine, runtime.Stack says %d", got, want)
	}
}

func TestParseGoroutineID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"goroutine 1 [running]:\n", 1},
		{"goroutine 18446744073709551 [chan receive]:", 18446744073709551},
		{"goroutine 18 [", 18},
		{"goroutine 18", 0},
		{"goroutine  18 [", 0},
		{"goroutine x [", 0},
		{"gorutine 18 [", 0},
		{"", 0},
	} {
		if got := parseGoroutineID([]byte(tc.in)); got != tc.want {
			t.Errorf("parseGoroutineID(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
