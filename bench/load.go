package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// Target is one ext_authz server under load: a few HTTP/2 connections to
// it, and the process whose CPU is measured.
type Target struct {
	Name string
	Addr string
	// HTTPAddr is extauthz's admin address, "" for other servers.
	HTTPAddr string
	Proc     *Process
	// Method is the gRPC method called; "" is ext_authz's Check.
	Method string
	conns  []*grpc.ClientConn
}

// Dial opens n connections to the target.
func (t *Target) Dial(n int) error {
	for range n {
		// Each ClientConn is one HTTP/2 connection; WithNoProxy keeps a
		// proxy variable from taking loopback traffic elsewhere.
		cc, err := grpc.NewClient(t.Addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithNoProxy(),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<22),
		)
		if err != nil {
			return fmt.Errorf("bench: dial %s: %w", t.Name, err)
		}
		t.conns = append(t.conns, cc)
	}
	return nil
}

// Close closes the connections.
func (t *Target) Close() {
	for _, cc := range t.conns {
		cc.Close()
	}
	t.conns = nil
}

// cpu is the server's CPU time so far; 0 for a server in this process.
func (t *Target) cpu() (time.Duration, error) {
	if t.Proc == nil {
		return 0, nil
	}
	return t.Proc.CPU()
}

// Check sends one pre-marshalled CheckRequest and returns its status code.
func (t *Target) Check(ctx context.Context, conn int, req []byte) (int32, error) {
	st, err := t.check(ctx, conn, req)
	return st.code, err
}

func (t *Target) check(ctx context.Context, conn int, req []byte) (checkStatus, error) {
	var st checkStatus
	method := t.Method
	if method == "" {
		method = checkMethod
	}
	err := t.conns[conn%len(t.conns)].Invoke(ctx, method, &rawRequest{b: req}, &st)
	return st, err
}

// Source hands out requests. Next returns false when it has run out (a
// single-use pool of client assertions), which ends the run early.
type Source interface {
	Next() ([]byte, bool)
}

// Cycle serves its requests round-robin, forever; its position carries over
// from one run to the next, so distinct tokens stay distinct across rounds.
type Cycle struct {
	reqs [][]byte
	pos  atomic.Uint64
}

// NewCycle returns a Cycle over reqs.
func NewCycle(reqs [][]byte) *Cycle { return &Cycle{reqs: reqs} }

// taken is how many requests have been taken, counting every lap.
func (c *Cycle) taken() uint64 { return c.pos.Load() }

// Next implements Source.
func (c *Cycle) Next() ([]byte, bool) {
	i := c.pos.Add(1) - 1
	return c.reqs[i%uint64(len(c.reqs))], true
}

// Len is the number of distinct requests.
func (c *Cycle) Len() int { return len(c.reqs) }

// OneShot serves each request once.
type OneShot struct {
	reqs [][]byte
	pos  atomic.Uint64
}

// NewOneShot returns a OneShot over reqs.
func NewOneShot(reqs [][]byte) *OneShot { return &OneShot{reqs: reqs} }

// Next implements Source.
func (o *OneShot) Next() ([]byte, bool) {
	i := o.pos.Add(1) - 1
	if i >= uint64(len(o.reqs)) {
		return nil, false
	}
	return o.reqs[i], true
}

// taken is how far the requests have been taken, past the end once they
// ran out.
func (o *OneShot) taken() uint64 { return min(o.pos.Load(), uint64(len(o.reqs))) }

// Left is how many requests remain.
func (o *OneShot) Left() int {
	return max(0, len(o.reqs)-int(o.pos.Load()))
}

// Result is one timed run against one target.
type Result struct {
	Checks int
	Denied int // responses other than OK
	// DeniedHTTP counts the denies by the HTTP status they carry.
	DeniedHTTP map[int32]int
	Errors     int // gRPC errors
	Elapsed    time.Duration
	ServerCP   time.Duration // server CPU during the run
	LoadCPU    time.Duration // load generator CPU during the run
	Lat        []time.Duration
	// Exhausted is set when a single-use source ran out before the end.
	Exhausted bool
	// Rate0 is the rate asked for, in an open-loop run.
	Rate0 float64
}

// Rate is checks per second.
func (r *Result) Rate() float64 { return float64(r.Checks) / r.Elapsed.Seconds() }

// CPUPerCheck is server CPU per Check.
func (r *Result) CPUPerCheck() time.Duration {
	if r.Checks == 0 {
		return 0
	}
	return r.ServerCP / time.Duration(r.Checks)
}

// LoadCPUPerCheck is load-generator CPU per Check.
func (r *Result) LoadCPUPerCheck() time.Duration {
	if r.Checks == 0 {
		return 0
	}
	return r.LoadCPU / time.Duration(r.Checks)
}

// Percentile returns the p-th percentile (0–100) of the latencies.
func (r *Result) Percentile(p float64) time.Duration {
	return percentile(r.Lat, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1)*p/100 + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

type workerOut struct {
	n, denied, errs int
	deniedHTTP      map[int32]int
	lat             []time.Duration
	exhausted       bool
}

func (o *workerOut) deny(st checkStatus) {
	o.denied++
	if o.deniedHTTP == nil {
		o.deniedHTTP = map[int32]int{}
	}
	o.deniedHTTP[st.http]++
}

// ClosedLoop keeps concurrency requests in flight for d, each worker
// sending its next request when the previous answer arrives.
func ClosedLoop(ctx context.Context, t *Target, src Source, concurrency int, d time.Duration) (*Result, error) {
	outs := make([]workerOut, concurrency)
	cpu0, err := t.cpu()
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			o := &outs[w]
			o.lat = make([]time.Duration, 0, 1<<14)
			for {
				req, ok := src.Next()
				if !ok {
					o.exhausted = true
					return
				}
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				st, err := t.check(ctx, w, req)
				o.lat = append(o.lat, time.Since(t0))
				switch {
				case err != nil:
					o.errs++
					if ctx.Err() != nil {
						return
					}
				case st.code != 0:
					o.deny(st)
				}
				o.n++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := t.cpu()
	if err != nil {
		return nil, err
	}
	return collect(outs, elapsed, cpu1-cpu0, selfCPU()-self0), nil
}

// FixedRate sends rate requests per second for d, open loop: each request
// has a scheduled send time, and its latency counts from then, so a server
// that falls behind is charged for the queue it causes (no coordinated
// omission). Up to maxInFlight requests are outstanding.
func FixedRate(ctx context.Context, t *Target, src Source, rate float64, maxInFlight int, d time.Duration) (*Result, error) {
	outs := make([]workerOut, maxInFlight)
	sched := make(chan time.Time, maxInFlight*4)
	cpu0, err := t.cpu()
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range maxInFlight {
		wg.Go(func() {
			o := &outs[w]
			o.lat = make([]time.Duration, 0, 1<<12)
			for at := range sched {
				req, ok := src.Next()
				if !ok {
					o.exhausted = true
					continue
				}
				st, err := t.check(ctx, w, req)
				o.lat = append(o.lat, time.Since(at))
				switch {
				case err != nil:
					o.errs++
				case st.code != 0:
					o.deny(st)
				}
				o.n++
			}
		})
	}
	// The pacer releases every request whose time has come, then sleeps a
	// little; requests keep their own scheduled times, so the pacer's
	// granularity does not show in the latencies.
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	sent := 0
	for sent < total && ctx.Err() == nil {
		now := time.Now()
		due := min(total, int(now.Sub(start)/interval)+1)
		for ; sent < due; sent++ {
			sched <- start.Add(time.Duration(sent) * interval)
		}
		time.Sleep(min(interval, 200*time.Microsecond))
	}
	close(sched)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := t.cpu()
	if err != nil {
		return nil, err
	}
	return collect(outs, elapsed, cpu1-cpu0, selfCPU()-self0), nil
}

func collect(outs []workerOut, elapsed, server, self time.Duration) *Result {
	r := &Result{Elapsed: elapsed, ServerCP: server, LoadCPU: self}
	n := 0
	for _, o := range outs {
		n += len(o.lat)
	}
	r.Lat = make([]time.Duration, 0, n)
	for _, o := range outs {
		r.Checks += o.n
		r.Denied += o.denied
		for k, v := range o.deniedHTTP {
			if r.DeniedHTTP == nil {
				r.DeniedHTTP = map[int32]int{}
			}
			r.DeniedHTTP[k] += v
		}
		r.Errors += o.errs
		r.Exhausted = r.Exhausted || o.exhausted
		r.Lat = append(r.Lat, o.lat...)
	}
	slices.Sort(r.Lat)
	return r
}
