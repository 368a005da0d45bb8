// Package bintest runs the extauthz binary as operators do: built once per
// test binary (with -race when the tests run with it), started with `serve`
// on 127.0.0.1:0 ports and JSON logs, waited for until it logs "serving" and
// /readyz answers 200, and stopped with SIGTERM, its logs collected
// throughout.
//
// It is a test helper: nothing but tests imports it.
package bintest

import (
	"bufio"
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
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Build builds ./cmd/extauthz the first time it is called in a test binary
// and returns the path of the result; later calls return the same path (or
// the same error). Remove deletes it.
func Build() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "extauthz-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "extauthz")
		args := []string{"build", "-o", builtBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/extauthz/extauthz/cmd/extauthz")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/extauthz: %w\n%s", err, out)
		}
	})
	return builtBin, buildErr
}

// Remove deletes what Build built; TestMain calls it after m.Run.
func Remove() {
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
}

// Env is the test's environment without EXTAUTHZ_* variables, which would
// change the flags under test. A race-built binary would otherwise sleep a
// second at every exit.
func Env() []string {
	env := []string{"GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EXTAUTHZ_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// Server is a running `extauthz serve`.
type Server struct {
	GRPCAddr, HTTPAddr string
	// Logs is everything the server wrote to stderr so far.
	Logs *logtest.Buffer

	cmd      *exec.Cmd
	readDone chan struct{}
	once     sync.Once
	code     int
}

// Start runs `bin serve --policy policyFile` on free loopback ports with
// JSON logs, waits for its "serving" line and for /readyz, and stops it
// with SIGTERM when t ends, failing t unless it exits 0 (and logging its
// output if t failed).
func Start(t testing.TB, bin, policyFile string, extra ...string) *Server {
	t.Helper()
	args := append([]string{"serve", "--policy", policyFile,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = Env()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, Logs: &logtest.Buffer{}, readDone: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code := s.Stop(t); code != 0 {
			t.Errorf("extauthz serve exited %d after SIGTERM, want 0; log:\n%s", code, s.Logs)
		} else if t.Failed() {
			t.Logf("extauthz log:\n%s", s.Logs)
		}
	})

	serving := make(chan map[string]any, 1)
	go func() {
		defer close(s.readDone)
		sc := bufio.NewScanner(io.TeeReader(stderr, s.Logs))
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
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case line := <-serving:
		s.GRPCAddr, _ = line["grpc_addr"].(string)
		s.HTTPAddr, _ = line["http_addr"].(string)
		if s.GRPCAddr == "" || s.HTTPAddr == "" {
			t.Fatalf(`"serving" line lacks grpc_addr or http_addr: %v`, line)
		}
	case <-s.readDone:
		t.Fatalf("extauthz serve ended before serving; log:\n%s", s.Logs)
	case <-time.After(30 * time.Second):
		t.Fatalf(`no "serving" log line within 30s; log:\n%s`, s.Logs)
	}
	s.waitReady(t)
	return s
}

// waitReady polls /readyz until it answers 200, for 10 seconds at most.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
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
	t.Fatalf("/readyz not 200 within 10s (last: %s); log:\n%s", last, s.Logs)
}

// Signal sends sig to the server (SIGHUP to reload, for example).
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Stop sends SIGTERM once and returns the exit code; a server that does not
// exit within 20s is killed and fails t.
func (s *Server) Stop(t testing.TB) int {
	t.Helper()
	s.once.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM: %v", err)
		}
		select {
		case <-s.readDone:
		case <-time.After(20 * time.Second):
			t.Errorf("extauthz serve still running 20s after SIGTERM; killing it; log:\n%s", s.Logs)
			_ = s.cmd.Process.Kill()
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
