package e2e_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// hungRedis is a TCP server on a free loopback port that accepts
// connections and never answers, as a hung Redis does: every replay claim
// against it takes the whole --replay-timeout.
func hungRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "redis://" + ln.Addr().String() + "/0"
}

// drainCall is one Check of the load.
type drainCall struct {
	slow       bool
	start, end time.Time
	resp       *authv3.CheckResponse
	err        error
}

// TestOpsSIGTERMUnderLoad: SIGTERM while Checks stream in over several
// connections. Every Check that reached the server is answered with a
// proper CheckResponse (none is cut off), health turns NOT_SERVING, and the
// process exits 0 well within the grace period. Checks started after the
// server stopped accepting may fail, but only with Unavailable.
//
// To have Checks certainly in flight at the signal, client assertions are
// slowed down: the replay store is a Redis that never answers, so each
// claim takes --replay-timeout and then (with --replay-fail-open) allows.
// Fast Checks (no rule matched) run beside them.
func TestOpsSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		replayTimeout = 400 * time.Millisecond
		grace         = 8 * time.Second
		conns         = 3
		slowPerConn   = 2
		fastPerConn   = 1
		maxPerWorker  = 5000
		// A Check started this long before the signal has surely been
		// written to its connection: it must be answered.
		margin = 100 * time.Millisecond
		// The signal is sent once enough slow Checks have been in flight
		// for this long.
		inFlightFor = 150 * time.Millisecond
	)
	idp := newOpsIdP(t)
	srv := startServer(t, idp.policyFile(t),
		"--replay-store", hungRedis(t), "--replay-timeout", replayTimeout.String(), "--replay-fail-open",
		"--shutdown-grace", grace.String(), "--decision-log-sample", "0")
	// Claims never reach the store, so one assertion serves every slow
	// Check.
	slowReq := tokenRequest(idp.assertion(t, nil))
	fastReq := plainRequest("other.example.com", "/")

	// A health watch on its own connection, to see NOT_SERVING during the
	// drain.
	watchCtx, stopWatch := context.WithTimeout(context.Background(), 2*grace)
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(dial(t, srv)).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Watch: %v", err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before SIGTERM = %v, %v; want SERVING", st.GetStatus(), err)
	}

	var (
		done       = make(chan struct{})
		wg         sync.WaitGroup
		slowDone   atomic.Int64
		slowWorker = make([]atomic.Int64, conns*slowPerConn) // start of the Check in flight, 0 when idle
		results    = make([][]drainCall, conns*(slowPerConn+fastPerConn))
	)
	worker := func(idx int, c authv3.AuthorizationClient, slow bool, inflight *atomic.Int64) {
		defer wg.Done()
		req := fastReq
		if slow {
			req = slowReq
		}
		for range maxPerWorker {
			select {
			case <-done:
				return
			default:
			}
			call := drainCall{slow: slow, start: time.Now()}
			if inflight != nil {
				inflight.Store(call.start.UnixNano())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*grace)
			call.resp, call.err = c.Check(ctx, req)
			cancel()
			call.end = time.Now()
			if inflight != nil {
				inflight.Store(0)
			}
			if slow && call.err == nil {
				slowDone.Add(1)
			}
			results[idx] = append(results[idx], call)
			if call.err != nil {
				// The server is going (or something broke before the
				// signal, which the analysis reports): stop this worker.
				return
			}
		}
	}
	idx, slowIdx := 0, 0
	for range conns {
		c := authv3.NewAuthorizationClient(dial(t, srv))
		for range slowPerConn {
			wg.Add(1)
			go worker(idx, c, true, &slowWorker[slowIdx])
			idx++
			slowIdx++
		}
		for range fastPerConn {
			wg.Add(1)
			go worker(idx, c, false, nil)
			idx++
		}
	}
	stopLoad := func() {
		select {
		case <-done:
		default:
			close(done)
		}
		wg.Wait()
	}
	defer stopLoad()

	// Wait (bounded) until a slow round has completed and at least half
	// the slow workers have a Check in flight for inFlightFor.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	for {
		now := time.Now()
		ready := 0
		for i := range slowWorker {
			if s := slowWorker[i].Load(); s != 0 && now.Sub(time.Unix(0, s)) >= inFlightFor {
				ready++
			}
		}
		if slowDone.Load() > 0 && 2*ready >= len(slowWorker) {
			break
		}
		if now.After(deadline) {
			tick.Stop()
			t.Fatalf("load never settled: %d slow Checks done, %d in flight for %s; log:\n%s", slowDone.Load(), ready, inFlightFor, srv.Logs)
		}
		<-tick.C
	}
	tick.Stop()

	sigAt := time.Now()
	exited := make(chan int, 1)
	go func() { exited <- srv.Stop(t) }() // sends SIGTERM, waits for the exit

	// Health turns NOT_SERVING before the in-flight Checks finish. The
	// watch is itself a stream the drain waits for, so while it is open the
	// admin server is still up, and /readyz must say not ready.
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after SIGTERM = %v, %v; want NOT_SERVING", st.GetStatus(), err)
	} else if code, _ := readyz(t, srv); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain = %d, want 503", code)
	}
	stopWatch()

	var code int
	select {
	case code = <-exited:
	case <-time.After(grace + 20*time.Second):
		t.Fatal("test bug: stop did not return")
	}
	exitAfter := time.Since(sigAt)
	stopLoad()

	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	// The slowest in-flight Check needs replayTimeout; the drain must not
	// have waited for the grace period. (A -race binary sleeps 1s at exit.)
	if exitAfter >= grace {
		t.Errorf("exited %s after SIGTERM, want within the %s grace period", exitAfter.Round(time.Millisecond), grace)
	}
	logs := srv.Logs.String()
	if strings.Contains(logs, "shutdown grace elapsed") {
		t.Errorf("the drain ran out of grace; in-flight Checks were cancelled")
	}

	var total, answered, inFlight, inFlightSlow, refused int
	for _, calls := range results {
		for _, c := range calls {
			total++
			if c.err != nil {
				switch {
				case c.end.Before(sigAt):
					t.Errorf("Check failed before SIGTERM: %v", c.err)
				case c.start.Before(sigAt.Add(-margin)):
					t.Errorf("Check started %s before SIGTERM was cut off: %v", sigAt.Sub(c.start).Round(time.Millisecond), c.err)
				case status.Code(c.err) != codes.Unavailable:
					t.Errorf("Check started %s after SIGTERM failed with %v, want only Unavailable", c.start.Sub(sigAt).Round(time.Millisecond), c.err)
				default:
					refused++
				}
				continue
			}
			answered++
			if c.start.Before(sigAt) && c.end.After(sigAt) {
				inFlight++
				if c.slow {
					inFlightSlow++
				}
			}
			checkDrainResponse(t, c)
		}
	}
	t.Logf("%d Checks: %d answered (%d in flight at SIGTERM, %d of them slow), %d refused after SIGTERM; exit %s after SIGTERM",
		total, answered, inFlight, inFlightSlow, refused, exitAfter.Round(time.Millisecond))
	if inFlightSlow == 0 {
		t.Errorf("no slow Check was in flight at SIGTERM: the test proved nothing")
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}

// checkDrainResponse checks that an answered Check got the decision its
// kind always gets.
func checkDrainResponse(t *testing.T, c drainCall) {
	t.Helper()
	f := c.resp.GetDynamicMetadata().GetFields()
	got := [3]string{f["decision"].GetStringValue(), f["rule"].GetStringValue(), f["reason"].GetStringValue()}
	want, code := [3]string{"deny", "", "no_rule_matched"}, codes.PermissionDenied
	if c.slow {
		want, code = [3]string{"allow", "token-endpoint", "replay_store_unavailable"}, codes.OK
	}
	if got != want || codes.Code(c.resp.GetStatus().GetCode()) != code {
		t.Errorf("Check (slow %v) answered %v %q, want %v %q", c.slow, codes.Code(c.resp.GetStatus().GetCode()), got, code, want)
	}
}
