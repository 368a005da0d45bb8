//go:build unix

package replay

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"
)

// redisServer is a real redis-server on a free loopback port, killed when
// the test ends.
type redisServer struct {
	t    *testing.T
	bin  string
	args []string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *logtest.Buffer
}

// redisServerBinary finds redis-server. Without it the test is skipped on a
// workstation but fails when CI is set, so CI cannot pass by skipping.
func redisServerBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, ci := os.LookupEnv("CI"); ci {
			t.Fatalf("redis-server not found and CI is set: %v", err)
		}
		t.Skipf("redis-server not installed (apt-get install redis-server): %v", err)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// startRedis starts a throwaway redis-server; extra arguments follow the
// defaults (a config file path must come first, so configFile is separate).
func startRedis(t *testing.T, extra ...string) *redisServer {
	return startRedisConfig(t, "", extra...)
}

func startRedisConfig(t *testing.T, configFile string, extra ...string) *redisServer {
	t.Helper()
	s := &redisServer{t: t, bin: redisServerBinary(t), port: freePort(t)}
	if configFile != "" {
		s.args = append(s.args, configFile)
	}
	s.args = append(s.args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", t.TempDir(),
		"--loglevel", "warning",
	)
	s.args = append(s.args, extra...)
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }
func (s *redisServer) URL() string  { return "redis://" + s.Addr() }

// Start (re)starts the server on its port and waits until it answers PING.
func (s *redisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redis-server already running")
	}
	out := &logtest.Buffer{}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.out = cmd, done, out

	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := pingRaw(s.Addr()); err == nil {
			return
		} else if time.Now().After(deadline) {
			s.stopLocked()
			s.t.Fatalf("redis-server on %s not ready: %v\n%s", s.Addr(), err, out.String())
		}
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("redis-server exited early:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop kills the server and waits for it to exit; safe to call twice.
func (s *redisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *redisServer) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL also ends a stopped (paused) process
	<-s.done
	s.cmd = nil
}

// Pause freezes the process: connections stay open and requests queue in
// the kernel, but nothing answers, as with a hung or partitioned server.
func (s *redisServer) Pause()  { s.signal(syscall.SIGSTOP) }
func (s *redisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redis-server not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}

// pingRaw speaks just enough RESP to know the server is up, so the helper
// does not depend on the client under test.
func pingRaw(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// NOAUTH still proves the server is serving; LOADING does not.
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

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
