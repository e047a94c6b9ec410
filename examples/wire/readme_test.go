package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMESnippet keeps the README's "wire it yourself" program the same
// as this file, which go vet builds in CI: the snippet compiles, imports
// and all.
func TestREADMESnippet(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- the whole of examples/wire/main.go -->\n```go\n"
	_, after, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	snippet, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("the README's snippet does not end")
	}
	if snippet != string(src) {
		t.Errorf("README.md's snippet differs from examples/wire/main.go; copy the file into the README.\nREADME:\n%s", snippet)
	}
}
