package e2e_test

// The quick start as README.md tells it, through the real binary: the
// policy `make run` serves and the example client's output.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// readmeOutputMarker precedes, in README.md, the fenced block of what
	// `go run ./examples/quickstart/client` prints.
	readmeOutputMarker = "<!-- quickstart-client-output: test/e2e TestQuickstartREADME runs the client and compares -->"
)

// repoRoot is the module's root, where README.md and examples/ are.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startQuickstart serves examples/quickstart/policy.yaml as `make run`
// does, on free loopback ports and with JSON logs.
func startQuickstart(t *testing.T, extra ...string) *server {
	t.Helper()
	return startServer(t, filepath.Join(repoRoot(t), "examples", "quickstart", "policy.yaml"), extra...)
}

// TestQuickstartREADME: what `go run ./examples/quickstart/client` prints
// against the quick-start server is, byte for byte, the block README.md
// shows after readmeOutputMarker; with --agent, the same but x-is-agent.
func TestQuickstartREADME(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := fencedBlockAfter(string(readme), readmeOutputMarker)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	srv := startQuickstart(t)

	if got := runQuickstartClient(t, root, srv); got != want {
		t.Errorf("go run ./examples/quickstart/client printed:\n%s\nREADME.md shows:\n%s", got, want)
	}
	wantAgent := strings.Replace(want, "  set    x-is-agent: false\n", "  set    x-is-agent: true\n", 1)
	if wantAgent == want {
		t.Fatal("README.md's block has no x-is-agent: false line")
	}
	if got := runQuickstartClient(t, root, srv, "--agent"); got != wantAgent {
		t.Errorf("go run ./examples/quickstart/client --agent printed:\n%s\nwant:\n%s", got, wantAgent)
	}
}

// runQuickstartClient runs the README's command against srv and returns
// its stdout.
func runQuickstartClient(t *testing.T, root string, srv *server, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./examples/quickstart/client", "--addr", srv.GRPCAddr}, args...)...)
	cmd.Dir = root
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./examples/quickstart/client %s: %v\nstderr:\n%s\nserver log:\n%s", strings.Join(args, " "), err, errOut.String(), srv.logs)
	}
	return out.String()
}

// fencedBlockAfter returns the content of the first ``` block after the
// line marker in a Markdown document.
func fencedBlockAfter(doc, marker string) (string, error) {
	_, rest, ok := strings.Cut(doc, "\n"+marker+"\n")
	if !ok {
		return "", fmt.Errorf("no line %q", marker)
	}
	lines := strings.SplitAfter(rest, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "```") })
	if start < 0 {
		return "", fmt.Errorf("no fenced block after %q", marker)
	}
	var b strings.Builder
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "```" {
			return b.String(), nil
		}
		b.WriteString(l)
	}
	return "", fmt.Errorf("the block after %q is not closed", marker)
}
