package e2e_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

const (
	tokenEndpoint = "https://login.example.com/oauth/v2/oauth-token"
	partnerID     = "partner-api-client"
	spireIssuer   = "https://oidc-discovery.example.org"
	workloadSVID  = "spiffe://example.org/ns/applications/sa/workload-client"
)

// tokenEndpointPolicy is the spec's token-endpoint example: a B2B partner
// that signs its own assertions, and SPIRE JWT-SVIDs through its OIDC
// discovery provider's keys. {{JWKS}} is the test's key server.
const tokenEndpointPolicy = `version: v1
issuers:
  - name: partner-acme
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner/jwks
    algorithms: [PS256]
  - name: spire
    issuer: https://oidc-discovery.example.org
    jwks_uri: {{JWKS}}/spire/keys
    spiffe_trust_domain: example.org
    client_ids:
      spiffe://example.org/ns/applications/sa/workload-client: jwt_assertion_client
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner-acme, spire]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
default_action: deny
`

// tokenEndpointEnv is a running extauthz with tokenEndpointPolicy, the
// partner's PS256 key and SPIRE's ES256 key.
type tokenEndpointEnv struct {
	srv     *server
	node    *jose.Node
	partner *rsa.PrivateKey
	spire   crypto.Signer
}

func newTokenEndpointEnv(t *testing.T) *tokenEndpointEnv {
	t.Helper()
	node := jose.NodeSigner(t)
	partner, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spire := jose.P256(t)
	jwks := map[string][]byte{
		"/partner/jwks": jose.JWKS(jose.PublicJWK("partner-key-1", "PS256", &partner.PublicKey)),
		"/spire/keys":   jose.JWKS(jose.PublicJWK("spire-key-1", "", spire.Public())),
	}
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := jwks[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(doc)
	}))
	t.Cleanup(keySrv.Close)
	file := writeFile(t, "policy.yaml", strings.ReplaceAll(tokenEndpointPolicy, "{{JWKS}}", keySrv.URL))
	return &tokenEndpointEnv{srv: startServer(t, file), node: node, partner: partner, spire: spire}
}

// partnerAssertion is the partner's client assertion, signed by npm jose:
// iss = sub = client id, aud the token endpoint, two minutes to live.
func (e *tokenEndpointEnv) partnerAssertion(t *testing.T, extra map[string]any) string {
	t.Helper()
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": partnerID, "sub": partnerID, "aud": tokenEndpoint,
		"jti": newJTI(), "iat": now, "exp": now + 120,
	}
	for k, v := range extra {
		claims[k] = v
	}
	return e.node.Sign(t, "PS256", e.partner, map[string]any{"kid": "partner-key-1", "typ": "JWT"}, claims)
}

// tokenRequest is the CheckRequest Envoy sends for a client-credentials
// token request carrying the assertion, with the client's attempt to set
// the identity headers itself.
func tokenRequest(assertion string) *authv3.CheckRequest {
	body := "grant_type=client_credentials" +
		"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
		"&client_assertion=" + url.QueryEscape(assertion)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Host: "login.example.com", Path: "/oauth/v2/oauth-token", Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{
				":authority": "login.example.com", ":method": "POST", ":path": "/oauth/v2/oauth-token",
				"content-type": "application/x-www-form-urlencoded",
				"x-client-id":  "admin", "x-is-agent": "true", "x_spiffe_id": "spiffe://example.org/admin",
			},
			Body: body,
			Size: int64(len(body)),
		}},
	}}
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// assertAllowed checks an allow exactly: the headers set (overwriting), the
// headers removed, and the decision metadata.
func assertAllowed(t *testing.T, resp *authv3.CheckResponse, set map[string]string, remove []string, meta map[string]string) {
	t.Helper()
	defer logOnFailure(t, resp)
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.OK {
		t.Fatalf("status = %v, want OK", c)
	}
	ok := resp.GetOkResponse()
	got := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append_action %v, want OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey(), h.GetAppendAction())
		}
		if _, dup := got[h.GetHeader().GetKey()]; dup {
			t.Errorf("header %s set twice", h.GetHeader().GetKey())
		}
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if !mapsEqual(got, set) {
		t.Errorf("headers set = %v, want %v", got, set)
	}
	gotRemove := slices.Clone(ok.GetHeadersToRemove())
	sort.Strings(gotRemove)
	sort.Strings(remove)
	if !slices.Equal(gotRemove, remove) {
		t.Errorf("headers_to_remove = %q, want %q", gotRemove, remove)
	}
	assertMeta(t, resp, meta)
}

// assertDenied checks a deny: gRPC code, HTTP status, body and metadata.
func assertDenied(t *testing.T, resp *authv3.CheckResponse, code codes.Code, status int, body string, meta map[string]string) {
	t.Helper()
	defer logOnFailure(t, resp)
	if c := codes.Code(resp.GetStatus().GetCode()); c != code {
		t.Errorf("status = %v, want %v", c, code)
	}
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetOkResponse() != nil {
		t.Fatalf("want a denied_response only")
	}
	if got := int(d.GetStatus().GetCode()); got != status {
		t.Errorf("HTTP status = %d, want %d", got, status)
	}
	if d.GetBody() != body {
		t.Errorf("body = %q, want %q", d.GetBody(), body)
	}
	assertMeta(t, resp, meta)
}

func assertMeta(t *testing.T, resp *authv3.CheckResponse, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		got[k] = v.GetStringValue()
	}
	if !mapsEqual(got, want) {
		t.Errorf("dynamic_metadata = %v\nwant               %v", got, want)
	}
}

func logOnFailure(t *testing.T, resp *authv3.CheckResponse) {
	if t.Failed() {
		js, _ := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		t.Logf("response:\n%s", js)
	}
}

// removedExcept is what an allow under tokenEndpointPolicy removes when it
// sets the headers named: every other spelling (each separator - or _) of
// the policy's managed headers.
func removedExcept(set ...string) []string {
	var out []string
	for _, name := range policy.AllSpellings("x-client-id", "x-is-agent", "x-spiffe-id") {
		if !slices.Contains(set, name) {
			out = append(out, name)
		}
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func meta(decision, reason, issuer, clientID, spiffeID string) map[string]string {
	return map[string]string{
		"decision": decision, "rule": "token-endpoint", "reason": reason,
		"issuer": issuer, "client_id": clientID, "spiffe_id": spiffeID,
	}
}

// TestCurityB2BClientAssertion is Curity's B2B flow: a partner authenticates
// at the token endpoint with a PS256 client assertion (RFC 7523) signed by
// an independent library, and the same assertion cannot be used twice.
func TestCurityB2BClientAssertion(t *testing.T) {
	t.Parallel()
	e := newTokenEndpointEnv(t)
	req := tokenRequest(e.partnerAssertion(t, nil))

	assertAllowed(t, e.srv.check(t, req),
		map[string]string{"x-client-id": partnerID, "x-is-agent": "false"},
		removedExcept("x-client-id", "x-is-agent"),
		meta("allow", "allowed", "partner-acme", partnerID, ""))

	assertDenied(t, e.srv.check(t, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		meta("deny", "replayed", "partner-acme", partnerID, ""))
}

// TestAIAgentHeader: the x-is-agent header follows the assertion's
// client_type claim.
func TestAIAgentHeader(t *testing.T) {
	t.Parallel()
	e := newTokenEndpointEnv(t)
	req := tokenRequest(e.partnerAssertion(t, map[string]any{"client_type": "ai-agent"}))
	assertAllowed(t, e.srv.check(t, req),
		map[string]string{"x-client-id": partnerID, "x-is-agent": "true"},
		removedExcept("x-client-id", "x-is-agent"),
		meta("allow", "allowed", "partner-acme", partnerID, ""))
}

// TestJWTSVIDClientCredential: a workload authenticates with its JWT-SVID
// (ES256, issued through SPIRE's OIDC discovery provider); its SPIFFE ID is
// mapped to the client id, and both reach the upstream.
func TestJWTSVIDClientCredential(t *testing.T) {
	t.Parallel()
	e := newTokenEndpointEnv(t)
	now := time.Now().Unix()
	svid := e.node.Sign(t, "ES256", e.spire, map[string]any{"kid": "spire-key-1", "typ": "JWT"}, map[string]any{
		"iss": spireIssuer, "sub": workloadSVID, "aud": []any{tokenEndpoint}, "iat": now, "exp": now + 300,
	})
	want := func(resp *authv3.CheckResponse) {
		t.Helper()
		assertAllowed(t, resp,
			map[string]string{"x-client-id": "jwt_assertion_client", "x-spiffe-id": workloadSVID, "x-is-agent": "false"},
			removedExcept("x-client-id", "x-is-agent", "x-spiffe-id"),
			meta("allow", "allowed", "spire", "jwt_assertion_client", workloadSVID))
	}
	want(e.srv.check(t, tokenRequest(svid)))
	// SPIRE agents hand out the same SVID repeatedly: no replay protection
	// for JWT-SVID issuers unless the rule asks for it.
	want(e.srv.check(t, tokenRequest(svid)))
}
