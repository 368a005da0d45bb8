package keys

import (
	"net/http/httptest"
	"testing"
)

// TestRetainStopsRemovedIssuers: after Retain without them, a removed
// jwks_uri issuer and a removed SPIFFE bundle endpoint are never fetched
// again, however far the clock moves past their refresh times, while the
// retained issuer goes on refreshing; the removed ones leave /debug/keys
// and the metrics, and are not counted as evictions.
func TestRetainStopsRemovedIssuers(t *testing.T) {
	p, clk, reg := testPlane(t, Config{})
	keptSrv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	goneSrv := newJWKSServer(t, jwksJSON(t, jwkOf(t, ecKey(), "a", nil)))
	bs := &bundleServer{body: svidBundle(t, 60, svidKey(t, ecKey(), "a"))}
	bs.Server = httptest.NewServer(bs)
	t.Cleanup(bs.Close)

	kept := mustSource(t, p, Spec{Name: "kept", JWKSURI: keptSrv.URL})
	gone := mustSource(t, p, Spec{Name: "gone", JWKSURI: goneSrv.URL})
	mesh := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: bs.URL})
	static := mustSource(t, p, Spec{Name: "static", JWKS: jwksJSON(t, jwkOf(t, ecKey(), "s", nil))})
	p.Prefetch(t.Context(), []Source{kept, gone, mesh})
	p.settle()
	// Past one refresh time, every source refreshes: the timers work.
	clk.Add(DefaultMinRefresh)
	p.settle()
	if k, g, m := keptSrv.hits.Load(), goneSrv.hits.Load(), bs.count(); k != 2 || g != 2 || m < 2 {
		t.Fatalf("before Retain: kept %d, gone %d, mesh %d fetches; want 2, 2, 2 or more", k, g, m)
	}

	// The reload's snapshot holds kept, rebuilt from the same spec as a
	// reload does, and the static issuer.
	again := mustSource(t, p, Spec{Name: "kept", JWKSURI: keptSrv.URL})
	p.Retain([]Source{again, static, nil})
	goneHits, meshHits := goneSrv.hits.Load(), bs.count()
	for i := range 5 {
		clk.Add(DefaultMaxRefresh)
		p.settle()
		if k := keptSrv.hits.Load(); k != int64(3+i) {
			t.Fatalf("after Retain, round %d: kept fetched %d times, want %d", i, k, 3+i)
		}
	}
	if g, m := goneSrv.hits.Load(), bs.count(); g != goneHits || m != meshHits {
		t.Fatalf("removed issuers fetched after Retain: gone %d -> %d, mesh %d -> %d", goneHits, g, meshHits, m)
	}
	// A retained spec keeps its cached set: the rebuilt handle needs no
	// fetch of its own.
	before := keptSrv.hits.Load()
	mustKeys(t, again, "a")
	if n := keptSrv.hits.Load(); n != before {
		t.Fatalf("the retained set was fetched again (%d -> %d)", before, n)
	}

	listed := debugKeys(t, p)
	if len(listed) != 2 || listed["kept"].Issuer == "" || listed["static"].Issuer == "" {
		t.Fatalf("/debug/keys after Retain: %+v", listed)
	}
	for _, name := range []string{"gone", "mesh"} {
		if v := metricValue(t, reg, "extauthz_keys_loaded", "issuer", name); v != -1 {
			t.Errorf("extauthz_keys_loaded{issuer=%q} = %v after Retain dropped it", name, v)
		}
	}
	if v := metricValue(t, reg, "extauthz_keys_cache_evictions_total"); v != 0 {
		t.Errorf("Retain counted %v evictions", v)
	}

	// A Check still on the old snapshot gets the removed issuer's keys
	// fetched once more; that set is dropped at its next refresh time.
	mustKeys(t, gone, "a")
	p.settle()
	goneHits = goneSrv.hits.Load()
	for range 3 {
		clk.Add(DefaultMaxRefresh)
		p.settle()
	}
	if g := goneSrv.hits.Load(); g != goneHits {
		t.Fatalf("a removed issuer looked up once went on refreshing: %d -> %d", goneHits, g)
	}
}
