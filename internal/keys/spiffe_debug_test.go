package keys

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// debugKeys fetches /debug/keys from p's handler, by issuer name.
func debugKeys(t *testing.T, p *Plane) map[string]issuerStatus {
	t.Helper()
	rec := httptest.NewRecorder()
	p.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/keys", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/debug/keys: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Issuers []issuerStatus `json:"issuers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	by := map[string]issuerStatus{}
	for _, s := range out.Issuers {
		by[s.Issuer] = s
	}
	return by
}

// TestSPIFFEInDebugAndMetrics: every kind of SPIFFE source is listed in
// /debug/keys with the fields of the other sources, and has the per-issuer
// gauges the documented alerts use.
func TestSPIFFEInDebugAndMetrics(t *testing.T) {
	p, clk, reg := testPlane(t, Config{})
	a, b, c := ecKey(), newEC(t), newEC(t)
	const td = "example.org"

	file := writeFile(t, t.TempDir(), "bundle.json", svidBundle(t, 0,
		svidKey(t, a, "a"), jwkOf(t, b, "weak", map[string]any{"use": "jwt-svid", "alg": "RS256"})))
	newSPIFFE(t, p, Spec{Name: "mesh-file"}, SPIFFESpec{TrustDomain: td, BundleFile: file})

	bs := &bundleServer{body: svidBundle(t, 60, svidKey(t, b, "b"))}
	bs.Server = httptest.NewServer(bs)
	t.Cleanup(bs.Close)
	newSPIFFE(t, p, Spec{Name: "mesh-endpoint"}, SPIFFESpec{TrustDomain: td, BundleEndpointURL: bs.URL})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(down.Close)
	newSPIFFE(t, p, Spec{Name: "mesh-down"}, SPIFFESpec{TrustDomain: td, BundleEndpointURL: down.URL})
	// settle waits for every tracked goroutine, the Workload API watchers'
	// too, so it comes before they start.
	p.settle()
	loaded := clk.Now()

	api := newFakeWorkloadAPI(t)
	api.set(map[string][]byte{"spiffe://" + td: svidBundle(t, 0, svidKey(t, c, "c"))})
	agent := newSPIFFE(t, p, Spec{Name: "mesh-agent"}, SPIFFESpec{TrustDomain: td, WorkloadAPISocket: api.addr()})
	refusing := newFakeWorkloadAPI(t)
	refusing.mu.Lock()
	refusing.deny = status.Error(codes.PermissionDenied, "no identity issued")
	refusing.mu.Unlock()
	refused := newSPIFFE(t, p, Spec{Name: "mesh-refused"}, SPIFFESpec{TrustDomain: td, WorkloadAPISocket: refusing.addr()})
	// prefetch returns at the first answer, a bundle or a refusal, which
	// is recorded before it returns.
	agent.(*spiffeSource).prefetch(t.Context())
	refused.(*spiffeSource).prefetch(t.Context())

	got := debugKeys(t, p)
	if len(got) != 5 {
		t.Fatalf("/debug/keys lists %d issuers, want the 5 SPIFFE sources: %+v", len(got), got)
	}
	for _, tc := range []struct {
		name, source, location, kid string
		servable                    bool
		failures                    int
		lastError                   string
	}{
		{"mesh-file", kindSPIFFEFile, file, "a", true, 0, ""},
		{"mesh-endpoint", kindSPIFFEEndpoint, bs.URL, "b", true, 0, ""},
		{"mesh-down", kindSPIFFEEndpoint, down.URL, "", false, 1, "status 500"},
		{"mesh-agent", kindSPIFFEWorkload, api.addr(), "c", true, 0, ""},
		{"mesh-refused", kindSPIFFEWorkload, refusing.addr(), "", false, 1, "no identity issued"},
	} {
		s := got[tc.name]
		if s.Source != tc.source || s.Location != tc.location || s.TrustDomain != td || s.Servable != tc.servable ||
			s.ConsecutiveFailures != tc.failures || !strings.Contains(s.LastError, tc.lastError) || (tc.lastError != "" && s.LastErrorAt.IsZero()) {
			t.Errorf("%s: %+v", tc.name, s)
		}
		if tc.kid == "" {
			if len(s.Keys) != 0 || !s.LoadedAt.IsZero() {
				t.Errorf("%s has keys: %+v", tc.name, s)
			}
			continue
		}
		if len(s.Keys) != 1 || s.Keys[0].KID != tc.kid || s.Keys[0].Type != "EC P-256" || s.Keys[0].Bits != 256 {
			t.Errorf("%s keys: %+v", tc.name, s.Keys)
		}
		if !s.LoadedAt.Equal(loaded) || s.AgeSeconds != 0 {
			t.Errorf("%s loaded at %s, age %v; want %s, 0", tc.name, s.LoadedAt, s.AgeSeconds, loaded)
		}
		if v := metricValue(t, reg, "extauthz_keys_set_age_seconds", "issuer", tc.name); v != 0 {
			t.Errorf("%s: extauthz_keys_set_age_seconds %v, want 0", tc.name, v)
		}
	}
	if s := got["mesh-file"]; len(s.Skipped) != 1 || s.Skipped[0].KID != "weak" || s.Skipped[0].Reason != skipAlg {
		t.Errorf("mesh-file skipped: %+v", s.Skipped)
	}
	// The endpoint's next fetch is its refresh hint (less jitter) away; a
	// failing one's is its retry.
	if s := got["mesh-endpoint"]; s.NextRefresh.Before(loaded.Add(54*time.Second)) || s.NextRefresh.After(loaded.Add(60*time.Second)) || s.StaleAt.IsZero() {
		t.Errorf("mesh-endpoint schedule: next %s, stale %s", s.NextRefresh, s.StaleAt)
	}
	if s := got["mesh-down"]; s.NextRefresh.IsZero() || s.NextRefresh.After(loaded.Add(baseBackoff)) {
		t.Errorf("mesh-down next refresh %s, want its retry within %s of %s", s.NextRefresh, baseBackoff, loaded)
	}

	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"extauthz_keys_loaded", []string{"issuer", "mesh-file"}, 1},
		{"extauthz_keys_loaded", []string{"issuer", "mesh-endpoint"}, 1},
		{"extauthz_keys_loaded", []string{"issuer", "mesh-agent"}, 1},
		{"extauthz_keys_loaded", []string{"issuer", "mesh-down"}, 0},
		{"extauthz_keys_consecutive_failures", []string{"issuer", "mesh-down"}, 1},
		{"extauthz_keys_consecutive_failures", []string{"issuer", "mesh-refused"}, 1},
		{"extauthz_keys_consecutive_failures", []string{"issuer", "mesh-agent"}, 0},
		{"extauthz_keys_skipped_keys_total", []string{"issuer", "mesh-file", "reason", skipAlg}, 1},
		{"extauthz_keys_fetches_total", []string{"issuer", "mesh-down", "outcome", outcomeStatus}, 1},
		{"extauthz_keys_fetch_duration_seconds", []string{"issuer", "mesh-endpoint"}, 1},
	} {
		if v := metricValue(t, reg, m.name, m.labels...); v != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, v, m.want)
		}
	}
}

// TestSPIFFEKeyAlertFires: docs/keys.md's alert, set age over two hours
// while refreshes fail, fires for a bundle endpoint as for a JWKS URI.
func TestSPIFFEKeyAlertFires(t *testing.T) {
	p, clk, reg := testPlane(t, Config{})
	bs := &bundleServer{body: svidBundle(t, 60, svidKey(t, ecKey(), "a"))}
	bs.Server = httptest.NewServer(bs)
	t.Cleanup(bs.Close)
	newSPIFFE(t, p, Spec{Name: "partner"}, SPIFFESpec{TrustDomain: "partner.example", BundleEndpointURL: bs.URL})
	p.settle()

	bs.set([]byte("<html>maintenance</html>"))
	clk.Add(2*time.Hour + time.Minute)
	p.settle()
	age := metricValue(t, reg, "extauthz_keys_set_age_seconds", "issuer", "partner")
	failures := metricValue(t, reg, "extauthz_keys_consecutive_failures", "issuer", "partner")
	if !(age > 2*3600 && failures > 0) {
		t.Fatalf("alert does not fire: set age %vs, consecutive failures %v", age, failures)
	}
	// Still within max-stale, so the last bundle serves meanwhile.
	if s := debugKeys(t, p)["partner"]; !s.Servable || !strings.Contains(s.LastError, "not a SPIFFE bundle") {
		t.Fatalf("partner: %+v", s)
	}
	// A fetch that works again clears the failures.
	bs.set(svidBundle(t, 60, svidKey(t, ecKey(), "a")))
	clk.Add(maxBackoff)
	p.settle()
	if v := metricValue(t, reg, "extauthz_keys_consecutive_failures", "issuer", "partner"); v != 0 {
		t.Fatalf("consecutive failures %v after a good fetch", v)
	}
}
