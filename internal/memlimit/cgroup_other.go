//go:build !linux

package memlimit

func cgroupLimit() (Headroom, bool) { return Headroom{}, false }
