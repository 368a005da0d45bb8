package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/token"
)

// viewPolicy reads, on every Check, what a cached token's view must give as
// the parsed token did: typed registered claims, client_id/azp, scope and
// scp, step-up acr and auth_time, and CEL's claims map with each JSON type.
const viewPolicy = `version: v1
issuers:
  - {name: login, issuer: https://login.example.com, jwks_uri: https://login.example.com/jwks}
rules:
  - name: stepup
    match: {paths: [/stepup]}
    bearer: {issuers: [login], audiences: [api], acr_values: [gold], max_age: 300s}
    headers: {x-client-id: client_id}
  - name: plain
    match: {paths: [/plain]}
    bearer: {issuers: [login], audiences: [api], scopes: [read]}
    headers: {x-client-id: client_id, x-scopes: scopes}
  - name: claims
    match: {paths: [/claims]}
    bearer: {issuers: [login], audiences: [api]}
    require:
      - 'claims.sub != "banned"'
    headers:
      x-client-id: client_id
      x-sub: claims.sub
      x-exp: string(claims.exp)
      x-exp-type: string(type(claims.exp) == int)
      x-n: string(claims.n)
      x-nested: claims.o.k
      x-list: string(size(claims.l))
      x-flag: string(claims.flag)
      x-null: string(claims.nil == null)
      x-has-email: string(has(claims.email))
      x-esc: claims.esc
`

func viewServer(t *testing.T, src keys.Source, clock *time.Time, cacheSize int) *Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(viewPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatal(err)
	}
	snap.Issuers["login"].Keys = src
	srv := New(Config{Policy: policy.NewStore(snap), Replay: replay.NewMemory(replay.MemoryConfig{}), Now: func() time.Time { return *clock }, TokenCacheSize: cacheSize})
	return srv
}

// TestTokenCacheHitDecidesAsMiss: a Check answered from the cache's compact
// token is the same response, byte for byte, as the first Check that parsed
// it and as a server without a cache, for tokens that exercise every claim
// a rule reads.
func TestTokenCacheHitDecidesAsMiss(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{{ID: "k1", Public: &priv.PublicKey}})}
	clock := time.Unix(1_900_000_000, 0)
	cachedSrv := viewServer(t, src, &clock, 100)
	plainSrv := viewServer(t, src, &clock, -1)
	now := clock.Unix()
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": "https://login.example.com", "sub": "u1", "aud": "api", "exp": now + 60}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	claims := map[string]any{
		"client_id": "c1", "n": 7, "o": map[string]any{"k": "v"}, "l": []any{1, "two", nil},
		"flag": true, "nil": nil, "esc": "quote\" and é", "scope": "read write",
	}
	tokens := map[string]map[string]any{
		"scope":         base(map[string]any{"scope": "read write", "client_id": "c1"}),
		"azp":           base(map[string]any{"scope": "read", "azp": "a1"}),
		"scp array":     base(map[string]any{"scp": []any{"read", "x"}}),
		"scp string":    base(map[string]any{"scp": "read"}),
		"scope bad":     base(map[string]any{"scope": 5}),
		"no scope":      base(nil),
		"aud array":     base(map[string]any{"aud": []any{"other", "api"}, "scope": "read"}),
		"aud miss":      base(map[string]any{"aud": []any{"other"}, "scope": "read"}),
		"fraction exp":  base(map[string]any{"exp": float64(now) + 0.5, "nbf": float64(now) - 0.25, "iat": now - 1, "scope": "read"}),
		"not yet":       base(map[string]any{"nbf": now + 120, "scope": "read"}),
		"cnf":           base(map[string]any{"cnf": map[string]any{"jkt": "abc"}, "scope": "read"}),
		"id token":      base(map[string]any{"nonce": "n", "scope": "read"}),
		"step-up ok":    base(map[string]any{"acr": "gold", "auth_time": now - 10}),
		"step-up acr":   base(map[string]any{"acr": "silver", "auth_time": now - 10}),
		"step-up old":   base(map[string]any{"acr": "gold", "auth_time": float64(now) - 400.5}),
		"step-up bad":   base(map[string]any{"acr": "gold", "auth_time": "yesterday"}),
		"claims":        base(claims),
		"claims banned": base(map[string]any{"sub": "banned", "n": 1.5}),
		"claims float":  base(map[string]any{"n": 1.5, "exp": float64(now) + 30.25, "o": map[string]any{"k": "w"}, "l": []any{}, "flag": false, "nil": "x", "esc": `\u`}),
		"escaped iss":   {"iss": "https:\u002f\u002flogin.example.com", "sub": "ü", "aud": "api", "exp": now + 60, "scope": "read"},
	}
	allowed := 0
	for name, c := range tokens {
		tok := es256(t, priv, c)
		for _, path := range []string{"/plain", "/stepup", "/claims"} {
			req := bearerRequest(tok)
			req.Attributes.Request.Http.Path = path
			miss, err := cachedSrv.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			hit, err := cachedSrv.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			none, err := plainSrv.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(miss, hit) || !proto.Equal(miss, none) {
				t.Errorf("%s %s: the cached Check differs\n miss %v\n  hit %v\n none %v", name, path, miss, hit, none)
			}
			if miss.GetOkResponse() != nil {
				allowed++
			}
		}
		if _, ok := cachedSrv.tokens.lru.m[token.DigestOf(tok).Sum]; !ok && name != "not yet" {
			t.Errorf("%s: not cached", name)
		}
	}
	if allowed < 10 {
		t.Fatalf("only %d allowed Checks: the policy tests too little", allowed)
	}

	// The exact headers of a claims-reading rule, from the cache.
	req := bearerRequest(es256(t, priv, base(claims)))
	req.Attributes.Request.Http.Path = "/claims"
	for range 2 {
		resp, err := cachedSrv.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		want := map[string]string{
			"x-client-id": "c1", "x-sub": "u1", "x-exp": "1900000060", "x-exp-type": "true", "x-n": "7", "x-nested": "v",
			"x-list": "3", "x-flag": "true", "x-null": "true", "x-has-email": "false", "x-esc": "quote\" and é",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("header %s = %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
	}
}

func TestTokenLRU(t *testing.T) {
	l := newTokenLRU(2)
	a, b, c := [32]byte{1}, [32]byte{2}, [32]byte{3}
	ea, eb, ec := &cachedToken{}, &cachedToken{}, &cachedToken{}
	l.Add(a, ea)
	l.Add(b, eb)
	if e, ok := l.Get(a); !ok || e != ea {
		t.Fatal("a missing")
	}
	l.Add(c, ec) // evicts b, the least recent
	if _, ok := l.Get(b); ok {
		t.Fatal("b survived eviction")
	}
	if _, ok := l.Get(a); !ok {
		t.Fatal("a evicted though recently used")
	}
	ea2 := &cachedToken{}
	l.Add(a, ea2) // replaces, no eviction
	if e, _ := l.Get(a); e != ea2 || l.Len() != 2 {
		t.Fatalf("replace: %v, len %d", e == ea2, l.Len())
	}
	l.Remove(c)
	l.Remove(c)
	if _, ok := l.Get(c); ok || l.Len() != 1 {
		t.Fatalf("remove: len %d", l.Len())
	}
	l.Add(b, eb)
	l.Add(c, ec) // evicts a: b and c are newer
	if _, ok := l.Get(a); ok || l.Len() != 2 {
		t.Fatalf("a survived, len %d", l.Len())
	}
}
