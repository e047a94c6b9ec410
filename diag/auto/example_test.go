package auto_test

// Linking lockdiag into a service is this one import: at init it starts
// the monitor, serves /debug/locks on 127.0.0.1:6061 and registers it on
// http.DefaultServeMux. The LOCKDIAG_* environment variables configure it.
import _ "github.com/lockdiag/lockdiag/diag/auto"

func Example() {}
