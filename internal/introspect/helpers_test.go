package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/token"
)

// now is the clock of every test; lookups take it as an argument, so tests
// move time by passing another.
var now = time.Unix(1_900_000_000, 0).UTC()

const testIssuer = "https://as.example.com"

// endpoint is an introspection endpoint on loopback whose answer a test
// may change; it counts requests and the most in flight at once.
type endpoint struct {
	srv      *httptest.Server
	hits     atomic.Int64
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	mu       sync.Mutex
	h        http.HandlerFunc
	last     *http.Request
	lastForm url.Values
}

func newEndpoint(t *testing.T, h http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{h: h}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.hits.Add(1)
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	for {
		m := e.maxSeen.Load()
		if n <= m || e.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	r.ParseForm()
	e.mu.Lock()
	e.last, e.lastForm = r, r.PostForm
	h := e.h
	e.mu.Unlock()
	h(w, r)
}

func (e *endpoint) set(h http.HandlerFunc) {
	e.mu.Lock()
	e.h = h
	e.mu.Unlock()
}

func (e *endpoint) form() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastForm
}

// answer writes body as JSON.
func answer(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}
}

// activeAnswer is an active response with claims.
func activeAnswer(t *testing.T, claims map[string]any) http.HandlerFunc {
	t.Helper()
	m := map[string]any{"active": true}
	for k, v := range claims {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return answer(string(b))
}

var inactiveAnswer = answer(`{"active":false}`)

// writeFile writes content to a file in a fresh directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpec is a client_secret_basic spec for endpoint u with short,
// test-sized limits; mod changes it.
func testSpec(t *testing.T, u string, mod ...func(*Spec)) Spec {
	s := Spec{
		Name: "as", Issuer: testIssuer, Endpoint: u,
		ClientID: "extauthz", Method: ClientSecretBasic, ClientSecretFile: writeFile(t, "secret", "s3cret\n"),
		TokenTypeHint: DefaultTokenTypeHint,
		CacheTTL:      DefaultCacheTTL, NegativeTTL: DefaultNegativeTTL, CacheSize: 100,
		MaxConcurrency: DefaultMaxConcurrency, Timeout: 5 * time.Second,
	}
	for _, m := range mod {
		m(&s)
	}
	return s
}

func newClient(t *testing.T, spec Spec) *Client {
	t.Helper()
	p, err := NewPlane(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Client(spec)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	return c
}

func lookup(t *testing.T, c *Client, raw string, at time.Time) (*token.Token, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Introspect(ctx, raw, at)
}

func isUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
