//go:build !linux && !darwin

package main

import "os"

// ttyWidth is not known here; $COLUMNS is used instead.
func ttyWidth(*os.File) int { return 0 }
