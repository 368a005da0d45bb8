package introspect

import (
	"crypto/ecdsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/test/jose"
)

// TestFaults: what is not a valid answer from the endpoint is
// ErrUnavailable (the Check fails closed with 503), never an active token
// and never an inactive one, and is not cached.
func TestFaults(t *testing.T) {
	other := newEndpoint(t, activeAnswer(t, nil))
	huge := `{"active":true,"pad":"` + strings.Repeat("x", MaxResponseBytes) + `"}`
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string // in the error
	}{
		{"status 500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, "status 500"},
		{"status 401", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "who", http.StatusUnauthorized) }, "status 401"},
		{"HTML", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html>{"active":true}</html>`))
		}, "content type"},
		{"JSON body without a content type", func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte(`{"active":true}`))
		}, "content type"},
		{"huge with length", answer(huge), "exceeds"},
		{"huge chunked", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for i := 0; i < len(huge); i += 4096 {
				w.Write([]byte(huge[i:min(i+4096, len(huge))]))
				w.(http.Flusher).Flush()
			}
		}, "exceeds"},
		{"active as a string", answer(`{"active":"true"}`), "not a JSON boolean"},
		{"no active", answer(`{"scope":"a"}`), "no active"},
		{"malformed JSON", answer(`{"active":true`), "not a JSON object"},
		{"exp as a string", answer(`{"active":true,"exp":"1900000060"}`), "exp"},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.srv.URL+"/introspect", http.StatusTemporaryRedirect)
		}, "redirect refused"},
		{"redirect to the same host", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
				return
			}
			activeAnswer(t, nil)(w, r)
		}, "redirect refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := newEndpoint(t, tc.h)
			c := newClient(t, testSpec(t, ep.srv.URL))
			tok, err := lookup(t, c, "opaque-1", now)
			if !isUnavailable(err) || errors.Is(err, ErrInactive) || tok != nil {
				t.Fatalf("Introspect = %v, %v; want ErrUnavailable", tok, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "opaque-1") {
				t.Errorf("error %q: want it to say %q and never show the token", err, tc.want)
			}
			if c.Len() != 0 {
				t.Errorf("a fault was cached")
			}
		})
	}
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests: the token left for another host", n)
	}
}

// TestSlowEndpoint: an endpoint slower than the timeout is ErrUnavailable
// once the timeout passes.
func TestSlowEndpoint(t *testing.T) {
	ep := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) { s.Timeout = 100 * time.Millisecond }))
	start := time.Now()
	_, err := lookup(t, c, "opaque-1", now)
	var f *fault
	if !isUnavailable(err) || !errors.As(err, &f) || f.outcome != outcomeTimeout {
		t.Fatalf("slow endpoint: %v, want ErrUnavailable counted as a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s; the timeout is 100ms", d)
	}
}

// jwtEndpoint serves RFC 9701 responses signed by key with typ and claims
// from mod.
func jwtEndpoint(t *testing.T, key *ecdsa.PrivateKey, contentType string, header, claims map[string]any) *endpoint {
	t.Helper()
	return newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/token-introspection+jwt" {
			http.Error(w, "accept", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(jose.MustSign(t, "ES256", key, header, claims)))
	})
}

// jwtSpec is a jwt_response spec whose responses verify with pub.
func jwtSpec(t *testing.T, u string, pub *ecdsa.PublicKey) Spec {
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	src, err := plane.Source(keys.Spec{Name: "as", Issuer: testIssuer, JWKS: jose.JWKS(jose.PublicJWK("as-1", "ES256", pub))})
	if err != nil {
		t.Fatal(err)
	}
	return testSpec(t, u, func(s *Spec) { s.JWTResponse, s.Keys, s.Algorithms = true, src, []string{"ES256"} })
}

// TestJWTResponse: a signed response of the issuer, for our client_id,
// gives the claims under token_introspection; every way it could be forged
// or misdirected is a fault.
func TestJWTResponse(t *testing.T) {
	as, forger := jose.P256(t), jose.P256(t)
	hdr := map[string]any{"kid": "as-1", "typ": "token-introspection+jwt"}
	good := map[string]any{
		"iss": testIssuer, "aud": "extauthz", "iat": now.Unix(),
		"token_introspection": map[string]any{"active": true, "sub": "user-1", "scope": "reports", "aud": "api"},
	}
	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	ep := jwtEndpoint(t, as, "application/token-introspection+jwt", hdr, good)
	c := newClient(t, jwtSpec(t, ep.srv.URL, &as.PublicKey))
	tok, err := lookup(t, c, "opaque-1", now)
	if err != nil {
		t.Fatalf("signed response: %v", err)
	}
	if tok.Subject != "user-1" || tok.Claims()["scope"] != "reports" || tok.Claims()["iss"] != nil {
		t.Fatalf("claims = %v, want token_introspection's members only", tok.Claims())
	}

	inactive := jwtEndpoint(t, as, "application/token-introspection+jwt", hdr, with(good, "token_introspection", map[string]any{"active": false}))
	if _, err := lookup(t, newClient(t, jwtSpec(t, inactive.srv.URL, &as.PublicKey)), "opaque-1", now); !errors.Is(err, ErrInactive) {
		t.Fatalf("signed inactive response: %v, want ErrInactive", err)
	}

	for _, tc := range []struct {
		name        string
		key         *ecdsa.PrivateKey
		contentType string
		header      map[string]any
		claims      map[string]any
		want        string
	}{
		{"plain JSON content type", as, "application/json", hdr, good, "content type"},
		{"bad signature", forger, "application/token-introspection+jwt", hdr, good, "signature"},
		{"typ JWT", as, "application/token-introspection+jwt", map[string]any{"kid": "as-1", "typ": "JWT"}, good, "typ"},
		{"another issuer", as, "application/token-introspection+jwt", hdr, with(good, "iss", "https://evil.example.com"), "iss"},
		{"another audience", as, "application/token-introspection+jwt", hdr, with(good, "aud", "someone-else"), "aud"},
		{"no token_introspection", as, "application/token-introspection+jwt", hdr, with(good, "token_introspection", nil), "token_introspection"},
		{"active as a string inside", as, "application/token-introspection+jwt", hdr, with(good, "token_introspection", map[string]any{"active": "true"}), "boolean"},
		{"issued in the future", as, "application/token-introspection+jwt", hdr, with(good, "iat", now.Add(time.Hour).Unix()), "future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := jwtEndpoint(t, tc.key, tc.contentType, tc.header, tc.claims)
			c := newClient(t, jwtSpec(t, ep.srv.URL, &as.PublicKey))
			tok, err := lookup(t, c, "opaque-1", now)
			if !isUnavailable(err) || tok != nil {
				t.Fatalf("Introspect = %v, %v; want ErrUnavailable", tok, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestDiscovery: the endpoint comes from the issuer's RFC 8414 metadata,
// whose issuer must be ours; a metadata document naming another issuer
// is a fault, and the endpoint is never asked.
func TestDiscovery(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	var iss string
	var mdHits int
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server/tenant" {
			http.NotFound(w, r)
			return
		}
		mdHits++
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + iss + `","introspection_endpoint":"` + ep.srv.URL + `/introspect"}`))
	}))
	t.Cleanup(md.Close)
	iss = md.URL + "/tenant"
	c := newClient(t, testSpec(t, "", func(s *Spec) { s.Discovery, s.Issuer = true, iss }))
	for _, tok := range []string{"opaque-1", "opaque-2"} {
		if _, err := lookup(t, c, tok, now); err != nil {
			t.Fatalf("after discovery: %v", err)
		}
	}
	if mdHits != 1 || ep.last.URL.Path != "/introspect" {
		t.Fatalf("metadata fetched %d times, endpoint path %q; want once and /introspect", mdHits, ep.last.URL.Path)
	}

	before := ep.hits.Load()
	wrong := newClient(t, testSpec(t, "", func(s *Spec) { s.Discovery, s.Issuer = true, md.URL+"/tenant/" }))
	_, err := lookup(t, wrong, "opaque-3", now)
	if !isUnavailable(err) || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("metadata of another issuer: %v", err)
	}
	if ep.hits.Load() != before {
		t.Fatal("the endpoint of another issuer's metadata was asked")
	}
}

// TestOffline: an offline client never calls the endpoint.
func TestOffline(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	p, err := NewPlane(Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client(testSpec(t, ep.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lookup(t, c, "opaque-1", now); !isUnavailable(err) || ep.hits.Load() != 0 {
		t.Fatalf("offline: %v after %d requests", err, ep.hits.Load())
	}
}
