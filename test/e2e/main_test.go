// Package e2e_test runs the extauthz binary as operators do: built once,
// started with a policy file on free loopback ports, asked over gRPC, and
// stopped with SIGTERM. Tokens are signed by the npm jose library, an
// implementation independent of ours.
package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/extauthz/extauthz/internal/bintest"
)

// binary is the extauthz built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	defer bintest.Remove()
	var err error
	if binary, err = bintest.Build(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// server is a running `extauthz serve`.
type server struct{ *bintest.Server }

// startServer runs `extauthz serve --policy policyFile` on free loopback
// ports with JSON logs, waits for its "serving" line and for /readyz, and
// stops it with SIGTERM when t ends, failing t unless it exits 0.
func startServer(t *testing.T, policyFile string, extra ...string) *server {
	t.Helper()
	return &server{bintest.Start(t, binary, policyFile, extra...)}
}

// client dials the server's gRPC address.
func (s *server) client(t *testing.T) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

func (s *server) check(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client(t).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v; log:\n%s", err, s.Logs)
	}
	return resp
}

// run runs the binary to completion and returns its exit code and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = bintest.Env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("extauthz %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// writeFile writes content to name in a new temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
