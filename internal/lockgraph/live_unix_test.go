//go:build unix

package lockgraph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/lockdiag/lockdiag/internal/gdump"
)

// A deadlocked process dumped the way an operator would: kill -QUIT. The
// runtime prints every goroutine to standard error and exits.
func TestLiveSIGQUIT(t *testing.T) {
	for _, name := range []string{"deadlock2", "rlock-recursive"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+name)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadBytes('\n')
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %v: %s", err, stderr.Bytes())
			}
			var roles map[string]int64
			if err := json.Unmarshal(line, &roles); err != nil {
				t.Fatal(err)
			}
			go func() { // drain the dump the child also prints to stdout
				b := make([]byte, 32<<10)
				for {
					if _, err := out.Read(b); err != nil {
						return
					}
				}
			}()
			cmd.Process.Signal(syscall.SIGQUIT)
			cmd.Wait()
			if !bytes.HasPrefix(stderr.Bytes(), []byte("SIGQUIT: quit")) {
				t.Fatalf("not a SIGQUIT dump: %.200s", stderr.Bytes())
			}
			d, err := gdump.Parse(&stderr)
			if err != nil {
				t.Fatal(err)
			}
			check(t, name, Analyze(d, Options{}), roles)
		})
	}
}
