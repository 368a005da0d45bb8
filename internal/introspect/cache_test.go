package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCachePositive: an active answer is reused until cache_ttl, then
// asked again; an exp sooner than cache_ttl ends it sooner.
func TestCachePositive(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, map[string]any{"exp": now.Add(time.Hour).Unix()}))
	c := newClient(t, testSpec(t, ep.srv.URL))
	for _, at := range []time.Duration{0, time.Second, 59 * time.Second} {
		if _, err := lookup(t, c, "opaque-1", now.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if n := ep.hits.Load(); n != 1 {
		t.Fatalf("within cache_ttl: %d requests, want 1", n)
	}
	if _, err := lookup(t, c, "opaque-1", now.Add(60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := ep.hits.Load(); n != 2 {
		t.Fatalf("at cache_ttl: %d requests, want 2", n)
	}

	ep.set(activeAnswer(t, map[string]any{"exp": now.Add(10 * time.Second).Unix()}))
	if _, err := lookup(t, c, "opaque-2", now); err != nil {
		t.Fatal(err)
	}
	if _, err := lookup(t, c, "opaque-2", now.Add(9*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := ep.hits.Load(); n != 3 {
		t.Fatalf("before exp: %d requests, want 3", n)
	}
	// Past exp the entry is gone: the endpoint is asked (and, the token
	// being expired, now says inactive).
	ep.set(inactiveAnswer)
	if _, err := lookup(t, c, "opaque-2", now.Add(10*time.Second)); !errors.Is(err, ErrInactive) {
		t.Fatalf("at exp: %v, want ErrInactive from a new request", err)
	}
	if n := ep.hits.Load(); n != 4 {
		t.Fatalf("at exp: %d requests, want 4", n)
	}
}

// TestCacheNegative: an inactive answer is reused for negative_cache_ttl
// only, and a token that turns active after it is let in.
func TestCacheNegative(t *testing.T) {
	ep := newEndpoint(t, inactiveAnswer)
	c := newClient(t, testSpec(t, ep.srv.URL))
	for _, at := range []time.Duration{0, 9 * time.Second} {
		if _, err := lookup(t, c, "opaque-1", now.Add(at)); !errors.Is(err, ErrInactive) {
			t.Fatalf("at +%s: %v, want ErrInactive", at, err)
		}
	}
	if n := ep.hits.Load(); n != 1 {
		t.Fatalf("within negative_cache_ttl: %d requests, want 1", n)
	}
	ep.set(activeAnswer(t, nil))
	if _, err := lookup(t, c, "opaque-1", now.Add(10*time.Second)); err != nil {
		t.Fatalf("after negative_cache_ttl: %v", err)
	}
	if n := ep.hits.Load(); n != 2 {
		t.Fatalf("after negative_cache_ttl: %d requests, want 2", n)
	}
}

// TestFaultsNotCached: a failed lookup is not remembered; the next one
// asks again and an answer from a recovered endpoint counts.
func TestFaultsNotCached(t *testing.T) {
	ep := newEndpoint(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	c := newClient(t, testSpec(t, ep.srv.URL))
	if _, err := lookup(t, c, "opaque-1", now); !isUnavailable(err) {
		t.Fatalf("500: %v", err)
	}
	ep.set(activeAnswer(t, nil))
	if _, err := lookup(t, c, "opaque-1", now); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if c.Len() != 1 {
		t.Errorf("cache holds %d entries, want 1", c.Len())
	}
}

// TestCacheKeyIsDigest: the cache holds the SHA-256 of the token, never the
// token.
func TestCacheKeyIsDigest(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	c := newClient(t, testSpec(t, ep.srv.URL))
	if _, err := lookup(t, c, "opaque-secret-token", now); err != nil {
		t.Fatal(err)
	}
	keys := c.cache.lru.Keys()
	if len(keys) != 1 || keys[0] != sha256.Sum256([]byte("opaque-secret-token")) {
		t.Fatalf("cache keys = %x", keys)
	}
	for _, e := range c.cache.lru.Values() {
		for k, v := range e.tok.Claims() {
			if s, _ := v.(string); strings.Contains(s, "opaque-secret-token") || k == "token" {
				t.Fatalf("cached claims hold the token: %v", e.tok.Claims())
			}
		}
	}
}

// TestSingleFlight: N concurrent lookups of one token make one request;
// every caller gets its answer.
func TestSingleFlight(t *testing.T) {
	const n = 20
	release := make(chan struct{})
	arrived := make(chan struct{}, n)
	ep := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		activeAnswer(t, map[string]any{"sub": "user-1"})(w, r)
	})
	c := newClient(t, testSpec(t, ep.srv.URL))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	subs := make(chan string, n)
	call := func() {
		defer wg.Done()
		tok, err := c.Introspect(context.Background(), "opaque-1", now)
		if err != nil {
			errs <- err
			return
		}
		subs <- tok.Subject
	}
	wg.Add(1)
	go call()
	<-arrived
	for range n - 1 {
		wg.Add(1)
		go call()
	}
	// The followers must have joined the flight before it lands, or they
	// would find the answer in the cache and prove nothing.
	sum := sha256.Sum256([]byte("opaque-1"))
	for c.flight.waiting(sum) < n-1 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	close(subs)
	for err := range errs {
		t.Errorf("lookup: %v", err)
	}
	got := 0
	for s := range subs {
		if s != "user-1" {
			t.Errorf("sub = %q", s)
		}
		got++
	}
	if got != n || ep.hits.Load() != 1 {
		t.Fatalf("%d answers from %d requests, want %d from 1", got, ep.hits.Load(), n)
	}
}

// TestConcurrencyBound: with max_concurrency requests held by a slow
// endpoint, one more lookup fails closed (ErrUnavailable) without the
// endpoint ever seeing more than the limit; the held ones still complete.
func TestConcurrencyBound(t *testing.T) {
	const limit = 2
	release := make(chan struct{})
	arrived := make(chan struct{}, limit+1)
	ep := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		activeAnswer(t, nil)(w, r)
	})
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) { s.MaxConcurrency = limit }))
	var wg sync.WaitGroup
	held := make(chan error, limit)
	for i := range limit {
		wg.Go(func() {
			_, err := c.Introspect(context.Background(), "held-"+string(rune('a'+i)), now)
			held <- err
		})
	}
	for range limit {
		<-arrived
	}
	// The Check's own deadline bounds its wait for a slot.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Introspect(ctx, "one-more", now)
	if !isUnavailable(err) || !strings.Contains(err.Error(), "max_concurrency") {
		t.Fatalf("lookup over the limit: %v, want ErrUnavailable naming max_concurrency", err)
	}
	close(release)
	wg.Wait()
	close(held)
	for err := range held {
		if err != nil {
			t.Errorf("held lookup: %v", err)
		}
	}
	if m, n := ep.maxSeen.Load(), ep.hits.Load(); m != limit || n != limit {
		t.Fatalf("endpoint saw %d requests, %d at once; want %d, %d", n, m, limit, limit)
	}
}

// TestConcurrencyTimeout: a lookup that cannot get a slot within the
// client's timeout fails closed, even when its Check has no deadline: it
// never waits past the timeout for a slot.
func TestConcurrencyTimeout(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	ep := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		activeAnswer(t, nil)(w, r)
	})
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) { s.MaxConcurrency, s.Timeout = 1, 150*time.Millisecond }))
	done := make(chan error, 1)
	go func() {
		_, err := c.Introspect(context.Background(), "held", now)
		done <- err
	}()
	<-arrived
	_, err := c.Introspect(context.Background(), "one-more", now)
	close(release)
	if !isUnavailable(err) {
		t.Fatalf("lookup over the limit: %v, want ErrUnavailable", err)
	}
	// The held request times out too, at about the same moment: which of
	// the two failed first is timing, so only the fail-closed outcome is
	// asserted here (TestConcurrencyBound asserts the bound itself).
	<-done
}
