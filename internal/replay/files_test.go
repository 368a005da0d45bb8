package replay

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFile writes a file under a fresh temporary directory, for the
// config that redis-server in Sentinel mode insists on rewriting.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
