package keys

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// watchWorkloadAPI streams the JWT bundles from the agent for as long as the
// plane and the policy want them, reconnecting with backoff whenever the
// stream breaks (the agent restarted, or has no identity for us yet).
func (r *spiffeRunner) watchWorkloadAPI() {
	defer r.p.fetchs.Done()
	log := r.p.log.With("issuer", r.conf.key.label, "socket", r.conf.key.location)
	conn, err := grpc.NewClient(r.conf.target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// gRPC's own reconnect backoff grows to two minutes; a local agent
		// that restarted should be found again within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: spiffeReconnectBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: spiffeReconnectMax},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		r.fail(fmt.Errorf("keys: workload API %s: %w", r.conf.key.location, err), r.p.clock.Now())
		log.Error("keys: cannot reach the Workload API", "error", err)
		return
	}
	defer conn.Close()
	api := workload.NewSpiffeWorkloadAPIClient(conn)
	// The Workload API refuses calls without this header, a guard against
	// SSRF through proxies that forward to the socket.
	ctx := metadata.AppendToOutgoingContext(r.ctx, "workload.spiffe.io", "true")
	failures := 0
	for {
		got, err := r.streamBundles(ctx, api)
		if r.ctx.Err() != nil {
			return
		}
		if got {
			failures = 0
		}
		failures++
		now := r.p.clock.Now()
		r.fail(&fetchError{outcome: outcomeNetwork, url: r.conf.key.location, err: err}, now)
		r.markStale(now)
		switch {
		case failures == 1 && r.cur.Load() == nil:
			log.Warn("keys: Workload API gives no bundle yet; retrying, the issuer's tokens get 503 meanwhile", "error", err)
		case failures == 1:
			log.Warn("keys: Workload API stream ended; reconnecting, serving the last bundle meanwhile", "error", err)
		default:
			log.Debug("keys: Workload API still unreachable", "error", err, "failures", failures)
		}
		d := spiffeReconnectBase
		for i := 1; i < failures && d < spiffeReconnectMax; i++ {
			d *= 2
		}
		d = jitter(min(d, spiffeReconnectMax))
		r.mu.Lock()
		r.retryAt = now.Add(d)
		r.mu.Unlock()
		wake := make(chan struct{})
		t := r.p.clock.AfterFunc(d, func() { close(wake) })
		select {
		case <-wake:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
	}
}

// streamBundles reads one FetchJWTBundles stream until it breaks; got
// reports whether any bundle arrived.
func (r *spiffeRunner) streamBundles(ctx context.Context, api workload.SpiffeWorkloadAPIClient) (got bool, err error) {
	stream, err := api.FetchJWTBundles(ctx, &workload.JWTBundlesRequest{})
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		r.applyWorkloadBundles(resp.GetBundles())
	}
}

// applyWorkloadBundles takes the bundle of our trust domain from an update.
// The update is the agent's whole view: when it has no bundle for the trust
// domain, the trust domain has no keys.
func (r *spiffeRunner) applyWorkloadBundles(bundles map[string][]byte) {
	now := r.p.clock.Now()
	var data []byte
	for id, b := range bundles {
		if td, err := spiffeid.TrustDomainFromString(id); err == nil && td == r.conf.td {
			data = b
			break
		}
	}
	if data == nil {
		r.publish(&spiffeState{set: NewSet(nil), loadedAt: now})
		return
	}
	doc, err := parseSPIFFEBundle(data)
	if err != nil {
		// A malformed update is a broken agent, not a revocation: keep
		// what we have.
		r.fail(&fetchError{outcome: outcomeInvalid, url: r.conf.key.location, err: err}, now)
		r.p.log.Error("keys: Workload API sent a malformed bundle; keeping the last one", "issuer", r.conf.key.label, "error", err)
		return
	}
	r.publish(&spiffeState{set: doc.set, skipped: doc.skipped, loadedAt: now, sum: sha256.Sum256(data)})
}

// markStale starts the clock on the current bundle once the stream is
// gone: it is served for MaxStale more, then the issuer is unavailable.
func (r *spiffeRunner) markStale(now time.Time) {
	st := r.cur.Load()
	if st == nil || !st.staleAt.IsZero() {
		return
	}
	cp := *st
	cp.staleAt = now.Add(r.p.cfg.MaxStale)
	r.cur.CompareAndSwap(st, &cp)
}
