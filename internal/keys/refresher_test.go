package keys

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestRemoteSourcesShareRetryRules runs one table of retry and cooldown
// steps over both kinds of remote source, a JWKS URI and a SPIFFE bundle
// endpoint, each against a real HTTP server that counts fetches: they obey
// the same backoff after failures (1s, 2s, 4s, less up to a tenth of
// jitter) and the same one refetch per cooldown for an unknown kid.
func TestRemoteSourcesShareRetryRules(t *testing.T) {
	priv := newEC(t)
	kinds := []struct {
		name string
		body []byte
		open func(p *Plane, url string) Source
	}{
		{"jwks_uri", jwksJSON(t, jwkOf(t, priv, "a", nil)), func(p *Plane, url string) Source {
			return mustSource(t, p, Spec{Name: "idp", JWKSURI: url})
		}},
		{"bundle_endpoint", svidBundle(t, 3600, svidKey(t, priv, "a")), func(p *Plane, url string) Source {
			return newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: url})
		}},
	}
	const cooldown = 10 * time.Second
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			srv := newJWKSServer(t, kind.body)
			failing := func(on bool) {
				if on {
					srv.setHandler(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
				} else {
					srv.setHandler(nil)
				}
			}
			p, clk, _ := testPlane(t, Config{RefetchCooldown: cooldown, MinRefresh: time.Hour, MaxRefresh: time.Hour})
			failing(true)
			src := kind.open(p, srv.URL)
			lookup := func(kid string) error {
				_, err := src.Keys(context.Background(), kid)
				p.settle()
				return err
			}
			steps := []struct {
				what    string
				advance time.Duration
				failing bool
				kid     string
				fetches int64
				err     error
			}{
				{"first fetch fails", 0, true, "a", 1, ErrUnavailable},
				{"inside the first backoff (≥ 0.9s)", 800 * time.Millisecond, true, "a", 1, ErrUnavailable},
				{"after 1s the retry fails again", 200 * time.Millisecond, true, "a", 2, ErrUnavailable},
				{"inside the second backoff (≥ 1.8s)", 1700 * time.Millisecond, true, "a", 2, ErrUnavailable},
				{"after 2s the retry succeeds", 300 * time.Millisecond, false, "a", 3, nil},
				{"an unknown kid inside the cooldown of the last fetch", 0, false, "zz", 3, ErrUnknownKID},
				{"an unknown kid after the cooldown refetches", cooldown, false, "zz", 4, ErrUnknownKID},
				{"another unknown kid at once does not", 0, false, "yy", 4, ErrUnknownKID},
				{"the known kid still verifies", 0, false, "a", 4, nil},
				{"after the cooldown, a refetch that fails", cooldown, true, "zz", 5, ErrUnknownKID},
				{"neither the backoff nor the cooldown lets another start", 800 * time.Millisecond, true, "yy", 5, ErrUnknownKID},
				{"the retry timer after the backoff; the set is still served", 200 * time.Millisecond, true, "a", 6, nil},
				{"the backoff has doubled", 1700 * time.Millisecond, true, "a", 6, nil},
				{"and the next retry comes after it", 300 * time.Millisecond, false, "a", 7, nil},
			}
			for _, s := range steps {
				failing(s.failing)
				clk.Add(s.advance)
				p.settle()
				err := lookup(s.kid)
				if got := srv.hits.Load(); got != s.fetches {
					t.Fatalf("%s: %d fetches, want %d", s.what, got, s.fetches)
				}
				if (s.err == nil) != (err == nil) || (s.err != nil && !errors.Is(err, s.err)) {
					t.Fatalf("%s: Keys(%q) = %v, want %v", s.what, s.kid, err, s.err)
				}
			}
		})
	}
}
