package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Pinning keeps the server under test and the load generator off each
// other's cores: every server process starts under `taskset -c <server
// cores>` (so its Go runtime sees only those cores and sets GOMAXPROCS to
// their number), and the load generator moves each of its own threads to
// the other cores with sched_setaffinity and sets GOMAXPROCS to match.
// runtime.LockOSThread alone would not do: it binds a goroutine to a
// thread, not a thread to a core.
type pinning struct {
	on                 bool
	server, loadgen    []int // cores
	taskset            string
	why                string // when off
	savedMaxProcs      int
	serverSet, loadSet string // "0", "1" as taskset spells them
}

// planPinning splits the machine's cores in two halves (the first for the
// servers, the rest for the load generator) when taskset is on PATH and
// there are at least 2 cores.
func planPinning(want bool) *pinning {
	p := &pinning{}
	n := runtime.NumCPU()
	switch {
	case !want:
		p.why = "pinning turned off (-pin=false)"
		return p
	case n < 2:
		p.why = "one core: nothing to split"
		return p
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		p.why = "taskset (util-linux) not found"
		return p
	}
	allowed := schedCores()
	if len(allowed) < 2 {
		p.why = "this process may run on fewer than 2 cores"
		return p
	}
	half := len(allowed) / 2
	p.on, p.taskset = true, ts
	p.server, p.loadgen = allowed[:half], allowed[half:]
	p.serverSet, p.loadSet = cpuList(p.server), cpuList(p.loadgen)
	return p
}

// mode says, for the report, how the cores were shared.
func (p *pinning) mode() string {
	if p == nil || !p.on {
		why := "no pinning"
		if p != nil && p.why != "" {
			why = p.why
		}
		return fmt.Sprintf("not pinned (%s): the servers and the load generator share every core", why)
	}
	return fmt.Sprintf("pinned: each server process under `taskset -c %s` (its Go runtime sees %d core(s), so GOMAXPROCS %d), the load generator's threads on core(s) %s by sched_setaffinity (GOMAXPROCS %d)",
		p.serverSet, len(p.server), len(p.server), p.loadSet, len(p.loadgen))
}

// command wraps bin and args to run on the server cores.
func (p *pinning) command(bin string, args []string) (string, []string) {
	if p == nil || !p.on {
		return bin, args
	}
	return p.taskset, append([]string{"-c", p.serverSet, bin}, args...)
}

// pinSelf moves every thread of this process to the load generator's
// cores; threads made later inherit the mask of the thread that makes them.
func (p *pinning) pinSelf() error {
	if p == nil || !p.on {
		return nil
	}
	if err := setAllThreads(p.loadgen); err != nil {
		return err
	}
	p.savedMaxProcs = runtime.GOMAXPROCS(len(p.loadgen))
	return nil
}

// unpinSelf gives this process every core back, for what runs after the
// load (the in-process benchmarks inherit its mask).
func (p *pinning) unpinSelf() {
	if p == nil || !p.on || p.savedMaxProcs == 0 {
		return
	}
	_ = setAllThreads(append(append([]int(nil), p.server...), p.loadgen...))
	runtime.GOMAXPROCS(p.savedMaxProcs)
	p.savedMaxProcs = 0
}

func cpuList(cores []int) string {
	s := make([]string, len(cores))
	for i, c := range cores {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// cpuMask is a sched_setaffinity mask for up to 1024 cores.
type cpuMask [16]uint64

func maskOf(cores []int) cpuMask {
	var m cpuMask
	for _, c := range cores {
		if c >= 0 && c < 1024 {
			m[c/64] |= 1 << (c % 64)
		}
	}
	return m
}

// schedCores is the cores this thread may run on.
func schedCores() []int {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return nil
	}
	var out []int
	for c := range 1024 {
		if m[c/64]&(1<<(c%64)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// setAllThreads sets the affinity of every thread of this process.
func setAllThreads(cores []int) error {
	m := maskOf(cores)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("bench: pin: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
		// A thread may have exited since the directory was read.
		if errno != 0 && errno != syscall.ESRCH {
			return fmt.Errorf("bench: pin thread %d: %w", tid, errno)
		}
	}
	return nil
}
