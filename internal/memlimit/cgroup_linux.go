package memlimit

import (
	"os"
	"strconv"
	"strings"
)

// cgroupLimit is the cgroup v2 memory.max of the process's cgroup against
// its memory.current (page cache included, as the kernel counts it).
func cgroupLimit() (Headroom, bool) {
	dir := "/sys/fs/cgroup"
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		// v2: a single line "0::/path".
		for _, line := range strings.Split(string(data), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok && p != "/" {
				dir += p
			}
		}
	}
	read := func(name string) (int64, bool) {
		data, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return n, err == nil // "max" does not parse: no limit
	}
	limit, ok := read("memory.max")
	if !ok {
		return Headroom{}, false
	}
	used, ok := read("memory.current")
	if !ok {
		return Headroom{}, false
	}
	return Headroom{Limit: limit, Used: used, Source: "cgroup memory.max"}, true
}
