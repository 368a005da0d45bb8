package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// The load generator of `extauthz-bench outside` runs in a process of its
// own, as a new user's client would: `extauthz-bench load` dials one
// server, sends the requests of a file with the bench's closed loop
// (load.go), and prints one JSON line, its Result. It reads the server's
// CPU from /proc/<pid>/stat just before and after the measured run, so
// neither its start nor its dialling counts.

// LoadConfig is one run of `extauthz-bench load`.
type LoadConfig struct {
	Addr     string // the server's gRPC address
	Pid      int    // the server's process, whose CPU is measured
	Requests string // a file of requests (writeRequests)
	// Start is where in the requests this run begins: the rounds of one
	// scenario go on where the last stopped, so distinct tokens stay
	// distinct.
	Start       uint64
	Concurrency int
	Conns       int
	Warmup      time.Duration // before the measured run; 0 for none
	Duration    time.Duration
	// Rate, when positive, makes the warm-up and the measured run open
	// loop (FixedRate) at that many Checks a second, with up to
	// Concurrency in flight: the tail latency at a given load rather than
	// the most a server does.
	Rate float64
	// Pin moves this process to the load generator's cores of the bench's
	// split (pin.go), the servers having been started on the others.
	Pin bool
	// Method is the gRPC method called, "" for ext_authz's Check.
	Method string
	// Once sends each request at most once, from Start on (single-use
	// credentials), and stops when they run out, instead of cycling.
	Once bool
}

// args are c as the command line of `extauthz-bench load`
// (outside_cmd.go parses it back).
func (c LoadConfig) args() []string {
	a := []string{"load",
		"-addr", c.Addr, "-pid", strconv.Itoa(c.Pid), "-requests", c.Requests,
		"-start", strconv.FormatUint(c.Start, 10), "-concurrency", strconv.Itoa(c.Concurrency),
		"-conns", strconv.Itoa(c.Conns), "-warmup", c.Warmup.String(), "-duration", c.Duration.String(),
	}
	if c.Rate > 0 {
		a = append(a, "-rate", strconv.FormatFloat(c.Rate, 'f', -1, 64))
	}
	if c.Method != "" {
		a = append(a, "-method", c.Method)
	}
	if c.Once {
		a = append(a, "-once")
	}
	if c.Pin {
		a = append(a, "-pin")
	}
	return a
}

// loadResult is the line `extauthz-bench load` prints.
type loadResult struct {
	Checks    int   `json:"checks"`
	Denied    int   `json:"denied"`
	Errors    int   `json:"errors"`
	Sent      int   `json:"sent"` // requests taken from the file, the warm-up's too
	ElapsedNS int64 `json:"elapsed_ns"`
	ServerNS  int64 `json:"server_cpu_ns"`
	LoadNS    int64 `json:"load_cpu_ns"`
	P50NS     int64 `json:"p50_ns"`
	P99NS     int64 `json:"p99_ns"`
	// QuantilesNS are the latencies at every tenth of a percent, 0 to
	// 100: enough for any percentile a report gives, a thousandth the
	// size of every latency.
	QuantilesNS []int64 `json:"quantiles_ns"`
	// DeniedHTTP counts the denies by their HTTP status.
	DeniedHTTP map[int32]int `json:"denied_http,omitempty"`
	// Exhausted is set when a -once run ran out of requests.
	Exhausted bool `json:"exhausted,omitempty"`
}

// loadQuantiles is how many latencies a loadResult keeps.
const loadQuantiles = 1001

// result is l as a Result, whose latencies are l's quantiles: a
// Percentile of it at a tenth of a percent is the run's own.
func (l *loadResult) result() *Result {
	r := &Result{
		Checks: l.Checks, Denied: l.Denied, DeniedHTTP: l.DeniedHTTP, Errors: l.Errors, Exhausted: l.Exhausted,
		Elapsed: time.Duration(l.ElapsedNS), ServerCP: time.Duration(l.ServerNS), LoadCPU: time.Duration(l.LoadNS),
	}
	for _, q := range l.QuantilesNS {
		r.Lat = append(r.Lat, time.Duration(q))
	}
	return r
}

// quantiles are the latencies of r at each of loadQuantiles steps.
func quantiles(r *Result) []int64 {
	if len(r.Lat) == 0 {
		return nil
	}
	q := make([]int64, loadQuantiles)
	for i := range q {
		q[i] = int64(r.Percentile(float64(i) * 100 / (loadQuantiles - 1)))
	}
	return q
}

// RunLoad is `extauthz-bench load`.
func RunLoad(ctx context.Context, cfg LoadConfig, out io.Writer) error {
	reqs, err := readRequests(cfg.Requests)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		return fmt.Errorf("bench: load: no requests in %s", cfg.Requests)
	}
	if cfg.Pin {
		p := planPinning(true)
		if !p.on {
			return fmt.Errorf("bench: load: cannot pin: %s", p.why)
		}
		if err := p.pinSelf(); err != nil {
			return err
		}
	}
	tg := &Target{Name: "server", Addr: cfg.Addr, Method: cfg.Method}
	if cfg.Pid > 0 {
		tg.Proc = attachProcess("server", cfg.Pid)
	}
	if err := tg.Dial(cfg.Conns); err != nil {
		return err
	}
	defer tg.Close()
	var src interface {
		Source
		taken() uint64
	}
	if cfg.Once {
		o := NewOneShot(reqs)
		o.pos.Store(cfg.Start)
		src = o
	} else {
		c := NewCycle(reqs)
		c.pos.Store(cfg.Start)
		src = c
	}
	run := func(d time.Duration) (*Result, error) {
		if cfg.Rate > 0 {
			return FixedRate(ctx, tg, src, cfg.Rate, cfg.Concurrency, d)
		}
		return ClosedLoop(ctx, tg, src, cfg.Concurrency, d)
	}
	if cfg.Warmup > 0 {
		if _, err := run(cfg.Warmup); err != nil {
			return err
		}
	}
	r, err := run(cfg.Duration)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(loadResult{
		Checks: r.Checks, Denied: r.Denied, Errors: r.Errors, Sent: int(src.taken() - cfg.Start),
		ElapsedNS: int64(r.Elapsed), ServerNS: int64(r.ServerCP), LoadNS: int64(r.LoadCPU),
		P50NS: int64(r.Percentile(50)), P99NS: int64(r.Percentile(99)), QuantilesNS: quantiles(r),
		DeniedHTTP: r.DeniedHTTP, Exhausted: r.Exhausted,
	})
}

// attachProcess is a Process for a server another process started: only
// its CPU can be read.
func attachProcess(name string, pid int) *Process {
	proc, _ := os.FindProcess(pid) // never fails on Unix
	return &Process{Name: name, cmd: &exec.Cmd{Process: proc}, done: make(chan struct{}), wait: make(chan struct{})}
}

// writeRequests writes marshalled requests to a file, each after its
// length as a uvarint.
func writeRequests(path string, reqs [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var n [binary.MaxVarintLen64]byte
	for _, r := range reqs {
		_, _ = w.Write(n[:binary.PutUvarint(n[:], uint64(len(r)))])
		_, _ = w.Write(r)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRequests reads what writeRequests wrote.
func readRequests(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reqs [][]byte
	for len(b) > 0 {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, fmt.Errorf("bench: load: %s is not a request file", path)
		}
		reqs = append(reqs, b[n:n+int(l)])
		b = b[n+int(l):]
	}
	return reqs, nil
}
