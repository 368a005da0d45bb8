package keys

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// remoteFixture is a plane with one jwks_uri issuer whose set holds key "a",
// already prefetched.
type remoteFixture struct {
	p   *Plane
	clk *fakeClock
	srv *jwksServer
	src Source
	ctx context.Context
}

func newRemoteFixture(t *testing.T, cfg Config) *remoteFixture {
	t.Helper()
	p, clk, _ := testPlane(t, cfg)
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	srv.setHeader("Cache-Control", "public, max-age=600")
	src := mustSource(t, p, Spec{Name: "idp", JWKSURI: srv.URL + "/jwks"})
	p.Prefetch(t.Context(), []Source{src})
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("prefetch made %d fetches", n)
	}
	return &remoteFixture{p: p, clk: clk, srv: srv, src: src, ctx: t.Context()}
}

func TestRemoteCachedLookupDoesNotFetch(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	for range 100 {
		checkSigns(t, mustKeys(t, f.src, "a")[0], ecKey(), "ES256")
	}
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("cached lookups fetched %d times", n)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = f.src.Keys(f.ctx, "a") })
	if allocs != 0 {
		t.Fatalf("cached lookup allocates %v times", allocs)
	}
}

func TestRotation(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	a, b := ecKey(), newEC(t)
	f.srv.set(jwksJSON(t, jwkOf(t, a, "a", nil), jwkOf(t, b, "b", nil)))

	// Right after a fetch, the cooldown holds: the new kid is denied
	// without a fetch.
	_, err := f.src.Keys(f.ctx, "b")
	wantErr(t, err, ErrUnknownKID)
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("fetched during the cooldown: %d", n)
	}
	f.clk.Add(DefaultRefetchCooldown)
	checkSigns(t, mustKeys(t, f.src, "b")[0], b, "ES256")
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("new kid accepted after %d fetches, want exactly one refetch", n-1)
	}
	checkSigns(t, mustKeys(t, f.src, "a")[0], a, "ES256")

	// The old key works until the issuer removes it and we refresh.
	f.srv.set(jwksJSON(t, jwkOf(t, b, "b", nil)))
	mustKeys(t, f.src, "a")
	f.clk.Add(600 * time.Second) // max-age
	f.p.settle()
	if n := f.srv.hits.Load(); n != 3 {
		t.Fatalf("refresh made %d fetches", n-2)
	}
	_, err = f.src.Keys(f.ctx, "a")
	wantErr(t, err, ErrUnknownKID)
	mustKeys(t, f.src, "b")
}

func TestUnknownKIDFlood(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	f.clk.Add(DefaultRefetchCooldown)
	flood := func() {
		var wg sync.WaitGroup
		for g := range 100 {
			wg.Go(func() {
				for i := range 100 {
					if _, err := f.src.Keys(f.ctx, fmt.Sprintf("random-%d-%d", g, i)); err == nil {
						t.Error("random kid accepted")
					}
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("10,000 unknown kids caused %d fetches, want 1", n-1)
	}
	f.clk.Add(DefaultRefetchCooldown / 2)
	flood()
	if n := f.srv.hits.Load(); n != 2 {
		t.Fatalf("a flood within the cooldown fetched %d times", n-2)
	}
	f.clk.Add(DefaultRefetchCooldown / 2)
	flood()
	if n := f.srv.hits.Load(); n != 3 {
		t.Fatalf("next cooldown: %d fetches, want 1", n-2)
	}
	mustKeys(t, f.src, "a")
}

// At refresh time, concurrent lookups and the refresh timer share one fetch,
// and none of them waits for it.
func TestConcurrentLookupsAtRefresh(t *testing.T) {
	for _, timer := range []bool{true, false} {
		t.Run(fmt.Sprintf("timer=%v", timer), func(t *testing.T) {
			f := newRemoteFixture(t, Config{})
			release := make(chan struct{})
			f.srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
				<-release
				_, _ = w.Write(jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
			})
			if !timer {
				// The lookups find the set due before the timer fires.
				f.p.entry(f.src.(*remoteSource).conf).stop()
			}
			f.clk.Add(600 * time.Second)
			var wg sync.WaitGroup
			for range 1000 {
				wg.Go(func() { mustKeys(t, f.src, "a") })
			}
			wg.Wait()
			close(release)
			f.p.settle()
			if n := f.srv.hits.Load(); n != 2 {
				t.Fatalf("1,000 lookups at refresh time caused %d fetches, want 1", n-1)
			}
		})
	}
}

func TestSameOriginRedirectFollowed(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	})
	src := mustSource(t, p, Spec{Name: "moved", JWKSURI: srv.URL + "/old"})
	mustKeys(t, src, "a")
}

func TestRefreshInterval(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"max-age=600", 600 * time.Second},
		{"max-age=5", DefaultMinRefresh},
		{"no-store", DefaultMinRefresh},
		{"", DefaultMinRefresh},
		{"public, max-age=31536000", DefaultMaxRefresh},
		{"max-age=bogus", DefaultMinRefresh},
	} {
		p, _, _ := testPlane(t, Config{})
		srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
		if tc.header != "" {
			srv.setHeader("Cache-Control", tc.header)
		}
		src := mustSource(t, p, Spec{Name: "i", JWKSURI: srv.URL})
		p.Prefetch(t.Context(), []Source{src})
		st := p.entry(src.(*remoteSource).conf).state.Load()
		if st.interval != tc.want {
			t.Errorf("Cache-Control %q: interval %s, want %s", tc.header, st.interval, tc.want)
		}
		if d := st.refreshAt.Sub(st.fetchedAt); d > tc.want || d < tc.want*9/10 {
			t.Errorf("Cache-Control %q: refresh after %s", tc.header, d)
		}
	}
}

func TestETagRevalidation(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	var conditional int
	body := jwksJSON(t, jwkOf(t, ecKey(), "a", nil))
	f.srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	})
	f.clk.Add(600 * time.Second)
	f.p.settle()
	f.clk.Add(DefaultMinRefresh)
	f.p.settle()
	if conditional != 1 {
		t.Fatalf("%d conditional fetches, want 1", conditional)
	}
	mustKeys(t, f.src, "a")
	st := f.p.snapshot(f.clk.Now())[0]
	if st.AgeSeconds != 0 {
		t.Fatalf("a 304 did not renew the set: age %v", st.AgeSeconds)
	}
}

func BenchmarkKeysCached(b *testing.B) {
	p, err := NewPlane(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	srv := newJWKSServerB(b, jwksJSON(b, jwkOf(b, ecKey(), "a", nil)))
	src, err := p.Source(Spec{Name: "idp", JWKSURI: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	p.Prefetch(b.Context(), []Source{src})
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := src.Keys(ctx, "a"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPrefetchBoundedConcurrency(t *testing.T) {
	p, _, _ := testPlane(t, Config{PrefetchConcurrency: 3})
	var cur, peak atomic.Int64
	gate := make(chan struct{})
	srv := newJWKSServer(t, nil)
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-gate
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	})
	var srcs []Source
	for i := range 12 {
		srcs = append(srcs, mustSource(t, p, Spec{Name: fmt.Sprint(i), JWKSURI: fmt.Sprintf("%s/%d", srv.URL, i)}))
	}
	srcs = append(srcs, mustSource(t, p, Spec{Name: "static", JWKS: jwksJSON(t, jwkOf(t, ecKey(), "s", nil))}))
	done := make(chan struct{})
	go func() { p.Prefetch(t.Context(), srcs); close(done) }()
	for srv.hits.Load() < 3 {
		runtime.Gosched()
	}
	close(gate)
	<-done
	if peak.Load() > 3 {
		t.Fatalf("%d concurrent prefetches, limit 3", peak.Load())
	}
	for _, src := range srcs[:12] {
		mustKeys(t, src, "a")
	}
	if n := srv.hits.Load(); n != 12 {
		t.Fatalf("%d fetches", n)
	}
}

func TestRetryAfter(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	srv := newJWKSServer(t, nil)
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadGateway) })
	src := mustSource(t, p, Spec{Name: "down", JWKSURI: srv.URL})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "keys: issuer down: key set unavailable: fetch", "status 502")
	if d, ok := RetryAfter(err); !ok || d < time.Second || d > 2*time.Second {
		t.Fatalf("RetryAfter = %s, %v", d, ok)
	}
	if _, ok := RetryAfter(ErrUnknownKID); ok {
		t.Fatal("RetryAfter of a non-503 error")
	}
}
