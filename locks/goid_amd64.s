//go:build gc

#include "textflag.h"

// func getg() unsafe.Pointer
//
// Returns the current goroutine's runtime g, which the runtime keeps in
// thread-local storage on amd64 (runtime/go_tls.h; the assembler rewrites
// (TLS) for each OS).
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
