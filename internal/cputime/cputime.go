// Package cputime reads the CPU time this process has used.
package cputime

// Self returns this process's user plus system CPU seconds, and false
// where the system does not say.
func Self() (float64, bool) { return self() }
