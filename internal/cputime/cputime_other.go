//go:build !unix

package cputime

func self() (float64, bool) { return 0, false }
