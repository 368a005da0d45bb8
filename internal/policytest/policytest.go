// Package policytest writes policy files for tests that reload them: a
// valid policy that names its version in every part, an invalid one, and a
// writer that replaces the file by rename, as editors and ConfigMap updates
// do, so a reader never sees half a file.
//
// It is a test helper: nothing but tests imports it.
package policytest

import (
	"fmt"
	"os"
	"testing"
)

// Versioned is a valid policy whose realm, rule name and two headers
// (x-a, x-b) all name version n, so a reader or a Check that saw a mix of
// two policies would notice.
func Versioned(n int) string {
	return fmt.Sprintf(`version: v1
realm: v%[1]d
rules:
  - name: r%[1]d
    headers:
      x-a: '"%[1]d"'
      x-b: '"%[1]d"'
`, n)
}

// Broken is a policy that parses but does not compile (its header value is
// not a CEL expression of the right type), named for n.
func Broken(n int) string {
	return fmt.Sprintf("version: v1\nrules: [{name: broken%d, headers: {x-a: 'clams'}}]\n", n)
}

// Write replaces file with content: written beside it, then renamed over
// it.
func Write(t testing.TB, file, content string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}
