package offline_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/extauthz/extauthz/internal/envoytest"
	"github.com/extauthz/extauthz/internal/jws"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/offline"
)

// evalFixture is a policy with two jwks_uri issuers of EdDSA tokens: one
// at an address nothing answers, one at jwksURL.
func evalFixture(t *testing.T, jwksURL string) string {
	t.Helper()
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(`
version: v1
issuers:
  - name: unreachable
    issuer: https://unreachable.example
    jwks_uri: https://keys.unreachable.invalid/jwks.json
    algorithms: [EdDSA]
  - name: fetched
    issuer: https://fetched.example
    jwks_uri: `+jwksURL+`
    algorithms: [EdDSA]
rules:
  - name: api
    match: {hosts: [api.example.com]}
    bearer: {issuers: [unreachable, fetched], audiences: [api.example.com]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return policy
}

// examplesDir holds the example keys the tests sign and verify with.
const examplesDir = "../../examples/policies"

// evalRequest is a GET with a bearer token of iss signed by the example
// login key (EdDSA), valid from an hour before at to an hour after.
func evalRequest(t *testing.T, iss string, at time.Time) *authv3.CheckRequest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, "keys/login.private.jwk.json"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	var priv any
	if err := jwk.Export(k, &priv); err != nil {
		t.Fatal(err)
	}
	kid, _ := k.KeyID()
	claims, _ := json.Marshal(map[string]any{"iss": iss, "sub": "alice", "aud": "api.example.com", "iat": at.Add(-time.Hour).Unix(), "exp": at.Add(time.Hour).Unix()})
	tok, err := jws.Compact("EdDSA", priv, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}, claims)
	if err != nil {
		t.Fatal(err)
	}
	return envoytest.Request{Method: "GET", Host: "api.example.com", Path: "/", Headers: [][2]string{{"authorization", "Bearer " + tok}}}.Proto()
}

func evalDecide(t *testing.T, srv *offline.Server, req *authv3.CheckRequest) (decision, reason string) {
	t.Helper()
	resp, _ := srv.Explain(context.Background(), req)
	md := resp.GetDynamicMetadata().GetFields()
	return md["decision"].GetStringValue(), md["reason"].GetStringValue()
}

// loginKey stands in for an issuer: the example login key's JWK Set.
func loginKey(t *testing.T) keys.Spec {
	t.Helper()
	jwks, err := os.ReadFile(filepath.Join(examplesDir, "keys/login.jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	return keys.Spec{JWKS: jwks}
}

func TestEvalServerClock(t *testing.T) {
	policy := evalFixture(t, "https://keys.fetched.invalid/jwks.json")
	pinned := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)
	srv, err := offline.New(context.Background(), offline.Config{
		Policies:   []string{policy},
		Now:        func() time.Time { return pinned },
		IssuerKeys: map[string]keys.Spec{"unreachable": loginKey(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !srv.Snapshot.LoadedAt.Equal(pinned) {
		t.Errorf("LoadedAt %v, want the injected clock's %v", srv.Snapshot.LoadedAt, pinned)
	}
	// A token of 2020 is valid on the injected clock, expired on the real one.
	req := evalRequest(t, "https://unreachable.example", pinned)
	if d, r := evalDecide(t, srv, req); d != "allow" {
		t.Errorf("on the injected clock: %s (%s), want allow", d, r)
	}
	onReal, err := offline.New(context.Background(), offline.Config{
		Policies:   []string{policy},
		IssuerKeys: map[string]keys.Spec{"unreachable": loginKey(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer onReal.Close()
	if d, r := evalDecide(t, onReal, req); d != "deny" || r != "token_expired" {
		t.Errorf("on the real clock: %s (%s), want deny (token_expired)", d, r)
	}
}

func TestEvalServerIssuerKeys(t *testing.T) {
	policy := evalFixture(t, "https://keys.fetched.invalid/jwks.json")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	req := evalRequest(t, "https://unreachable.example", now)

	plain, err := offline.New(context.Background(), offline.Config{Policies: []string{policy}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if d, r := evalDecide(t, plain, req); d != "deny" || r != "keys_unavailable" {
		t.Errorf("without issuer keys: %s (%s), want deny (keys_unavailable)", d, r)
	}

	srv, err := offline.New(context.Background(), offline.Config{
		Policies:   []string{policy},
		Now:        clock,
		IssuerKeys: map[string]keys.Spec{"unreachable": loginKey(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if d, r := evalDecide(t, srv, req); d != "allow" {
		t.Errorf("with issuer keys: %s (%s), want allow", d, r)
	}
	// Only the named issuer is replaced.
	if d, r := evalDecide(t, srv, evalRequest(t, "https://fetched.example", now)); r != "keys_unavailable" {
		t.Errorf("another issuer: %s (%s), want keys_unavailable", d, r)
	}

	_, err = offline.New(context.Background(), offline.Config{
		Policies:   []string{policy},
		IssuerKeys: map[string]keys.Spec{"nope": loginKey(t)},
	})
	var ike *offline.IssuerKeysError
	if !errors.As(err, &ike) || ike.Issuer != "nope" || !strings.Contains(err.Error(), `no issuer named "nope" in the policy (it has fetched, unreachable)`) {
		t.Errorf("an unknown issuer: error %v", err)
	}
	// The stand-in keys are checked as the policy's own would be.
	_, err = offline.New(context.Background(), offline.Config{
		Policies:   []string{policy},
		IssuerKeys: map[string]keys.Spec{"unreachable": {JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}},
	})
	if !errors.As(err, &ike) || ike.Issuer != "unreachable" || !strings.Contains(err.Error(), "symmetric") {
		t.Errorf("an oct key in a JWK Set: error %v", err)
	}
}

// TestEvalServerFetch is the `check --policy` path: remote keys are
// fetched before the server is returned, except those IssuerKeys replaces.
func TestEvalServerFetch(t *testing.T) {
	jwks := loginKey(t).JWKS
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer ts.Close()
	policy := evalFixture(t, ts.URL+"/jwks.json")
	now := time.Now()
	req := evalRequest(t, "https://fetched.example", now)

	srv, err := offline.New(context.Background(), offline.Config{Policies: []string{policy}, Fetch: true, PrefetchWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if hits.Load() == 0 {
		t.Errorf("Fetch: the JWKS was not fetched before the server was returned")
	}
	if d, r := evalDecide(t, srv, req); d != "allow" {
		t.Errorf("Fetch: %s (%s), want allow", d, r)
	}

	hits.Store(0)
	replaced, err := offline.New(context.Background(), offline.Config{
		Policies:     []string{policy},
		Fetch:        true,
		PrefetchWait: 5 * time.Second,
		IssuerKeys:   map[string]keys.Spec{"fetched": loginKey(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer replaced.Close()
	if d, r := evalDecide(t, replaced, req); d != "allow" {
		t.Errorf("Fetch with issuer keys: %s (%s), want allow", d, r)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("an issuer IssuerKeys replaces was fetched %d times", n)
	}
}
