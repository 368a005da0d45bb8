package check_test

// The harness runs the Check server the way production does: real keys, a
// JWKS served over HTTP on loopback, a policy file loaded by policy.Load, the
// server on a gRPC listener at 127.0.0.1:0 and a real client. Only the clock
// is injected.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/envoytest"
	"github.com/extauthz/extauthz/internal/jwkstest"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

// now is the server's clock in every test: tokens are minted around it.
var now = time.Unix(1_900_000_000, 0).UTC()

func unix(d time.Duration) int64 { return now.Add(d).Unix() }

const (
	tokenEndpoint = "https://login.example.com/oauth/v2/oauth-token"
	partnerIss    = "partner-api-client"
	otherIss      = "other-client"
	spireIss      = "https://oidc-discovery.example.org"
	loginIss      = "https://login.example.com"
	downIss       = "down-client"
	workloadSVID  = "spiffe://example.org/ns/applications/sa/workload-client"
	assertionURN  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	formType      = "application/x-www-form-urlencoded"
)

// testKeys are made once per test binary: RSA key generation is slow under
// the race detector.
type testKeySet struct {
	partner *rsa.PrivateKey   // PS256, kid partner-1
	other   *rsa.PrivateKey   // RS256, kid other-1; also the forger's key
	spire   *ecdsa.PrivateKey // ES256, kid spire-1
	login   ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *testKeySet {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &testKeySet{partner: gen(), other: gen(), spire: ec, login: ed}
})

// newJWKSServer serves each issuer's public keys on its own path, and a
// 500 on /down.
func newJWKSServer(t *testing.T) *jwkstest.Server {
	t.Helper()
	k := testKeys()
	return jwkstest.New(t, map[string][]byte{
		"/partner": jose.JWKS(jose.PublicJWK("partner-1", "PS256", &k.partner.PublicKey)),
		"/other":   jose.JWKS(jose.PublicJWK("other-1", "RS256", &k.other.PublicKey)),
		"/spire":   jose.JWKS(jose.PublicJWK("spire-1", "ES256", &k.spire.PublicKey)),
		"/login":   jose.JWKS(jose.PublicJWK("login-1", "EdDSA", k.login.Public())),
		"/down":    nil,
	})
}

// basePolicy is the policy most tests run: the spec's example, with every
// key served by the test's JWKS server ({{JWKS}}).
const basePolicy = `version: v1
issuers:
  - name: partner
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner
    algorithms: [PS256]
  - name: other
    issuer: other-client
    jwks_uri: {{JWKS}}/other
  - name: spire
    issuer: https://oidc-discovery.example.org
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: example.org
    client_ids:
      spiffe://example.org/ns/applications/sa/workload-client: jwt_assertion_client
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
  - name: down
    issuer: down-client
    jwks_uri: {{JWKS}}/down
  # JWT-SVIDs without iss, taken by the trust domain of their sub.
  - name: mesh
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: mesh.example
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner, other, spire, mesh]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
  - name: down-endpoint
    match:
      paths: [/down/token]
    client_assertion:
      issuers: [down]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [reports]
    require:
      - 'request.method == "GET" || "reports:write" in scopes'
    headers:
      x-client-id: client_id
  - name: either
    match:
      paths: [/either]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
strip_headers: [x-internal-user]
default_action: deny
`

// managed is every header basePolicy manages, in every -/_ spelling.
var managed = policy.AllSpellings("x-client-id", "x-internal-user", "x-is-agent", "x-spiffe-id")

// harness is one running Check server.
type harness struct {
	jwks   *jwkstest.Server
	client authv3.AuthorizationClient
}

// newHarness serves policyYAML ({{JWKS}} replaced by the JWKS server's URL)
// on a fresh gRPC server; opts may change the server's config. Everything
// stops when t ends.
func newHarness(t *testing.T, policyYAML string, opts ...func(*check.Config)) *harness {
	t.Helper()
	h := &harness{jwks: newJWKSServer(t)}

	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(policyYAML, "{{JWKS}}", h.jwks.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatalf("policy.Load: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	plane.Prefetch(ctx, snap.RemoteSources())
	cancel()

	clock := func() time.Time { return now }
	cfg := check.Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{MaxEntries: 1000, Clock: clock}),
		Now:    clock,
	}
	for _, o := range opts {
		o(&cfg)
	}
	conn := check.ServeCheck(t, check.New(cfg).Register)
	h.client = authv3.NewAuthorizationClient(conn)
	return h
}

// httpReq is the HTTP request Envoy describes in a CheckRequest.
type httpReq struct {
	method, host, path string
	// headers in order, any case; a name may repeat.
	headers [][2]string
	body    string
	// headerMap sends header_map (encode_raw_headers) instead of headers.
	headerMap bool
	// rawBody sends raw_body (pack_as_bytes) instead of body.
	rawBody bool
	// ext is the route's context_extensions.
	ext map[string]string
	// peerCert is the client certificate Envoy forwards (DER), nil for none.
	peerCert []byte
	// principal is source.principal, Envoy's name for the mTLS peer.
	principal string
}

// with returns a copy of r with more headers.
func (r httpReq) with(kv ...string) httpReq {
	r.headers = envoytest.With(r.headers, kv...)
	return r
}

// proto builds the CheckRequest as Envoy does (envoytest.Request), from
// 10.0.0.7:43210 and with names in header_map as given.
func (r httpReq) proto() *authv3.CheckRequest {
	var cert string
	if r.peerCert != nil {
		cert = envoyPEM(r.peerCert)
	}
	return envoytest.Request{
		ID: "req-1", Method: r.method, Host: r.host, Path: r.path,
		Headers: r.headers, Body: r.body, HeaderMap: r.headerMap, RawBody: r.rawBody,
		ContextExtensions: r.ext,
		Source:            envoytest.SocketPeer("10.0.0.7", 43210), Certificate: cert, Principal: r.principal,
	}.Proto()
}

// check sends r and returns the response; a gRPC error fails the test, as
// no deny is ever one.
func (h *harness) check(t *testing.T, r httpReq) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.client.Check(ctx, r.proto())
	if err != nil {
		t.Fatalf("Check returned a gRPC error (denies are responses): %v", err)
	}
	return resp
}

// form encodes name/value pairs in order, repeats allowed.
func form(kv ...string) string { return envoytest.Form(kv...) }

// assertionBody is a client-credentials token request carrying tok, plus
// extra parameters.
func assertionBody(tok string, extra ...string) string {
	return form(append([]string{"grant_type", "client_credentials", "client_assertion_type", assertionURN, "client_assertion", tok}, extra...)...)
}

// tokenReq is a POST of body to the token endpoint as a form.
func tokenReq(body string) httpReq {
	return httpReq{
		method: "POST", host: "login.example.com", path: "/oauth/v2/oauth-token",
		headers: [][2]string{{"content-type", formType}},
		body:    body,
	}
}

// reportsReq is a request to the bearer-protected API.
func reportsReq(method string, kv ...string) httpReq {
	return httpReq{method: method, host: "api.example.com", path: "/reports/q1?year=2030"}.with(kv...)
}

// envoyPEM encodes a certificate as Envoy forwards it with
// include_peer_certificate.
func envoyPEM(der []byte) string { return envoytest.PEM(der) }

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
