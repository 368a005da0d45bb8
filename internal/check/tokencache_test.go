package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
)

// swappableKeys is a key source whose set the test replaces, standing in for
// a rotation or a SPIFFE bundle revocation.
type swappableKeys struct {
	mu  sync.Mutex
	set *keys.Set
}

func (s *swappableKeys) Keys(_ context.Context, kid string) ([]*keys.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks := s.set.Lookup(kid); len(ks) > 0 {
		return ks, nil
	}
	return nil, keys.ErrUnknownKID
}

func (s *swappableKeys) swap(set *keys.Set) {
	s.mu.Lock()
	s.set = set
	s.mu.Unlock()
}

func es256(t *testing.T, k *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(map[string]any{"alg": "ES256", "kid": "k1", "typ": "at+jwt"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const cachePolicy = `version: v1
issuers:
  - {name: login, issuer: https://login.example.com, jwks_uri: https://login.example.com/jwks}
rules:
  - name: api
    bearer: {issuers: [login], audiences: [api], scopes: [read]}
    headers: {x-client-id: client_id}
`

// cacheServer loads cachePolicy with the issuer's keys replaced by src.
func cacheServer(t *testing.T, src keys.Source, clock *time.Time) (*Server, *policy.Store, func() *policy.Snapshot) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(cachePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	load := func() *policy.Snapshot {
		snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
		if err != nil {
			t.Fatal(err)
		}
		snap.Issuers["login"].Keys = src
		return snap
	}
	store := policy.NewStore(load())
	srv := New(Config{Policy: store, Replay: replay.NewMemory(replay.MemoryConfig{}), Now: func() time.Time { return *clock }})
	return srv, store, load
}

func bearerRequest(tok string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/", Headers: map[string]string{"authorization": "Bearer " + tok}},
	}}}
}

// cached reports whether the decision used the cache, and its reason.
func cached(srv *Server, tok string) (bool, string) {
	resp, steps := srv.Explain(context.Background(), bearerRequest(tok))
	hit := false
	for _, s := range steps {
		hit = hit || s.Check == "token cache"
	}
	return hit, resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
}

func TestTokenCache(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := &keys.Key{ID: "k1", Public: &priv.PublicKey}
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{key})}
	clock := time.Unix(1_900_000_000, 0)
	srv, store, load := cacheServer(t, src, &clock)
	tok := es256(t, priv, map[string]any{
		"iss": "https://login.example.com", "aud": "api", "scope": "read", "client_id": "c1",
		"exp": clock.Unix() + 60,
	})

	if hit, reason := cached(srv, tok); hit || reason != ReasonAllowed {
		t.Fatalf("first check: cache hit %v, reason %s", hit, reason)
	}
	if hit, reason := cached(srv, tok); !hit || reason != ReasonAllowed {
		t.Fatalf("second check: cache hit %v, reason %s; want a hit", hit, reason)
	}
	if srv.tokens.Len() != 1 {
		t.Fatalf("cache holds %d tokens", srv.tokens.Len())
	}

	// Rules still run on a hit: a token without the scope is denied even
	// when its signature is cached.
	noScope := es256(t, priv, map[string]any{"iss": "https://login.example.com", "aud": "api", "exp": clock.Unix() + 60})
	cached(srv, noScope)
	if hit, reason := cached(srv, noScope); !hit || reason != ReasonScope {
		t.Fatalf("scope-less token: hit %v reason %s", hit, reason)
	}

	// A policy change makes new issuer objects: the entry does not count.
	store.Swap(load())
	if hit, reason := cached(srv, tok); hit || reason != ReasonAllowed {
		t.Fatalf("after reload: hit %v reason %s; want a fresh verification", hit, reason)
	}

	// Rotation: the key leaves the set; the cached entry must not verify.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	src.swap(keys.NewSet([]*keys.Key{{ID: "k1", Public: &other.PublicKey}}))
	if hit, reason := cached(srv, tok); hit || reason != ReasonSignature {
		t.Fatalf("after rotation: hit %v reason %s; want signature_invalid", hit, reason)
	}

	// Expiry: an entry never outlives exp (plus skew).
	src.swap(keys.NewSet([]*keys.Key{key}))
	cached(srv, tok)
	clock = clock.Add(60*time.Second + 31*time.Second)
	if hit, reason := cached(srv, tok); !hit || reason != ReasonExpired {
		t.Fatalf("after exp: hit %v reason %s; want the cached token expired", hit, reason)
	}
}

func TestTokenCacheOff(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	src := &swappableKeys{set: keys.NewSet([]*keys.Key{{ID: "k1", Public: &priv.PublicKey}})}
	clock := time.Unix(1_900_000_000, 0)
	srv, _, _ := cacheServer(t, src, &clock)
	srv.tokens = newTokenCache(-1)
	tok := es256(t, priv, map[string]any{"iss": "https://login.example.com", "aud": "api", "scope": "read", "exp": clock.Unix() + 60})
	for range 2 {
		if hit, reason := cached(srv, tok); hit || reason != ReasonAllowed {
			t.Fatalf("cache off: hit %v reason %s", hit, reason)
		}
	}
}
