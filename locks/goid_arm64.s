//go:build gc

#include "textflag.h"

// func getg() unsafe.Pointer
//
// Returns the current goroutine's runtime g, which lives in register g (R28)
// on arm64 (cmd/internal/obj/arm64: REGG).
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVD g, R0
	MOVD R0, ret+0(FP)
	RET
