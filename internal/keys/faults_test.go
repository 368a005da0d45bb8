package keys

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every way a JWKS server can fail keeps the old keys until max-stale, then
// makes the issuer unavailable; no lookup waits longer than FetchWait.
func TestFetchFaults(t *testing.T) {
	const maxStale = time.Hour
	other := newJWKSServer(t, jwksJSON(t, jwkOf(t, newEC(t), "a", nil)))
	big := strings.Repeat(" ", 1<<20)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		hang    bool
		outcome string
	}{
		{"status 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, false, outcomeStatus},
		{"html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>Sign in</body></html>"))
		}, false, outcomeInvalid},
		{"invalid json", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys": [{"kty":`)) }, false, outcomeInvalid},
		{"50 MiB streamed", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys": [`))
			for range 50 {
				if _, err := w.Write([]byte(big)); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}, false, outcomeTooLarge},
		{"50 MiB declared", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(50<<20))
			_, _ = w.Write([]byte(big))
		}, false, outcomeTooLarge},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/jwks", http.StatusFound)
		}, false, outcomeRedirect},
		{"redirect to another port", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/jwks", http.StatusMovedPermanently)
		}, false, outcomeRedirect},
		{"all keys unusable", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(jwksJSON(t, fixtureJWK(t, "jwk/weak_rsa.json")))
		}, false, outcomeInvalid},
		{"hanging", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, true, outcomeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRemoteFixture(t, Config{MaxStale: maxStale})
			reg := f.p.cfg.Registerer
			f.srv.setHandler(tc.handler)
			// fail lets the fetch now in flight fail.
			fail := func() {
				if tc.hang {
					f.clk.WaitTimer(t, DefaultFetchTimeout)
					f.clk.Add(DefaultFetchTimeout)
				}
				f.p.settle()
			}

			f.clk.Add(600 * time.Second) // refresh due
			mustKeys(t, f.src, "a")      // never waits, even with the fetch hanging
			fail()
			mustKeys(t, f.src, "a")

			// Retries with backoff keep failing; the old set serves until
			// its refresh time plus max-stale.
			for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
				f.clk.Add(d)
				fail()
				mustKeys(t, f.src, "a")
			}
			if got := metricValue(t, reg, "extauthz_keys_fetches_total", "issuer", "idp", "outcome", tc.outcome); got != 4 {
				t.Fatalf("fetches{outcome=%s} = %v, want 4", tc.outcome, got)
			}
			st := f.p.snapshot(f.clk.Now())[0]
			if st.LastError == "" || st.ConsecutiveFailures != 4 || !st.Servable {
				t.Fatalf("debug status: %+v", st)
			}
			if other.hits.Load() != 0 {
				t.Fatal("the redirect to another host was followed")
			}

			f.clk.Add(maxStale - 7*time.Second + time.Second)
			// The retry timer fired and its fetch is in flight or done.
			if tc.hang {
				start := f.clk.Now()
				got := make(chan error, 1)
				go func() { _, err := f.src.Keys(f.ctx, "a"); got <- err }()
				f.clk.WaitTimer(t, DefaultFetchWait)
				f.clk.Add(DefaultFetchWait)
				wantErr(t, <-got, ErrUnavailable)
				if waited := f.clk.Now().Sub(start); waited > DefaultFetchWait {
					t.Fatalf("lookup waited %s", waited)
				}
				f.clk.Add(DefaultFetchTimeout - DefaultFetchWait)
				f.p.settle()
			} else {
				f.p.settle()
				start := f.clk.Now()
				_, err := f.src.Keys(f.ctx, "a")
				wantErr(t, err, ErrUnavailable)
				wantErrContains(t, err, "keys: issuer idp: key set unavailable")
				if f.clk.Now() != start {
					t.Fatal("lookup waited on the clock")
				}
			}

			// The server recovers; the next retry restores the issuer.
			f.srv.setHandler(nil)
			f.clk.Add(maxBackoff)
			f.p.settle()
			mustKeys(t, f.src, "a")
		})
	}
}

// With no good set ever, a lookup waits for the first fetch at most
// FetchWait, then gets ErrUnavailable while the fetch goes on.
func TestFetchWaitBoundsFirstLookup(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	release := make(chan struct{})
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	})
	src := mustSource(t, p, Spec{Name: "slow", JWKSURI: srv.URL})
	start := clk.Now()
	got := make(chan error, 1)
	go func() { _, err := src.Keys(t.Context(), "a"); got <- err }()
	clk.WaitTimer(t, DefaultFetchWait)
	clk.Add(DefaultFetchWait)
	err := <-got
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "not fetched yet")
	if w := clk.Now().Sub(start); w != DefaultFetchWait {
		t.Fatalf("waited %s", w)
	}
	// The slow fetch finishes in the background and serves the next Check.
	close(release)
	p.settle()
	mustKeys(t, src, "a")
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}
