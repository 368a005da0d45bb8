// Package e2e_test runs the extauthz binary as operators do: built once,
// started with a policy file on free loopback ports, asked over gRPC, and
// stopped with SIGTERM. Tokens are signed by the npm jose library, an
// implementation independent of ours.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// binary is the extauthz built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "extauthz-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "extauthz")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/extauthz/extauthz/cmd/extauthz")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/extauthz:", err)
		return 1
	}
	return m.Run()
}

// server is a running `extauthz serve`.
type server struct {
	GRPCAddr, HTTPAddr string

	cmd      *exec.Cmd
	logs     *logtest.Buffer
	readDone chan struct{}
	once     sync.Once
	code     int
}

// startServer runs `extauthz serve --policy policyFile` on free loopback
// ports with JSON logs, waits for its "serving" line and for /readyz, and
// stops it with SIGTERM when t ends, failing t unless it exits 0.
func startServer(t *testing.T, policyFile string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--policy", policyFile,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &logtest.Buffer{}, readDone: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code := s.stop(t); code != 0 {
			t.Errorf("extauthz serve exited %d after SIGTERM, want 0; log:\n%s", code, s.logs)
		}
	})

	serving := make(chan map[string]any, 1)
	go func() {
		defer close(s.readDone)
		sc := bufio.NewScanner(io.TeeReader(stderr, s.logs))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "serving" {
				select {
				case serving <- line:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case line := <-serving:
		s.GRPCAddr, _ = line["grpc_addr"].(string)
		s.HTTPAddr, _ = line["http_addr"].(string)
		if s.GRPCAddr == "" || s.HTTPAddr == "" {
			t.Fatalf(`"serving" line lacks grpc_addr or http_addr: %v`, line)
		}
	case <-s.readDone:
		t.Fatalf("extauthz serve ended before serving; log:\n%s", s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf(`no "serving" log line within 30s; log:\n%s`, s.logs)
	}
	s.waitReady(t)
	return s
}

// waitReady polls /readyz until it answers 200, for a few seconds at most.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + s.HTTPAddr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		<-tick.C
	}
	t.Fatalf("/readyz not 200 within 5s (last: %s); log:\n%s", last, s.logs)
}

// stop sends SIGTERM once and returns the exit code; a server that does not
// exit within 20s is killed and fails t.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	s.once.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM: %v", err)
		}
		select {
		case <-s.readDone:
		case <-time.After(20 * time.Second):
			t.Errorf("extauthz serve still running 20s after SIGTERM; killing it; log:\n%s", s.logs)
			s.cmd.Process.Kill()
			<-s.readDone
		}
		err := s.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			s.code = 0
		case errors.As(err, &ee):
			s.code = ee.ExitCode()
		default:
			t.Errorf("wait: %v", err)
			s.code = -1
		}
	})
	return s.code
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
		t.Fatalf("Check: %v; log:\n%s", err, s.logs)
	}
	return resp
}

// cleanEnv is the test's environment without EXTAUTHZ_* variables, which
// would change the flags under test. A race-built binary would otherwise
// sleep a second at every exit.
func cleanEnv() []string {
	env := []string{"GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXTAUTHZ_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs the binary to completion and returns its exit code and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
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
