package procfs

import (
	"testing"

	"go.uber.org/goleak"
)

// The live tests start goroutines (some locked to threads); none may
// outlive its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
