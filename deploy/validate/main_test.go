package validate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// root is the repository's root directory.
var root = func() string {
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return r
}()

var tmpDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "deploy-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = d
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(gomod, []byte("module github.com/extauthz/extauthz\n")) {
		fmt.Fprintf(os.Stderr, "%s is not the extauthz repository (%v)\n", root, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// repoPath returns the path of a repository file.
func repoPath(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }

func readRepo(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const buildVersion = "deploy-check"

var extauthzBin = sync.OnceValues(func() (string, error) {
	if b := os.Getenv("EXTAUTHZ_BIN"); b != "" {
		return b, nil
	}
	return BuildExtauthz(root, tmpDir, buildVersion)
})

// extauthz returns the extauthz binary, built once with the Dockerfile's
// flags (or $EXTAUTHZ_BIN).
func extauthz(t *testing.T) string {
	t.Helper()
	bin, err := extauthzBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// helmBin finds helm: $HELM, else PATH. ./deploy/check.sh installs it.
func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: set HELM or run ./deploy/check.sh, which installs it")
	}
	return h
}

// mustReplace replaces old, which must occur exactly once, with new.
func mustReplace(t *testing.T, s []byte, old, new string) []byte {
	t.Helper()
	if n := strings.Count(string(s), old); n != 1 {
		t.Fatalf("broken copy: %q occurs %d times, want 1", old, n)
	}
	return []byte(strings.Replace(string(s), old, new, 1))
}

// wantErr fails unless err is non-nil and mentions every one of subs.
func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error does not mention %q:\n%v", s, err)
		}
	}
}
