package keys

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With more issuers than the cache holds, every issuer still resolves: an
// evicted set is fetched again on its next lookup.
func TestLRUBoundsIssuers(t *testing.T) {
	p, _, reg := testPlane(t, Config{CacheSize: 10})
	var mu sync.Mutex
	hits := map[string]int{}
	var total atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ecKey(), strings.TrimPrefix(r.URL.Path, "/"), nil)))
	}))
	t.Cleanup(srv.Close)
	var srcs []Source
	for i := range 50 {
		srcs = append(srcs, mustSource(t, p, Spec{Name: fmt.Sprint("iss", i), JWKSURI: fmt.Sprintf("%s/k%d", srv.URL, i)}))
	}
	for round := 1; round <= 2; round++ {
		for i, src := range srcs {
			checkSigns(t, mustKeys(t, src, fmt.Sprint("k", i))[0], ecKey(), "ES256")
			if n := p.cache.Len(); n > 10 {
				t.Fatalf("cache holds %d issuers", n)
			}
		}
		if n := total.Load(); n != int64(50*round) {
			t.Fatalf("round %d: %d fetches, want %d", round, n, 50*round)
		}
	}
	if got := metricValue(t, reg, "extauthz_keys_cache_evictions_total"); got != 90 {
		t.Fatalf("evictions = %v, want 90", got)
	}
	if got := metricValue(t, reg, "extauthz_keys_cache_entries"); got != 10 {
		t.Fatalf("cache entries = %v", got)
	}
	// Evicted entries keep no refresh timers.
	for _, k := range p.cache.Keys() {
		e, _ := p.cache.Peek(k)
		if e.evicted.Load() {
			t.Fatal("an evicted entry is still cached")
		}
	}
}

// A policy reload that yields the same spec shares the cached set; one that
// changes the issuer's source lets the old set go at its refresh time.
func TestReloadSharesCache(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	spec := Spec{Name: "idp", JWKSURI: f.srv.URL + "/jwks"}
	again := mustSource(t, f.p, spec)
	f.p.Prefetch(f.ctx, []Source{again})
	mustKeys(t, again, "a")
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("reload refetched: %d fetches", n)
	}

	moved := mustSource(t, f.p, Spec{Name: "idp", JWKSURI: f.srv.URL + "/v2/jwks"})
	f.p.Prefetch(f.ctx, []Source{moved})
	if f.p.cache.Len() != 2 {
		t.Fatalf("cache has %d entries", f.p.cache.Len())
	}
	if st := f.p.snapshot(f.clk.Now()); len(st) != 1 || !strings.HasSuffix(st[0].Location, "/v2/jwks") {
		t.Fatalf("debug shows %+v, want the new source only", st)
	}
	f.clk.Add(600 * time.Second)
	f.p.settle()
	if f.p.cache.Len() != 1 {
		t.Fatalf("superseded set still cached: %d entries", f.p.cache.Len())
	}
}

func TestDiscovery(t *testing.T) {
	ec := ecKey()
	var srv *httptest.Server
	var metaHits atomic.Int64
	mux := http.NewServeMux()
	meta := func(iss string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			metaHits.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + iss, "jwks_uri": srv.URL + "/keys"})
		}
	}
	mux.HandleFunc("/oidc/.well-known/openid-configuration", meta("/oidc"))
	mux.HandleFunc("/.well-known/oauth-authorization-server/oauth", meta("/oauth"))
	mux.HandleFunc("/liar/.well-known/openid-configuration", meta("/someone-else"))
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ec, "d", nil)))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	p, clk, _ := testPlane(t, Config{})
	for _, iss := range []string{"/oidc", "/oauth"} {
		src := mustSource(t, p, Spec{Name: iss, Issuer: srv.URL + iss, Discovery: true})
		checkSigns(t, mustKeys(t, src, "d")[0], ec, "ES256")
	}
	// An unknown kid refetches the JWKS, not the metadata.
	src := mustSource(t, p, Spec{Name: "/oidc", Issuer: srv.URL + "/oidc", Discovery: true})
	before := metaHits.Load()
	clk.Add(DefaultRefetchCooldown)
	_, err := src.Keys(t.Context(), "nope")
	wantErr(t, err, ErrUnknownKID)
	if metaHits.Load() != before {
		t.Fatal("an unknown kid re-ran discovery")
	}

	liar := mustSource(t, p, Spec{Name: "liar", Issuer: srv.URL + "/liar", Discovery: true})
	_, err = liar.Keys(t.Context(), "d")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "differs from the configured", "status 404")
}

func TestCAFile(t *testing.T) {
	ec := ecKey()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(jwksJSON(t, jwkOf(t, ec, "tls", nil)))
	}))
	t.Cleanup(srv.Close)
	ca := writeFile(t, t.TempDir(), "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	p, _, _ := testPlane(t, Config{})

	src := mustSource(t, p, Spec{Name: "tls", JWKSURI: srv.URL + "/jwks", CAFile: ca})
	checkSigns(t, mustKeys(t, src, "tls")[0], ec, "ES256")

	untrusted := mustSource(t, p, Spec{Name: "untrusted", JWKSURI: srv.URL + "/jwks"})
	_, err := untrusted.Keys(t.Context(), "tls")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "certificate")
}

func TestOfflineNeverFetches(t *testing.T) {
	p, _, _ := testPlane(t, Config{Offline: true})
	srv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	src := mustSource(t, p, Spec{Name: "idp", JWKSURI: srv.URL})
	p.Prefetch(t.Context(), []Source{src})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	if srv.hits.Load() != 0 {
		t.Fatal("offline plane fetched")
	}
	// Local files are still read and checked.
	_, err = p.Source(Spec{Name: "bad", PEMFile: "testdata/pem/private_key.pem"})
	wantErrContains(t, err, "private key")
}

func TestCloseStopsRefresh(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	if err := f.p.Close(); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(DefaultMaxRefresh)
	f.p.settle()
	if n := f.srv.hits.Load(); n != 1 {
		t.Fatalf("closed plane fetched %d times", n-1)
	}
}

func TestDebugHandler(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	secret := []byte("0123456789abcdef0123456789abcdef-very-secret")
	mustSource(t, f.p, Spec{Name: "hmac", HMACSecretFile: writeFile(t, t.TempDir(), "s", secret)})
	mustSource(t, f.p, Spec{Name: "inline", JWKS: jwksJSON(t, jwkOf(t, ecKey(), "in", nil), fixtureJWK(t, "jwk/oct.json"))})
	f.srv.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	f.clk.Add(600 * time.Second)
	f.p.settle()

	rec := httptest.NewRecorder()
	f.p.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/keys", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", rec.Code, rec.Header())
	}
	body := rec.Body.String()
	for _, leak := range []string{string(secret), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", `"k":`} {
		if strings.Contains(body, leak) {
			t.Fatalf("debug output leaks secret material: %s", body)
		}
	}
	var out struct {
		Issuers []issuerStatus `json:"issuers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Issuers) != 3 {
		t.Fatalf("issuers: %+v", out.Issuers)
	}
	byName := map[string]issuerStatus{}
	for _, s := range out.Issuers {
		byName[s.Issuer] = s
	}
	idp := byName["idp"]
	if idp.Keys[0].KID != "a" || !strings.Contains(idp.LastError, "status 503") || idp.AgeSeconds != 600 {
		t.Fatalf("idp: %+v", idp)
	}
	if in := byName["inline"]; len(in.Skipped) != 1 || in.Skipped[0].Reason != skipSymmetric {
		t.Fatalf("inline: %+v", in)
	}
	if h := byName["hmac"]; h.Keys[0].Type != "HMAC" || h.Keys[0].Bits != 8*len(secret) {
		t.Fatalf("hmac: %+v", h)
	}

	rec = httptest.NewRecorder()
	f.p.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/debug/keys", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestMetrics(t *testing.T) {
	f := newRemoteFixture(t, Config{})
	reg := f.p.cfg.Registerer
	_, _ = f.src.Keys(f.ctx, "nope") // within the cooldown: suppressed
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"extauthz_keys_fetches_total", []string{"issuer", "idp", "outcome", "success"}, 1},
		{"extauthz_keys_fetch_duration_seconds", []string{"issuer", "idp"}, 1},
		{"extauthz_keys_unknown_kid_total", []string{"issuer", "idp"}, 1},
		{"extauthz_keys_refetch_suppressed_total", []string{"issuer", "idp"}, 1},
		{"extauthz_keys_loaded", []string{"issuer", "idp"}, 1},
		{"extauthz_keys_set_age_seconds", []string{"issuer", "idp"}, 0},
		{"extauthz_keys_consecutive_failures", []string{"issuer", "idp"}, 0},
		{"extauthz_keys_cache_entries", nil, 1},
	} {
		if got := metricValue(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Metrics are registered per plane, never globally: a second plane on
	// its own registry works.
	_, _, _ = testPlane(t, Config{})
}
