//go:build unix

// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped and started again on the same port,
// paused and resumed, and killed when the test ends. Without redis-server
// in PATH a test is skipped on a workstation but fails when CI is set, so
// CI cannot pass by skipping.
//
// It is a test helper: nothing but tests imports it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"
)

// Server is a real redis-server on a free loopback port.
type Server struct {
	t    testing.TB
	bin  string
	args []string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *logtest.Buffer
}

// Binary finds redis-server, or skips t (fails it when CI is set).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" {
			t.Fatalf("redis-server not found and CI=%s: %v", ci, err)
		}
		t.Skipf("redis-server not installed (apt-get install redis-server): %v", err)
	}
	return bin
}

// FreePort is a loopback TCP port that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
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

// Start starts a throwaway redis-server and waits until it answers PING;
// extra arguments follow the defaults.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartConfig(t, "", extra...)
}

// StartConfig is Start with a config file, which redis-server wants as its
// first argument (Sentinel mode insists on one it can rewrite).
func StartConfig(t testing.TB, configFile string, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), port: FreePort(t)}
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

// Port is the server's loopback port, the same across Stop and Start.
func (s *Server) Port() int { return s.port }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Start (re)starts the server on its port and waits until it answers PING.
func (s *Server) Start() {
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
		err := Ping(s.Addr())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
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
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL also ends a stopped (paused) process
	<-s.done
	s.cmd = nil
}

// Pause freezes the process: connections stay open and requests queue in
// the kernel, but nothing answers, as with a hung or partitioned server.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
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

// Ping speaks just enough RESP to know a server at addr is serving, so the
// helper does not depend on the client under test. NOAUTH still proves the
// server is serving; LOADING does not.
func Ping(addr string) error {
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
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
