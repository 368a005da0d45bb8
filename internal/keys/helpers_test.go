package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
)

// RSA key generation is slow under -race; the tests share a few keys.
var (
	rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
		ks := make([]*rsa.PrivateKey, 2)
		for i := range ks {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			ks[i] = k
		}
		return ks
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func newEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwkOf returns the public JWK of priv as a JSON object, with extra members.
func jwkOf(t testing.TB, priv crypto.Signer, kid string, extra map[string]any) map[string]any {
	t.Helper()
	k, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		m["kid"] = kid
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func jwksJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSigns proves that k verifies what priv signs with alg: a key that
// merely parses is not enough.
func checkSigns(t *testing.T, k *Key, priv any, alg string) {
	t.Helper()
	if !k.Fits(alg) {
		t.Fatalf("key %q does not fit %s", k.ID, alg)
	}
	msg := []byte("header.payload")
	sum := sha256.Sum256(msg)
	var ok bool
	switch priv := priv.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		ok = rsa.VerifyPKCS1v15(k.Public.(*rsa.PublicKey), crypto.SHA256, sum[:], sig) == nil
	case *ecdsa.PrivateKey:
		sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		ok = ecdsa.VerifyASN1(k.Public.(*ecdsa.PublicKey), sum[:], sig)
	case ed25519.PrivateKey:
		ok = ed25519.Verify(k.Public.(ed25519.PublicKey), msg, ed25519.Sign(priv, msg))
	case []byte:
		m1 := hmac.New(sha256.New, priv)
		m1.Write(msg)
		m2 := hmac.New(sha256.New, k.Public.([]byte))
		m2.Write(msg)
		ok = hmac.Equal(m1.Sum(nil), m2.Sum(nil))
	default:
		t.Fatalf("unknown private key %T", priv)
	}
	if !ok {
		t.Fatalf("key %q does not verify a signature by its private key", k.ID)
	}
}

// jwksServer is a JWKS endpoint on a loopback port that counts its hits and
// misbehaves on request.
type jwksServer struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	body    []byte
	header  http.Header
	handler http.HandlerFunc // when set, replaces the normal answer
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer { return newJWKSServerB(t, body) }

func newJWKSServerB(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	body, header, h := s.body, s.header, s.handler
	s.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *jwksServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) setHandler(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func (s *jwksServer) setHeader(k, v string) {
	s.mu.Lock()
	if s.header == nil {
		s.header = http.Header{}
	}
	s.header.Set(k, v)
	s.mu.Unlock()
}

// testPlane returns a plane on a fake clock with its metrics in a private
// registry.
func testPlane(t *testing.T, cfg Config) (*Plane, *fakeClock, *prometheus.Registry) {
	t.Helper()
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	cfg.Clock = clk
	cfg.Registerer = reg
	p, err := NewPlane(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, clk, reg
}

// settle waits for the fetches in flight to finish publishing.
func (p *Plane) settle() { p.fetchs.Wait() }

func mustSource(t *testing.T, p *Plane, spec Spec) Source {
	t.Helper()
	src, err := p.Source(spec)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustKeys(t *testing.T, src Source, kid string) []*Key {
	t.Helper()
	ks, err := src.Keys(context.Background(), kid)
	if err != nil {
		t.Fatalf("Keys(%q): %v", kid, err)
	}
	if len(ks) == 0 {
		t.Fatalf("Keys(%q): no keys", kid)
	}
	return ks
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFixtureFS(path string) ([]byte, error) { return os.ReadFile(path) }

func fixtureJWK(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, name), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
