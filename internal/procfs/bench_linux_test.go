//go:build linux

package procfs

import "testing"

// BenchmarkScan measures one full scan of /proc/self with kept-open
// descriptors (the first scan, which opens them, is not timed).
func BenchmarkScan(b *testing.B) {
	b.Run("self", func(b *testing.B) { benchScan(b, 0, false) })
	b.Run("threads=50", func(b *testing.B) { benchScan(b, 50, false) })
}

// BenchmarkScanOpenClose is the comparison: every file is opened, read and
// closed on every scan. (Threads created by BenchmarkScan stay as idle Ms,
// so only the 50-thread case is measured; the "threads" metric shows the
// count.)
func BenchmarkScanOpenClose(b *testing.B) {
	b.Run("threads=50", func(b *testing.B) { benchScan(b, 50, true) })
}

func benchScan(b *testing.B, threads int, openEach bool) {
	if threads > 0 {
		if n := threads - statusThreads(b); n > 0 {
			lockedThreads(b, n)
		}
	}
	s, err := NewScanner("/proc/self")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.openEach = openEach
	if _, err := s.Scan(); err != nil {
		b.Fatal(err)
	}
	rows := 0
	for b.Loop() {
		sc, err := s.Scan()
		if err != nil {
			b.Fatal(err)
		}
		rows += len(sc.Threads)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/thread")
	b.ReportMetric(float64(rows)/float64(b.N), "threads")
}
