package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a server the bench started: its output goes to a log file in
// the run's directory, its CPU time is read from /proc.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string // the first lines of stderr+stdout, for readiness
	wait  chan struct{}
	match func(line string) bool
}

// serverPin, set by Run for the length of a run, puts every server process
// Start starts on the server cores.
var serverPin *pinning

// Start runs bin with args (on the server cores when the run pins them); every line it prints is offered to the
// readiness matcher set with WaitLine before it starts.
func Start(name, dir, bin string, args []string, env []string, match func(string) bool) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	name0, argv := serverPin.command(bin, args)
	cmd := exec.Command(name0, argv...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &Process{Name: name, cmd: cmd, log: logPath, done: make(chan struct{}), wait: make(chan struct{}), match: match}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() {
		defer lf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		matched := match == nil
		if matched {
			close(p.wait)
		}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, line)
			if !matched {
				p.mu.Lock()
				p.lines = append(p.lines, line)
				p.mu.Unlock()
				if match(line) {
					matched = true
					close(p.wait)
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitLine waits until a line matched, the process exits, or timeout.
func (p *Process) WaitLine(timeout time.Duration) error {
	select {
	case <-p.wait:
		return nil
	case <-p.done:
		return fmt.Errorf("bench: %s exited before it was ready (%v); log: %s\n%s", p.Name, p.err, p.log, p.tail())
	case <-time.After(timeout):
		return fmt.Errorf("bench: %s not ready after %s; log: %s\n%s", p.Name, timeout, p.log, p.tail())
	}
}

// Lines are the lines seen before readiness.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *Process) tail() string {
	b, _ := os.ReadFile(p.log)
	s := string(b)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group and waits, then SIGKILL.
func (p *Process) Stop() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// CPU is the process's user+system CPU time so far, from /proc/<pid>/stat
// (every thread; children are not counted).
func (p *Process) CPU() (time.Duration, error) { return procCPU(p.Pid()) }

// clockTick is USER_HZ, 100 on every Linux the bench runs on.
const clockTick = 10 * time.Millisecond

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bench: unexpected /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bench: bad /proc stat")
	}
	return time.Duration(ut+st) * clockTick, nil
}

// machineBusy is the CPU time every core of the machine has spent busy
// (user, nice, system, irq, softirq, steal), from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * clockTick
}

// selfCPU is this process's CPU time (the load generator's share).
func selfCPU() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// childrenCPU is the CPU time of this process's children that have ended
// and been waited for: the load generator processes.
func childrenCPU() time.Duration { return rusageCPU(syscall.RUSAGE_CHILDREN) }

// rusageCPU is the user and system time getrusage reports for who.
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU is the calling OS thread's CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FreePort returns a free TCP port on 127.0.0.1, for servers that cannot
// be told to pick their own.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200 or timeout.
func waitHTTP(ctx context.Context, p *Process, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("bench: %s exited before it was ready (%v); log: %s\n%s", p.Name, p.err, p.log, p.tail())
		}
		if time.Now().After(deadline) {
			detail := ""
			if p != nil {
				detail = "; log: " + p.log + "\n" + p.tail()
			}
			return fmt.Errorf("bench: %s not ready after %s%s", url, timeout, detail)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
