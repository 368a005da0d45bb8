// Package adversarial_test attacks extauthz through its real gRPC server:
// real keys served by a loopback JWKS server that counts its hits, a second
// "attacker" server that must never be asked for anything, a policy loaded
// with policy.Load, check.New on 127.0.0.1:0 and a real client. Each test is
// one attack class of docs/security.md; each case asserts the deny, its HTTP
// status and reason code, and that no key fetch happened where none should.
package adversarial_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/envoytest"
	"github.com/extauthz/extauthz/internal/jwkstest"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

// t0 is the server's clock when a harness starts.
var t0 = time.Unix(1_900_000_000, 0).UTC()

const (
	tokenEndpoint = "https://login.example.com/oauth/token"
	loginIss      = "https://login.example.com"
	assertionURN  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	formType      = "application/x-www-form-urlencoded"
	workloadSVID  = "spiffe://example.org/ns/apps/sa/worker"
)

// policyYAML is the policy under attack. {{JWKS}} is the counting JWKS
// server; hmac.secret and rsa.pem are written beside the policy file.
const policyYAML = `version: v1
issuers:
  # RFC 7523 clients that sign their own assertions (iss = sub).
  - name: rsa
    issuer: rsa-client
    jwks_uri: {{JWKS}}/rsa
  - name: ec
    issuer: ec-client
    jwks_uri: {{JWKS}}/ec
    client_ids:
      "caf\u00e9-client": cafe-client
  - name: hmac
    issuer: hmac-client
    hmac_secret_file: hmac.secret
  # The RSA issuer's public key again, as a PEM file: the "secret" of the
  # classic HS256 key-confusion attack.
  - name: pem
    issuer: pem-client
    pem_file: rsa.pem
  # JWT-SVIDs, taken by the trust domain of their SPIFFE ID sub.
  - name: spire
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: example.org
  # The authorization server of the API's access tokens.
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/token]
      methods: [POST]
    client_assertion:
      issuers: [rsa, ec, hmac, pem, spire]
      audiences: [https://login.example.com/oauth/token]
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
  - name: api
    match:
      path_prefixes: [/api/]
    bearer:
      issuers: [login, rsa]
      audiences: [api.example.com]
      scopes: [read]
    headers:
      x-client-id: client_id
      X-User: 'claims.?name.orValue("")'
  # Host wildcards (hosts_test.go).
  - name: admin-wildcard
    match:
      hosts: ["*.admin.example.com"]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
  # The same API held to RFC 9068's access-token profile (typing_test.go).
  - name: api-rfc9068
    match:
      path_prefixes: [/profiled/]
    bearer:
      issuers: [login, spire]
      audiences: [api.example.com]
      profile: rfc9068
    headers:
      x-client-id: client_id
  - name: either
    match:
      paths: [/either]
    client_assertion:
      issuers: [rsa]
      audiences: [https://login.example.com/oauth/token]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
  # Sender-constrained access tokens (binding_test.go): DPoP required,
  # optional, and required with server nonces.
  - name: dpop-required
    match:
      path_prefixes: [/dpop/required/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required}
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
  - name: dpop-optional
    match:
      path_prefixes: [/dpop/optional/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: optional}
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
  - name: dpop-nonce
    match:
      path_prefixes: [/dpop/nonce/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required, nonce: true}
    headers:
      x-dpop-jkt: dpop_jkt
  # A token endpoint that takes a DPoP proof beside the assertion, and one
  # that binds a JWT-SVID assertion to the caller's X.509-SVID.
  - name: token-endpoint-dpop
    match:
      hosts: [login.example.com]
      paths: [/oauth/dpop-token]
      methods: [POST]
    client_assertion:
      issuers: [ec]
      audiences: [https://login.example.com/oauth/token]
      dpop: {mode: optional}
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
  - name: svid-token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/svid-token]
    client_assertion:
      issuers: [spire]
      audiences: [https://login.example.com/oauth/token]
      peer_svid: true
    headers:
      x-client-id: client_id
strip_headers: [x-internal-user]
default_action: deny
`

// managed is every header policyYAML manages, in every -/_ spelling: an
// upstream that maps headers to CGI-style names reads x-client_id as
// x-client-id.
var managed = policy.AllSpellings("x-client-id", "x-dpop-jkt", "x-internal-user", "x-is-agent", "x-spiffe-id", "x-user")

// testKeys are generated once per test binary: RSA keys are slow to make
// under the race detector.
type testKeySet struct {
	rsa   *rsa.PrivateKey   // issuer rsa, kid rsa-1, JWK alg RS256
	ec    *ecdsa.PrivateKey // issuer ec, kid ec-1, P-256
	spire *ecdsa.PrivateKey // issuer spire, kid spire-1, P-256
	login ed25519.PrivateKey
	// The attacker's keys: published only by the attacker's servers.
	evilRSA *rsa.PrivateKey
	evilEC  *ecdsa.PrivateKey
	hmac    []byte // the hmac issuer's real secret
}

var testKeys = sync.OnceValue(func() *testKeySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeySet{hmac: make([]byte, 48)}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.evilRSA, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.spire, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.evilEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.login, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, err = rand.Read(k.hmac)
	must(err)
	return k
})

// fakeClock is the key plane's and the Check server's clock. Its timers
// never fire: no background refresh runs, so every fetch a test sees was
// caused by a Check (or the prefetch at start).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

type stoppedTimer struct{ stopped atomic.Bool }

func (t *stoppedTimer) Stop() bool { return !t.stopped.Swap(true) }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(time.Duration, func()) keys.Timer { return &stoppedTimer{} }

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// harness is one running Check server under attack.
type harness struct {
	clock *fakeClock
	// dir holds the policy file and the files written beside it.
	dir string
	// jwks serves the issuers' keys at /rsa, /ec, /spire and /login, and
	// the attacker's at /evil, which must never be fetched.
	jwks *jwkstest.Server
	// evil is the attacker's own server, named by jku and x5u headers.
	evil   *jwkstest.Server
	srv    *check.Server
	conn   *grpc.ClientConn
	client authv3.AuthorizationClient
}

// harnessConfig is what one harness serves.
type harnessConfig struct {
	// policy is the policy YAML; {{JWKS}} stands for the counting JWKS
	// server's URL.
	policy string
	// files are written beside the policy file, by name.
	files map[string][]byte
	// checkOpts change the Check server's config, in order, after the
	// defaults (the policy, a memory replay store, the harness clock).
	checkOpts []func(*check.Config)
}

// newHarness serves policyYAML; opts may change the Check server's config.
func newHarness(t testing.TB, opts ...func(*check.Config)) *harness {
	t.Helper()
	k := testKeys()
	return newHarnessWith(t, harnessConfig{
		policy:    policyYAML,
		files:     map[string][]byte{"hmac.secret": k.hmac, "rsa.pem": publicPEM(&k.rsa.PublicKey)},
		checkOpts: opts,
	})
}

// newHarnessWith serves cfg.policy through a real gRPC server built as
// extauthz serve builds it. The prefetch at start must fetch each JWKS path
// the policy names once, and no other. When t ends it fails t if the
// attacker's servers saw any request.
func newHarnessWith(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	k := testKeys()
	evilJWKS := jose.JWKS(jose.PublicJWK("rsa-1", "RS256", &k.evilRSA.PublicKey), jose.PublicJWK("ec-1", "ES256", &k.evilEC.PublicKey))
	h := &harness{clock: &fakeClock{now: t0}, dir: t.TempDir()}
	h.jwks = jwkstest.New(t, map[string][]byte{
		"/rsa":   jose.JWKS(jose.PublicJWK("rsa-1", "RS256", &k.rsa.PublicKey)),
		"/ec":    jose.JWKS(jose.PublicJWK("ec-1", "ES256", &k.ec.PublicKey)),
		"/spire": jose.JWKS(jose.PublicJWK("spire-1", "ES256", &k.spire.PublicKey)),
		"/login": jose.JWKS(jose.PublicJWK("login-1", "EdDSA", k.login.Public())),
		"/evil":  evilJWKS,
	})
	h.evil = jwkstest.New(t, map[string][]byte{"/jwks.json": evilJWKS, "/cert.pem": evilCertPEM()})
	t.Cleanup(func() {
		if n := h.evil.Count("") + h.jwks.Count("/evil"); n > 0 {
			t.Errorf("the attacker's key URLs were fetched %d times: %q %q", n, h.evil.Requests(), h.jwks.Requests())
		}
	})

	h.write(t, "policy.yaml", []byte(strings.ReplaceAll(cfg.policy, "{{JWKS}}", h.jwks.URL)))
	for name, b := range cfg.files {
		h.write(t, name, b)
	}
	plane, err := keys.NewPlane(keys.Config{Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{filepath.Join(h.dir, "policy.yaml")}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatalf("policy.Load: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	plane.Prefetch(ctx, snap.RemoteSources())
	cancel()
	for _, p := range []string{"/rsa", "/ec", "/spire", "/login"} {
		want := 0
		if strings.Contains(cfg.policy, "{{JWKS}}"+p+"\n") {
			want = 1
		}
		if n := h.jwks.Count(p); n != want {
			t.Fatalf("prefetch fetched %s %d times, want %d", p, n, want)
		}
	}

	checkCfg := check.Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{MaxEntries: 100_000, Clock: h.clock.Now}),
		Now:    h.clock.Now,
	}
	for _, o := range cfg.checkOpts {
		o(&checkCfg)
	}
	h.srv = check.New(checkCfg)
	h.conn = serve(t, h.srv.Register, check.ServerCodec())
	h.client = authv3.NewAuthorizationClient(h.conn)
	return h
}

// serve serves what register registers over gRPC on 127.0.0.1:0 with opts
// and returns a client connection. The harness registers its Server as
// extauthz serve does, with check.ServerCodec(), as every extauthz server
// must; the codec's own test serves the generated registration without it. The message limit is
// extauthz serve's, larger than gRPC's default: the size tests send 1 MiB
// tokens inside larger requests.
func serve(t testing.TB, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(16 << 20)}, opts...)...)
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		// A Stop before Serve got going makes Serve return
		// ErrServerStopped: a test that never calls the server is that
		// quick at times.
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("grpc Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// write writes a file into the harness's directory, beside the policy.
func (h *harness) write(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// withLimits raises the token and body limits so that oversized inputs
// reach the parser, whose own bounds the size tests then exercise.
func withLimits(tokenBytes, bodyBytes int) func(*check.Config) {
	return func(c *check.Config) {
		c.TokenLimits.MaxTokenBytes = tokenBytes
		c.MaxBodyBytes = bodyBytes
	}
}

// fetches is the number of requests the issuers' JWKS paths have seen.
func (h *harness) fetches() int { return h.jwks.Count("") - h.jwks.Count("/evil") }

// check sends r over gRPC; a gRPC error fails the test, as no deny is one.
func (h *harness) check(t testing.TB, r req) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := h.client.Check(ctx, r.proto())
	if err != nil {
		t.Fatalf("Check returned a gRPC error (a deny is never one): %v", err)
	}
	return resp
}

// req is the HTTP request Envoy describes in a CheckRequest.
type req struct {
	method, host, path string
	// headers in order, any case; a name may repeat.
	headers [][2]string
	body    string
	// headerMap sends header_map (encode_raw_headers: true) instead of
	// headers.
	headerMap bool
	// rawBody sends raw_body (pack_as_bytes: true) instead of body.
	rawBody bool
	// scheme is :scheme, "https" when empty.
	scheme string
	// certificate is attributes.source.certificate: Envoy's URL-encoded
	// PEM of the client certificate (include_peer_certificate), "" for a
	// connection without one.
	certificate string
}

// with returns a copy of r with more headers.
func (r req) with(kv ...string) req {
	r.headers = envoytest.With(r.headers, kv...)
	return r
}

// without returns a copy of r without the header name (any case).
func (r req) without(name string) req {
	r.headers = slices.DeleteFunc(slices.Clone(r.headers), func(kv [2]string) bool { return strings.EqualFold(kv[0], name) })
	return r
}

// raw returns a copy of r sent with Envoy's header_map encoding and raw_body.
func (r req) raw() req {
	r.headerMap, r.rawBody = true, true
	return r
}

// proto builds the CheckRequest as Envoy does (envoytest.Request), with
// names in header_map lower-cased.
func (r req) proto() *authv3.CheckRequest {
	return envoytest.Request{
		ID: "adversarial", Method: r.method, Host: r.host, Path: r.path, Scheme: r.scheme,
		Headers: r.headers, Body: r.body, HeaderMap: r.headerMap, LowerMapNames: true, RawBody: r.rawBody,
		Certificate: r.certificate,
	}.Proto()
}

// form encodes name/value pairs in order, repeats allowed.
func form(kv ...string) string { return envoytest.Form(kv...) }

// assertionBody is a client-credentials token request carrying tok.
func assertionBody(tok string, extra ...string) string {
	return form(append([]string{"grant_type", "client_credentials", "client_assertion_type", assertionURN, "client_assertion", tok}, extra...)...)
}

// tokenReq posts body to the token endpoint as a form.
func tokenReq(body string) req {
	return req{method: "POST", host: "login.example.com", path: "/oauth/token", headers: [][2]string{{"content-type", formType}}, body: body}
}

// assertionReq posts a client assertion to the token endpoint.
func assertionReq(tok string, extra ...string) req { return tokenReq(assertionBody(tok, extra...)) }

// apiReq is a GET of the bearer-protected API with the given Authorization
// value ("" for none).
func apiReq(authorization string) req {
	r := req{method: "GET", host: "api.example.com", path: "/api/reports?year=2030"}
	if authorization != "" {
		r = r.with("authorization", authorization)
	}
	return r
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deny is an expected deny.
type deny struct {
	code   codes.Code
	status int
	reason string
}

// The deny shapes of the spec's table.
func invalidClient(reason string) deny  { return deny{codes.Unauthenticated, 401, reason} }
func invalidToken(reason string) deny   { return deny{codes.Unauthenticated, 401, reason} }
func invalidRequest(reason string) deny { return deny{codes.PermissionDenied, 400, reason} }
func forbidden(reason string) deny      { return deny{codes.PermissionDenied, 403, reason} }

// attack is one adversarial request and the deny it must get.
type attack struct {
	name string
	req  req
	want deny
	// fetches is how many JWKS fetches the attack may cause: 0 for all but
	// an unknown kid after the cooldown.
	fetches int
}

// run sends every attack as a subtest, in order.
func (h *harness) run(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Helper()
			before := h.fetches()
			resp := h.check(t, a.req)
			assertDeny(t, resp, a.want)
			if got := h.fetches() - before; got > a.fetches {
				t.Errorf("the attack caused %d JWKS fetches, want at most %d", got, a.fetches)
			}
		})
	}
}

// assertDeny checks a deny: a non-OK gRPC status of the right code, a
// denied_response of the right HTTP status and no upstream mutation, and
// decision "deny" with the reason code in the dynamic metadata.
func assertDeny(t testing.TB, resp *authv3.CheckResponse, w deny) {
	t.Helper()
	got := codes.Code(resp.GetStatus().GetCode())
	meta := metadata(resp)
	d := resp.GetDeniedResponse()
	ok := got == w.code && got != codes.OK && d != nil && resp.GetOkResponse() == nil &&
		int(d.GetStatus().GetCode()) == w.status && meta["decision"] == "deny" && meta["reason"] == w.reason
	if !ok {
		js, _ := protojson.Marshal(resp)
		t.Errorf("want deny %v / HTTP %d / reason %q; got %v / HTTP %d / metadata %v\n%s",
			w.code, w.status, w.reason, got, d.GetStatus().GetCode(), meta, js)
	}
}

// assertAllow checks an allow that sets exactly set upstream, each header
// with OVERWRITE_IF_EXISTS_OR_ADD, and removes exactly remove (any order).
func assertAllow(t testing.TB, resp *authv3.CheckResponse, set map[string]string, remove []string) {
	t.Helper()
	js, _ := protojson.Marshal(resp)
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil || metadata(resp)["decision"] != "allow" {
		t.Fatalf("want an allow, got\n%s", js)
	}
	ok := resp.GetOkResponse()
	gotSet := map[string]string{}
	for _, h := range ok.GetHeaders() {
		//lint:ignore SA1019 checking that the deprecated append field stays unset
		deprecatedAppend := h.GetAppend() != nil
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || deprecatedAppend || len(h.GetHeader().GetRawValue()) > 0 {
			t.Errorf("header %q is not set with OVERWRITE_IF_EXISTS_OR_ADD and a plain value: %v", h.GetHeader().GetKey(), h)
		}
		if _, dup := gotSet[h.GetHeader().GetKey()]; dup {
			t.Errorf("header %q set twice", h.GetHeader().GetKey())
		}
		gotSet[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if fmt.Sprint(sortedMap(gotSet)) != fmt.Sprint(sortedMap(set)) {
		t.Errorf("upstream headers set = %v, want %v", sortedMap(gotSet), sortedMap(set))
	}
	if got, want := sorted(ok.GetHeadersToRemove()), sorted(remove); !slices.Equal(got, want) {
		t.Errorf("headers_to_remove = %q\nwant                %q", got, want)
	}
}

// removeAllBut is the managed list without the names an allow sets.
func removeAllBut(set map[string]string) []string {
	var out []string
	for _, m := range managed {
		if _, ok := set[m]; !ok {
			out = append(out, m)
		}
	}
	return out
}

func metadata(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		out[k] = v.GetStringValue()
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}

func sortedMap(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

func publicPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// evilCertPEM is a self-signed certificate of the attacker's EC key, named
// after the ec issuer.
var evilCertPEM = sync.OnceValue(func() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: evilCertDER()})
})

var evilCertDER = sync.OnceValue(func() []byte {
	k := testKeys().evilEC
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ec-client"},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	return der
})
