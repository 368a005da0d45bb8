package check_test

// Sender-constrained tokens and explicit typing through the real gRPC
// server: DPoP-bound access tokens (RFC 9449), certificate-bound tokens
// (RFC 8705), JWT-SVIDs bound to the peer's X.509-SVID, DPoP at a token
// endpoint, explicitly typed client assertions and SPIFFE client
// authentication. Proofs come from our Go signer and from npm jose.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

const dpopPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
  - name: partner
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner
  - name: mesh
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: mesh.example
rules:
  - name: dpop-api
    match: {path_prefixes: [/dpop/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [reports]
      dpop: {mode: required}
    headers: {x-client-id: client_id, x-dpop-jkt: dpop_jkt}
  - name: optional-api
    match: {path_prefixes: [/optional/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: optional, algorithms: [ES256, EdDSA]}
    headers: {x-client-id: client_id}
  - name: nonce-api
    match: {path_prefixes: [/nonce/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required, nonce: true}
    headers: {x-client-id: client_id}
  - name: plain-api
    match: {path_prefixes: [/plain/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    headers: {x-client-id: client_id}
  - name: svid-api
    match: {path_prefixes: [/svid/]}
    bearer:
      issuers: [mesh]
      audiences: [api.example.com]
      peer_svid: true
    headers: {x-spiffe-id: spiffe_id}
  - name: strict-token
    match: {paths: [/strict/token]}
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      strict_typing: true
    headers: {x-client-id: client_id}
  - name: svid-token
    match: {paths: [/mesh/token]}
    client_assertion:
      issuers: [mesh]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      peer_svid: true
    headers: {x-client-id: client_id}
  - name: nonce-token
    match: {paths: [/oauth/nonce-token]}
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      dpop: {mode: required, nonce: true}
    headers: {x-client-id: client_id, x-dpop-jkt: dpop_jkt}
  - name: token-endpoint
    match: {paths: [/oauth/v2/oauth-token]}
    client_assertion:
      issuers: [partner, mesh]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      dpop: {mode: optional}
    headers: {x-client-id: client_id, x-dpop-jkt: dpop_jkt}
`

const (
	allAlgs      = "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"
	spiffeURN    = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
	meshWorkload = "spiffe://mesh.example/ns/apps/sa/worker"
)

// dpopManaged is every header dpopPolicy manages, in every spelling.
var dpopManaged = policy.AllSpellings("x-client-id", "x-dpop-jkt", "x-spiffe-id")

// dpopAllowed is an allow of dpopPolicy's rule that sets exactly set.
func dpopAllowed(rule string, set map[string]string) want {
	var remove []string
	for _, m := range dpopManaged {
		if _, ok := set[m]; !ok {
			remove = append(remove, m)
		}
	}
	return want{code: codes.OK, headers: set, remove: remove, rule: rule, reason: "allowed"}
}

// challenged is a 401 of rule with exactly this WWW-Authenticate.
func challenged(rule, reason, challenge string) want {
	return want{code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": challenge}, rule: rule, reason: reason}
}

// clientKey is the DPoP client's key, made once per test binary.
var clientKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// boundToken is an access token of login bound to pub by cnf.jkt.
func boundToken(t *testing.T, pub any) string {
	t.Helper()
	return signLogin(t, loginClaims().set("cnf", map[string]any{"jkt": jose.Thumbprint(pub)}))
}

// proofClaims are a proof's claims for method and uri at now, bound to tok
// ("" for none).
func proofClaims(method, uri, tok string) map[string]any {
	c := map[string]any{"jti": newJTI(), "htm": method, "htu": uri, "iat": now.Unix()}
	if tok != "" {
		c["ath"] = jose.ATH(tok)
	}
	return c
}

// proof is a Go-signed ES256 proof by the client key.
func proof(t *testing.T, c map[string]any) string {
	t.Helper()
	return jose.MustDPoPProof(t, "ES256", clientKey(), nil, nil, c)
}

// dpopReq is a GET of path at api.example.com in the DPoP scheme.
func dpopReq(path, tok, prf string) httpReq {
	r := httpReq{method: "GET", host: "api.example.com", path: path, headers: [][2]string{{"authorization", "DPoP " + tok}}}
	if prf != "" {
		r = r.with("dpop", prf)
	}
	return r
}

// TestDPoPRequired: a rule with dpop: required takes DPoP-bound tokens
// with a valid proof, and answers everything else with DPoP challenges.
func TestDPoPRequired(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	pub := &clientKey().PublicKey
	jkt := jose.Thumbprint(pub)
	const uri = "https://api.example.com/dpop/q1"
	tok := boundToken(t, pub)
	ok := dpopAllowed("dpop-api", map[string]string{"x-client-id": "reporting-app", "x-dpop-jkt": jkt}).by("login", "reporting-app", "")
	deny := func(reason, challenge string) want {
		return challenged("dpop-api", reason, challenge).by("login", "reporting-app", "")
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	replayed := proof(t, proofClaims("GET", uri, tok))
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"a bound token and its proof", dpopReq("/dpop/q1?year=2030", tok, proof(t, proofClaims("GET", uri, tok))), ok},
		{"the query string is not part of htu", dpopReq("/dpop/q1?x=1", tok, proof(t, proofClaims("GET", uri, tok))), ok},
		{"header_map encoding", func() httpReq {
			r := dpopReq("/dpop/q1", tok, proof(t, proofClaims("GET", uri, tok)))
			r.headerMap = true
			return r
		}(), ok},
		{"first use of a proof", dpopReq("/dpop/q1", tok, replayed), ok},
		{"the same proof again", dpopReq("/dpop/q1", tok, replayed), deny("dpop_proof_replayed", `DPoP realm="extauthz", error="invalid_dpop_proof", algs="`+allAlgs+`"`)},
		{"no credential", httpReq{method: "GET", host: "api.example.com", path: "/dpop/q1"}, challenged("dpop-api", "credential_missing", `DPoP realm="extauthz", algs="`+allAlgs+`"`)},
		{"the Bearer scheme", reportsReq("GET", "authorization", "Bearer "+tok).onPath("/dpop/q1"), challenged("dpop-api", "dpop_required", `DPoP realm="extauthz", error="invalid_token", algs="`+allAlgs+`"`)},
		{"no DPoP header", dpopReq("/dpop/q1", tok, ""), deny("dpop_proof_missing", `DPoP realm="extauthz", error="invalid_dpop_proof", algs="`+allAlgs+`"`)},
		{"a proof by another key", dpopReq("/dpop/q1", tok, jose.MustDPoPProof(t, "ES256", other, nil, nil, proofClaims("GET", uri, tok))), deny("dpop_key_mismatch", `DPoP realm="extauthz", error="invalid_token", algs="`+allAlgs+`"`)},
		{"an unbound token with a proof", func() httpReq {
			plain := signLogin(t, loginClaims())
			return dpopReq("/dpop/q1", plain, proof(t, proofClaims("GET", uri, plain)))
		}(), deny("token_not_dpop_bound", `DPoP realm="extauthz", error="invalid_token", algs="`+allAlgs+`"`)},
		{"insufficient scope", func() httpReq {
			narrow := signLogin(t, loginClaims().set("scope", "openid", "cnf", map[string]any{"jkt": jkt}))
			return dpopReq("/dpop/q1", narrow, proof(t, proofClaims("GET", uri, narrow)))
		}(), want{code: codes.PermissionDenied, status: 403, headers: map[string]string{"www-authenticate": `DPoP realm="extauthz", error="insufficient_scope", scope="reports", algs="` + allAlgs + `"`}, rule: "dpop-api", reason: "insufficient_scope"}.by("login", "reporting-app", "")},
		{"an expired token", func() httpReq {
			old := signLogin(t, loginClaims().set("exp", unix(-time.Hour), "cnf", map[string]any{"jkt": jkt}))
			return dpopReq("/dpop/q1", old, proof(t, proofClaims("GET", uri, old)))
		}(), challenged("dpop-api", "token_expired", `DPoP realm="extauthz", error="invalid_token", algs="`+allAlgs+`"`).by("login", "", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// onPath returns r with another path.
func (r httpReq) onPath(p string) httpReq {
	r.path = p
	return r
}

// TestDPoPNodeJose: proofs made by the npm jose library, as a real DPoP
// client makes them, for several kinds of key, with jose's own thumbprint
// and ath, at a resource server and at a token endpoint.
func TestDPoPNodeJose(t *testing.T) {
	node := jose.NodeSigner(t)
	h := newHarness(t, dpopPolicy)
	for _, alg := range []string{"ES256", "ES384", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			key := signerFor(t, alg)
			jkt := jose.Thumbprint(key.Public())
			tok := signLogin(t, loginClaims().set("cnf", map[string]any{"jkt": jkt}))
			claims := map[string]any{"jti": newJTI(), "htm": "GET", "htu": "https://api.example.com/dpop/q1", "iat": now.Unix(), "ath": true}
			prf, nodeJKT := node.DPoPProof(t, alg, key, tok, nil, claims)
			if nodeJKT != jkt {
				t.Fatalf("npm jose's thumbprint %s, ours %s", nodeJKT, jkt)
			}
			want := dpopAllowed("dpop-api", map[string]string{"x-client-id": "reporting-app", "x-dpop-jkt": jkt}).by("login", "reporting-app", "")
			assertResponse(t, h.check(t, dpopReq("/dpop/q1", tok, prf)), want)

			tc := map[string]any{"jti": newJTI(), "htm": "POST", "htu": tokenEndpoint, "iat": now.Unix()}
			tprf, _ := node.DPoPProof(t, alg, key, "", nil, tc)
			r := tokenReq(assertionBody(signPartner(t, partnerClaims()))).with("dpop", tprf)
			assertResponse(t, h.check(t, r), dpopAllowed("token-endpoint", map[string]string{"x-client-id": partnerIss, "x-dpop-jkt": jkt}).by("partner", partnerIss, ""))
		})
	}
}

// signerFor is a client key for alg; RSA reuses a test key, as generating
// one is slow under the race detector.
func signerFor(t *testing.T, alg string) crypto.Signer {
	t.Helper()
	switch alg {
	case "ES384":
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "PS256":
		return testKeys().other
	}
	return jose.P256(t)
}

// TestDPoPOptional: dpop: optional takes unbound tokens as Bearer and bound
// ones with their proof; a bound token is never a plain bearer token.
func TestDPoPOptional(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	pub := &clientKey().PublicKey
	const uri = "https://api.example.com/optional/x"
	bound := boundToken(t, pub)
	ok := dpopAllowed("optional-api", map[string]string{"x-client-id": "reporting-app"}).by("login", "reporting-app", "")
	get := func(kv ...string) httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/optional/x"}.with(kv...)
	}
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"an unbound Bearer token", get("authorization", "Bearer "+signLogin(t, loginClaims())), ok},
		{"a bound token with its proof", get("authorization", "DPoP "+bound, "dpop", proof(t, proofClaims("GET", uri, bound))), ok},
		{"a bound token as Bearer", get("authorization", "Bearer "+bound), challenged("optional-api", "bound_token_without_proof", `Bearer realm="extauthz", error="invalid_token"`).by("login", "reporting-app", "")},
		{"a bound token as Bearer, a proof beside it", get("authorization", "Bearer "+bound, "dpop", proof(t, proofClaims("GET", uri, bound))), challenged("optional-api", "bound_token_without_proof", `Bearer realm="extauthz", error="invalid_token"`).by("login", "reporting-app", "")},
		{"no credential: both challenges", get(), challenged("optional-api", "credential_missing", `Bearer realm="extauthz", DPoP realm="extauthz", algs="ES256 EdDSA"`)},
		{"a proof outside the rule's algorithms", get("authorization", "DPoP "+boundToken(t, testKeys().other.Public()), "dpop", jose.MustDPoPProof(t, "PS256", testKeys().other, nil, nil, proofClaims("GET", uri, ""))), challenged("optional-api", "dpop_algorithm_not_allowed", `DPoP realm="extauthz", error="invalid_dpop_proof", algs="ES256 EdDSA"`).by("login", "reporting-app", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestBoundTokensWithoutDPoP: at a rule that takes no DPoP, a token bound
// to a key is refused, an unknown cnf member is refused, and the DPoP
// scheme is no credential at all.
func TestBoundTokensWithoutDPoP(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	pub := &clientKey().PublicKey
	bearer := func(c claims) httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/plain/x", headers: [][2]string{{"authorization", "Bearer " + signLogin(t, c)}}}
	}
	bad := func(reason string) want {
		return challenged("plain-api", reason, `Bearer realm="extauthz", error="invalid_token"`).by("login", "reporting-app", "")
	}
	bound := boundToken(t, pub)
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"an unbound token", bearer(loginClaims()), dpopAllowed("plain-api", map[string]string{"x-client-id": "reporting-app"}).by("login", "reporting-app", "")},
		{"a DPoP-bound token as Bearer", bearer(loginClaims().set("cnf", map[string]any{"jkt": jose.Thumbprint(pub)})), bad("bound_token_without_proof")},
		{"the DPoP scheme", httpReq{method: "GET", host: "api.example.com", path: "/plain/x", headers: [][2]string{{"authorization", "DPoP " + bound}, {"dpop", proof(t, proofClaims("GET", "https://api.example.com/plain/x", bound))}}}, challenged("plain-api", "credential_missing", `Bearer realm="extauthz"`)},
		{"cnf with an unknown member", bearer(loginClaims().set("cnf", map[string]any{"jwk": map[string]any{"kty": "EC"}})), bad("cnf_unsupported")},
		{"cnf with x5t (SHA-1)", bearer(loginClaims().set("cnf", map[string]any{"x5t": "abc"})), bad("cnf_unsupported")},
		{"cnf.jkt not a string", bearer(loginClaims().set("cnf", map[string]any{"jkt": 7})), bad("cnf_unsupported")},
		{"cnf empty", bearer(loginClaims().set("cnf", map[string]any{})), bad("cnf_unsupported")},
		{"cnf a string", bearer(loginClaims().set("cnf", "jkt")), bad("cnf_unsupported")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestDPoPNonce: a rule with nonces answers a proof without one with
// use_dpop_nonce and a DPoP-Nonce, takes the nonce it gave, and gives the
// current nonce on every allow.
func TestDPoPNonce(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	pub := &clientKey().PublicKey
	const uri = "https://api.example.com/nonce/x"
	tok := boundToken(t, pub)
	req := func(c map[string]any) httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/nonce/x", headers: [][2]string{{"authorization", "DPoP " + tok}, {"dpop", proof(t, c)}}}
	}
	need := challenged("nonce-api", "dpop_nonce_required", `DPoP realm="extauthz", error="use_dpop_nonce", algs="`+allAlgs+`"`).by("login", "reporting-app", "")
	need.headers["dpop-nonce"] = anyNonce
	resp := h.check(t, req(proofClaims("GET", uri, tok)))
	assertResponse(t, resp, need)
	var nonce string
	for _, hv := range resp.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == "dpop-nonce" {
			nonce = hv.GetHeader().GetValue()
		}
	}
	c := proofClaims("GET", uri, tok)
	c["nonce"] = nonce
	ok := dpopAllowed("nonce-api", map[string]string{"x-client-id": "reporting-app"}).by("login", "reporting-app", "")
	ok.downstream = map[string]string{"dpop-nonce": anyNonce}
	assertResponse(t, h.check(t, req(c)), ok)
	forged := proofClaims("GET", uri, tok)
	forged["nonce"] = base64.RawURLEncoding.EncodeToString(make([]byte, 24))
	assertResponse(t, h.check(t, req(forged)), need)
}

// TestTokenEndpointDPoP: a proof beside a client assertion is checked when
// sent, its thumbprint goes upstream, and its errors take the authorization
// server's shape (RFC 9449 §5: 400 invalid_dpop_proof).
func TestTokenEndpointDPoP(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	jkt := jose.Thumbprint(&clientKey().PublicKey)
	req := func(prf string) httpReq {
		r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
		if prf != "" {
			r = r.with("dpop", prf)
		}
		return r
	}
	badProof := want{code: codes.PermissionDenied, status: 400, headers: jsonHeaders, body: `{"error":"invalid_dpop_proof"}`, rule: "token-endpoint"}.by("partner", partnerIss, "")
	withReason := func(w want, reason string) want {
		w.reason = reason
		return w
	}
	assertResponse(t, h.check(t, req(proof(t, proofClaims("POST", tokenEndpoint, "")))), dpopAllowed("token-endpoint", map[string]string{"x-client-id": partnerIss, "x-dpop-jkt": jkt}).by("partner", partnerIss, ""))
	assertResponse(t, h.check(t, req("")), dpopAllowed("token-endpoint", map[string]string{"x-client-id": partnerIss}).by("partner", partnerIss, ""))
	assertResponse(t, h.check(t, req(proof(t, proofClaims("GET", tokenEndpoint, "")))), withReason(badProof, "dpop_htm_mismatch"))
	assertResponse(t, h.check(t, req(proof(t, proofClaims("POST", "https://login.example.com/other", "")))), withReason(badProof, "dpop_htu_mismatch"))
}

// TestAssertionTyping: explicit typing of client assertions
// (draft-ietf-oauth-rfc7523bis). By default typ may be absent, JWT or
// client-authentication+jwt and nothing else; strict_typing requires the
// explicit type and refuses access-token claims.
func TestAssertionTyping(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	sign := func(typ any, c claims) string {
		return jose.MustSign(t, "PS256", testKeys().partner, map[string]any{"kid": "partner-1", "typ": typ}, c)
	}
	at := func(path, tok string) httpReq { return tokenReq(assertionBody(tok)).onPath(path) }
	const ep = "/oauth/v2/oauth-token"
	okDefault := dpopAllowed("token-endpoint", map[string]string{"x-client-id": partnerIss}).by("partner", partnerIss, "")
	okStrict := dpopAllowed("strict-token", map[string]string{"x-client-id": partnerIss}).by("partner", partnerIss, "")
	refused := func(rule, reason string) want { return invalidClient(reason).onRule(rule).by("partner", "", "") }
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"typ JWT", at(ep, sign("JWT", partnerClaims())), okDefault},
		{"no typ", at(ep, jose.MustSign(t, "PS256", testKeys().partner, map[string]any{"kid": "partner-1"}, partnerClaims())), okDefault},
		{"typ client-authentication+jwt", at(ep, sign("client-authentication+jwt", partnerClaims())), okDefault},
		{"typ application/client-authentication+jwt", at(ep, sign("application/client-authentication+jwt", partnerClaims())), okDefault},
		{"an access token (at+jwt) as an assertion", at(ep, sign("at+jwt", partnerClaims().set("scope", "reports", "client_id", partnerIss))), refused("token-endpoint", "token_type_invalid")},
		{"application/at+jwt", at(ep, sign("application/at+jwt", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"a DPoP proof's type", at(ep, sign("dpop+jwt", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"a security event token", at(ep, sign("secevent+jwt", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"a logout token", at(ep, sign("logout+jwt", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"any other +jwt type", at(ep, sign("foo+jwt", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"JOSE from an ordinary issuer", at(ep, sign("JOSE", partnerClaims())), refused("token-endpoint", "token_type_invalid")},
		{"strict: the explicit type", at("/strict/token", sign("client-authentication+jwt", partnerClaims())), okStrict},
		{"strict: typ JWT", at("/strict/token", sign("JWT", partnerClaims())), refused("strict-token", "token_type_invalid")},
		{"strict: no typ", at("/strict/token", jose.MustSign(t, "PS256", testKeys().partner, map[string]any{"kid": "partner-1"}, partnerClaims())), refused("strict-token", "token_type_invalid")},
		{"strict: a scope claim", at("/strict/token", sign("client-authentication+jwt", partnerClaims().set("scope", "reports"))), refused("strict-token", "assertion_has_access_token_claims")},
		{"strict: a client_id claim", at("/strict/token", sign("client-authentication+jwt", partnerClaims().set("client_id", partnerIss))), refused("strict-token", "assertion_has_access_token_claims")},
		{"strict: an scp claim", at("/strict/token", sign("client-authentication+jwt", partnerClaims().set("scp", []any{"reports"}))), refused("strict-token", "assertion_has_access_token_claims")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestSPIFFEClientAuth: the jwt-spiffe assertion type of
// draft-ietf-oauth-spiffe-client-auth carries a JWT-SVID, with iss and jti
// optional; the client id is the SPIFFE ID when no client_ids map it.
func TestSPIFFEClientAuth(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	svid := signSpire(t, claims{"sub": meshWorkload, "aud": tokenEndpoint, "iat": unix(0), "exp": unix(5 * time.Minute)})
	body := func(typ, tok string) httpReq {
		return tokenReq(form("grant_type", "client_credentials", "client_assertion_type", typ, "client_assertion", tok))
	}
	ok := dpopAllowed("token-endpoint", map[string]string{"x-client-id": meshWorkload}).by("mesh", meshWorkload, meshWorkload)
	assertResponse(t, h.check(t, body(spiffeURN, svid)), ok)
	// The SVID has no jti and SPIRE hands it out again: presented twice, it
	// is taken twice (replay protection is off for SVID issuers).
	assertResponse(t, h.check(t, body(spiffeURN, svid)), ok)
	// The jwt-spiffe type with an ordinary assertion is refused.
	assertResponse(t, h.check(t, body(spiffeURN, signPartner(t, partnerClaims()))), invalidClient("assertion_type_unsupported").by("partner", "", ""))
	// An SVID for another audience.
	other := signSpire(t, claims{"sub": meshWorkload, "aud": "https://elsewhere.example/token", "iat": unix(0), "exp": unix(5 * time.Minute)})
	assertResponse(t, h.check(t, body(spiffeURN, other)), invalidClient("audience_invalid").by("mesh", "", meshWorkload))
}

// TestTokenEndpointNonceRetry: told use_dpop_nonce, a client retries with
// the nonce and the same assertion (RFC 9449 §8): the proof is checked
// before the assertion's jti is spent.
func TestTokenEndpointNonceRetry(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	const htu = "https://login.example.com/oauth/nonce-token"
	assertion := signPartner(t, partnerClaims())
	req := func(c map[string]any) httpReq {
		return tokenReq(assertionBody(assertion)).onPath("/oauth/nonce-token").with("dpop", proof(t, c))
	}
	need := want{code: codes.PermissionDenied, status: 400, headers: map[string]string{"content-type": "application/json", "cache-control": "no-store", "dpop-nonce": anyNonce}, body: `{"error":"use_dpop_nonce"}`, rule: "nonce-token", reason: "dpop_nonce_required"}.by("partner", partnerIss, "")
	resp := h.check(t, req(proofClaims("POST", htu, "")))
	assertResponse(t, resp, need)
	c := proofClaims("POST", htu, "")
	for _, hv := range resp.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == "dpop-nonce" {
			c["nonce"] = hv.GetHeader().GetValue()
		}
	}
	ok := dpopAllowed("nonce-token", map[string]string{"x-client-id": partnerIss, "x-dpop-jkt": jose.Thumbprint(&clientKey().PublicKey)}).by("partner", partnerIss, "")
	ok.downstream = map[string]string{"dpop-nonce": anyNonce}
	assertResponse(t, h.check(t, req(c)), ok)
	// The assertion is spent now: a third use is a replay.
	c2 := proofClaims("POST", htu, "")
	c2["nonce"] = c["nonce"]
	assertResponse(t, h.check(t, req(c2)), invalidClient("replayed").onRule("nonce-token").by("partner", partnerIss, ""))
}

// TestDPoPReplayFailOpen: with the replay store down, a proof fails closed
// (503), or with ReplayFailOpen is allowed with the reason saying why.
func TestDPoPReplayFailOpen(t *testing.T) {
	pub := &clientKey().PublicKey
	const uri = "https://api.example.com/dpop/q1"
	for _, open := range []bool{false, true} {
		h := newHarness(t, dpopPolicy, func(c *check.Config) {
			c.Replay = brokenRedis(t)
			c.ReplayFailOpen = open
		})
		tok := boundToken(t, pub)
		resp := h.check(t, dpopReq("/dpop/q1", tok, proof(t, proofClaims("GET", uri, tok))))
		if open {
			w := dpopAllowed("dpop-api", map[string]string{"x-client-id": "reporting-app", "x-dpop-jkt": jose.Thumbprint(pub)}).by("login", "reporting-app", "")
			w.reason = "replay_store_unavailable"
			assertResponse(t, resp, w)
		} else {
			w := unavailableWant("replay_store_unavailable")
			w.rule = "dpop-api"
			w = w.by("login", "reporting-app", "")
			assertResponse(t, resp, w)
		}
	}
}

// TestDPoPProofSpentLast: a proof's jti costs a replay-store entry only
// once everything else holds, so a token holder cannot fill the store with
// proofs of fresh keys that fail their binding, nor a used assertion with
// fresh proofs beside it.
func TestDPoPProofSpentLast(t *testing.T) {
	store := replay.NewMemory(replay.MemoryConfig{MaxEntries: 1000, Clock: func() time.Time { return now }})
	h := newHarness(t, dpopPolicy, func(c *check.Config) { c.Replay = store })
	const uri = "https://api.example.com/dpop/q1"
	tok := boundToken(t, &clientKey().PublicKey)
	for i := 0; i < 3; i++ {
		other := jose.P256(t)
		resp := h.check(t, dpopReq("/dpop/q1", tok, jose.MustDPoPProof(t, "ES256", other, nil, nil, proofClaims("GET", uri, tok))))
		if got := metadataOf(resp)["reason"]; got != "dpop_key_mismatch" {
			t.Fatalf("reason %q, want dpop_key_mismatch", got)
		}
	}
	if n := store.Len(); n != 0 {
		t.Fatalf("proofs failing their binding left %d replay entries, want 0", n)
	}
	// A used assertion with fresh proofs: one entry, the assertion's.
	assertion := signPartner(t, partnerClaims())
	for i := 0; i < 3; i++ {
		r := tokenReq(assertionBody(assertion)).with("dpop", jose.MustDPoPProof(t, "ES256", jose.P256(t), nil, nil, proofClaims("POST", tokenEndpoint, "")))
		h.check(t, r)
	}
	if n := store.Len(); n != 2 {
		t.Fatalf("a used assertion with fresh proofs left %d replay entries, want 2 (the assertion and its first proof)", n)
	}
}

func metadataOf(resp interface {
	GetDynamicMetadata() *structpb.Struct
}) map[string]string {
	out := map[string]string{}
	for k, v := range resp.GetDynamicMetadata().GetFields() {
		out[k] = v.GetStringValue()
	}
	return out
}
