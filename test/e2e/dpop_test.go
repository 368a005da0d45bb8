package e2e_test

// Sender-constrained tokens through the real binary: DPoP proofs (RFC 9449)
// made by the npm jose library, replayed and nonced across replicas that
// share a real redis-server and a nonce secret; certificate-bound tokens
// (RFC 8705) with the client certificate as Envoy forwards it; and the
// dpop block's load errors as `extauthz validate` prints them.

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/redistest"
	"github.com/extauthz/extauthz/test/jose"
)

const (
	dpopAudience = "https://api.example.com"
	dpopIssuer   = "https://login.example.com"
	dpopKID      = "login-1"
	dpopClientID = "dpop-app"
	// dpopAlgs is the proof algorithms of the policy's dpop blocks, as the
	// challenges list them.
	dpopAlgs = "ES256 EdDSA"
)

// dpopPolicy has three bearer rules for one issuer whose keys are inline
// ({{JWKS}}): DPoP required, DPoP required with server nonces, and no DPoP
// (certificate-bound tokens only need the forwarded certificate).
const dpopPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks: {{JWKS}}
    algorithms: [ES256]
rules:
  - name: dpop-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/dpop/]
    bearer:
      issuers: [login]
      audiences: [https://api.example.com]
      dpop:
        mode: required
        algorithms: [ES256, EdDSA]
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
  - name: nonce-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/nonce/]
    bearer:
      issuers: [login]
      audiences: [https://api.example.com]
      dpop:
        mode: required
        algorithms: [ES256, EdDSA]
        nonce: true
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
  - name: mtls-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/mtls/]
    bearer:
      issuers: [login]
      audiences: [https://api.example.com]
    headers:
      x-client-id: client_id
default_action: deny
`

// dpopEnv is the access-token issuer's key, a client's DPoP key and the
// policy file that trusts the issuer.
type dpopEnv struct {
	issuer *ecdsa.PrivateKey
	client *ecdsa.PrivateKey
	jkt    string // RFC 7638 thumbprint of client's public key
	policy string
	node   *jose.Node
}

func newDPoPEnv(t *testing.T) *dpopEnv {
	t.Helper()
	e := &dpopEnv{issuer: jose.P256(t), client: jose.P256(t), node: jose.NodeSigner(t)}
	e.jkt = jose.Thumbprint(e.client.Public())
	e.policy = writeFile(t, "policy.yaml", dpopPolicyFor(e.issuer))
	return e
}

// dpopPolicyFor is dpopPolicy trusting issuer's public key.
func dpopPolicyFor(issuer *ecdsa.PrivateKey) string {
	jwks := string(jose.JWKS(jose.PublicJWK(dpopKID, "ES256", issuer.Public())))
	return strings.ReplaceAll(dpopPolicy, "{{JWKS}}", jwks)
}

// accessToken is an at+jwt for the API, issued now, confirmed by cnf
// (nil for an unbound token).
func (e *dpopEnv) accessToken(t *testing.T, cnf map[string]any) string {
	t.Helper()
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": dpopIssuer, "sub": "user-1", "aud": dpopAudience, "client_id": dpopClientID,
		"scope": "read", "jti": newJTI(), "iat": now, "exp": now + 300,
	}
	if cnf != nil {
		claims["cnf"] = cnf
	}
	return jose.MustSign(t, "ES256", e.issuer, map[string]any{"kid": dpopKID, "typ": "at+jwt"}, claims)
}

// nodeProof is a proof by the client's key made by npm jose for a GET of
// htu, issued now, with ath computed by node; nonce "" sends none. It
// checks that jose's thumbprint is ours.
func (e *dpopEnv) nodeProof(t *testing.T, tok, htu, nonce string) string {
	t.Helper()
	claims := map[string]any{"jti": newJTI(), "htm": "GET", "htu": htu, "iat": time.Now().Unix(), "ath": true}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	proof, jkt := e.node.DPoPProof(t, "ES256", e.client, tok, nil, claims)
	if jkt != e.jkt {
		t.Fatalf("npm jose thumbprint %q, ours %q", jkt, e.jkt)
	}
	return proof
}

// goProof is nodeProof made by our Go signer, without a nonce.
func (e *dpopEnv) goProof(t *testing.T, tok, htu string) string {
	t.Helper()
	return jose.MustDPoPProof(t, "ES256", e.client, nil, nil, map[string]any{
		"jti": newJTI(), "htm": "GET", "htu": htu, "iat": time.Now().Unix(), "ath": jose.ATH(tok),
	})
}

// apiRequest is Envoy's CheckRequest for a GET of https://api.example.com
// + path (with a query, which htu leaves out), with the given Authorization
// ("" for none) and DPoP header ("" for none).
func apiRequest(path, authorization, proof string) *authv3.CheckRequest {
	req := plainRequest("api.example.com", path+"?page=2")
	h := req.Attributes.Request.Http.Headers
	h[":scheme"] = "https"
	h["x-client-id"] = "forged"
	if authorization != "" {
		h["authorization"] = authorization
	}
	if proof != "" {
		h["dpop"] = proof
	}
	return req
}

// dpopManaged is every header the policy manages; an allow removes each
// spelling of them it does not set.
var dpopManaged = []string{"x-client-id", "x-dpop-jkt"}

func removedBesides(set map[string]string) []string {
	var out []string
	for _, name := range policy.AllSpellings(dpopManaged...) {
		if _, ok := set[name]; !ok {
			out = append(out, name)
		}
	}
	return out
}

func dpopMeta(decision, rule, reason string) map[string]string {
	return map[string]string{
		"decision": decision, "rule": rule, "reason": reason,
		"issuer": "login", "client_id": dpopClientID, "spiffe_id": "",
	}
}

// assertChallenge checks a denied response's WWW-Authenticate exactly.
func assertChallenge(t *testing.T, resp *authv3.CheckResponse, want string) {
	t.Helper()
	if got, ok := deniedHeader(resp, "www-authenticate"); !ok || got != want {
		t.Errorf("WWW-Authenticate = %q (present %v), want %q", got, ok, want)
	}
}

// okNonce is the dpop-nonce an allow adds to the response to the client.
func okNonce(resp *authv3.CheckResponse) string {
	for _, h := range resp.GetOkResponse().GetResponseHeadersToAdd() {
		if h.GetHeader().GetKey() == "dpop-nonce" {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// startDPoPReplicas starts a redis-server and two replicas sharing it and
// --dpop-nonce-secret-file secretFile, both serving e.policy.
func startDPoPReplicas(t *testing.T, e *dpopEnv, secretFile string) (a, b *server) {
	t.Helper()
	redis := redistest.Start(t)
	flags := []string{"--replay-store", redis.URL(), "--replay-timeout", "500ms", "--dpop-nonce-secret-file", secretFile}
	return startServer(t, e.policy, flags...), startServer(t, e.policy, flags...)
}

func nonceSecretFile(t *testing.T) string {
	t.Helper()
	secret := make([]byte, 48)
	rand.Read(secret)
	return writeFile(t, "dpop-nonce.secret", string(secret))
}

// TestDPoPReplayAcrossReplicas: a DPoP-bound token (cnf.jkt) with a proof
// made by npm jose is allowed by replica A; the same proof at replica B,
// which shares A's redis-server, is a replay; a fresh proof to B is allowed.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newDPoPEnv(t)
	a, b := startDPoPReplicas(t, e, nonceSecretFile(t))
	ca, cb := authv3.NewAuthorizationClient(dial(t, a)), authv3.NewAuthorizationClient(dial(t, b))
	const htu = "https://api.example.com/dpop/orders"
	tok := e.accessToken(t, map[string]any{"jkt": e.jkt})
	allowed := map[string]string{"x-client-id": dpopClientID, "x-dpop-jkt": e.jkt}

	req := apiRequest("/dpop/orders", "DPoP "+tok, e.nodeProof(t, tok, htu, ""))
	assertAllowed(t, checkOn(t, ca, a, req), allowed, removedBesides(allowed), dpopMeta("allow", "dpop-api", "allowed"))

	resp := checkOn(t, cb, b, req)
	assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "dpop-api", "dpop_proof_replayed"))
	assertChallenge(t, resp, `DPoP realm="extauthz", error="invalid_dpop_proof", algs="`+dpopAlgs+`"`)

	// The token is not single use; only its proofs are.
	req = apiRequest("/dpop/orders", "DPoP "+tok, e.goProof(t, tok, htu))
	assertAllowed(t, checkOn(t, cb, b, req), allowed, removedBesides(allowed), dpopMeta("allow", "dpop-api", "allowed"))
	// And that one is spent at A too.
	resp = checkOn(t, ca, a, req)
	assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "dpop-api", "dpop_proof_replayed"))

	t.Run("without a good proof", func(t *testing.T) {
		invalidToken := `DPoP realm="extauthz", error="invalid_token", algs="` + dpopAlgs + `"`
		invalidProof := `DPoP realm="extauthz", error="invalid_dpop_proof", algs="` + dpopAlgs + `"`
		thief, unbound := jose.P256(t), e.accessToken(t, nil)
		for _, tc := range []struct {
			name, auth, proof, reason, challenge string
			meta                                 map[string]string
		}{
			{"Bearer scheme", "Bearer " + tok, "", "dpop_required", invalidToken,
				map[string]string{"decision": "deny", "rule": "dpop-api", "reason": "dpop_required", "issuer": "", "client_id": "", "spiffe_id": ""}},
			{"no DPoP header", "DPoP " + tok, "", "dpop_proof_missing", invalidProof, nil},
			{"proof by another key", "DPoP " + tok, jose.MustDPoPProof(t, "ES256", thief, nil, nil, map[string]any{
				"jti": newJTI(), "htm": "GET", "htu": htu, "iat": time.Now().Unix(), "ath": jose.ATH(tok),
			}), "dpop_key_mismatch", invalidToken, nil},
			{"proof for another URI", "DPoP " + tok, e.nodeProof(t, tok, "https://api.example.com/dpop/other", ""), "dpop_htu_mismatch", invalidProof, nil},
			{"unbound token", "DPoP " + unbound, e.goProof(t, unbound, htu), "token_not_dpop_bound", invalidToken, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := tc.meta
				if m == nil {
					m = dpopMeta("deny", "dpop-api", tc.reason)
				}
				resp := checkOn(t, ca, a, apiRequest("/dpop/orders", tc.auth, tc.proof))
				assertDenied(t, resp, codes.Unauthenticated, 401, "", m)
				assertChallenge(t, resp, tc.challenge)
			})
		}
	})
}

// TestDPoPNonceAcrossReplicas: replicas sharing --dpop-nonce-secret-file
// accept each other's nonces; a replica with its own secret does not.
func TestDPoPNonceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newDPoPEnv(t)
	a, b := startDPoPReplicas(t, e, nonceSecretFile(t))
	c := startServer(t, e.policy) // its own random secret, memory replay store
	ca, cb, cc := authv3.NewAuthorizationClient(dial(t, a)), authv3.NewAuthorizationClient(dial(t, b)), authv3.NewAuthorizationClient(dial(t, c))
	const path, htu = "/nonce/orders", "https://api.example.com/nonce/orders"
	tok := e.accessToken(t, map[string]any{"jkt": e.jkt})
	allowed := map[string]string{"x-client-id": dpopClientID, "x-dpop-jkt": e.jkt}
	useNonce := `DPoP realm="extauthz", error="use_dpop_nonce", algs="` + dpopAlgs + `"`

	// askNonce sends a proof without a nonce and returns the one offered.
	askNonce := func(t *testing.T, cl authv3.AuthorizationClient, s *server) string {
		t.Helper()
		resp := checkOn(t, cl, s, apiRequest(path, "DPoP "+tok, e.nodeProof(t, tok, htu, "")))
		assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "nonce-api", "dpop_nonce_required"))
		assertChallenge(t, resp, useNonce)
		nonce, ok := deniedHeader(resp, "dpop-nonce")
		if !ok || nonce == "" {
			t.Fatalf("use_dpop_nonce without a dpop-nonce header")
		}
		return nonce
	}

	nonceA := askNonce(t, ca, a)
	resp := checkOn(t, cb, b, apiRequest(path, "DPoP "+tok, e.nodeProof(t, tok, htu, nonceA)))
	assertAllowed(t, resp, allowed, removedBesides(allowed), dpopMeta("allow", "nonce-api", "allowed"))
	nonceB := okNonce(resp)
	if nonceB == "" {
		t.Fatalf("allow on a nonce rule without dpop-nonce in response_headers_to_add")
	}
	// The nonce B hands out on its allow is good at A.
	resp = checkOn(t, ca, a, apiRequest(path, "DPoP "+tok, e.nodeProof(t, tok, htu, nonceB)))
	assertAllowed(t, resp, allowed, removedBesides(allowed), dpopMeta("allow", "nonce-api", "allowed"))

	t.Run("replica with another secret", func(t *testing.T) {
		resp := checkOn(t, cc, c, apiRequest(path, "DPoP "+tok, e.nodeProof(t, tok, htu, nonceA)))
		assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "nonce-api", "dpop_nonce_required"))
		assertChallenge(t, resp, useNonce)
		nonceC, _ := deniedHeader(resp, "dpop-nonce")
		if nonceC == "" || nonceC == nonceA {
			t.Errorf("replica C offers dpop-nonce %q; want its own, not A's %q", nonceC, nonceA)
		}
		// Its own nonce it takes.
		resp = checkOn(t, cc, c, apiRequest(path, "DPoP "+tok, e.nodeProof(t, tok, htu, nonceC)))
		assertAllowed(t, resp, allowed, removedBesides(allowed), dpopMeta("allow", "nonce-api", "allowed"))
	})
}

// peerCert is a self-signed client certificate: its PEM as Envoy forwards
// it in attributes.source.certificate, and its RFC 8705 x5t#S256.
type peerCert struct {
	envoy, x5t string
}

func newPeerCert(t *testing.T, cn string) peerCert {
	t.Helper()
	key := jose.P256(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return peerCert{
		envoy: envoyPEM(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		x5t:   base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}

// envoyPEM encodes a PEM the way Envoy's include_peer_certificate does
// (urlEncodePemCertificate in source/common/tls/utility.cc).
func envoyPEM(p string) string {
	return strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(p)
}

func withPeerCert(req *authv3.CheckRequest, cert string) *authv3.CheckRequest {
	req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: cert}
	return req
}

// TestCertificateBoundToken: a token bound to a client certificate
// (cnf.x5t#S256) is allowed with that certificate as Envoy forwards it, and
// refused without it, with another one, or with one that does not parse;
// a token bound to both a DPoP key and the certificate needs both.
func TestCertificateBoundToken(t *testing.T) {
	t.Parallel()
	e := newDPoPEnv(t)
	srv := startServer(t, e.policy)
	cl := authv3.NewAuthorizationClient(dial(t, srv))
	cert, other := newPeerCert(t, "client-1"), newPeerCert(t, "client-2")
	if !strings.Contains(cert.envoy, "-----BEGIN%20CERTIFICATE-----%0A") || strings.ContainsAny(cert.envoy, "\n +/=") {
		t.Fatalf("test bug: certificate not Envoy-encoded: %q", cert.envoy)
	}
	tok := e.accessToken(t, map[string]any{"x5t#S256": cert.x5t})
	invalid := `Bearer realm="extauthz", error="invalid_token"`
	allowed := map[string]string{"x-client-id": dpopClientID}

	t.Run("with the certificate", func(t *testing.T) {
		resp := checkOn(t, cl, srv, withPeerCert(apiRequest("/mtls/orders", "Bearer "+tok, ""), cert.envoy))
		assertAllowed(t, resp, allowed, removedBesides(allowed), dpopMeta("allow", "mtls-api", "allowed"))
	})
	for _, tc := range []struct {
		name, cert, reason string
	}{
		{"without a certificate", "", "peer_certificate_missing"},
		{"with another certificate", other.envoy, "certificate_binding_mismatch"},
		{"with a certificate that does not parse", "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A", "peer_certificate_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := apiRequest("/mtls/orders", "Bearer "+tok, "")
			if tc.cert != "" {
				withPeerCert(req, tc.cert)
			}
			resp := checkOn(t, cl, srv, req)
			assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "mtls-api", tc.reason))
			assertChallenge(t, resp, invalid)
		})
	}
	t.Run("bound to a DPoP key and the certificate", func(t *testing.T) {
		const htu = "https://api.example.com/dpop/orders"
		both := e.accessToken(t, map[string]any{"jkt": e.jkt, "x5t#S256": cert.x5t})
		dpopAllowed := map[string]string{"x-client-id": dpopClientID, "x-dpop-jkt": e.jkt}
		resp := checkOn(t, cl, srv, withPeerCert(apiRequest("/dpop/orders", "DPoP "+both, e.goProof(t, both, htu)), cert.envoy))
		assertAllowed(t, resp, dpopAllowed, removedBesides(dpopAllowed), dpopMeta("allow", "dpop-api", "allowed"))
		resp = checkOn(t, cl, srv, apiRequest("/dpop/orders", "DPoP "+both, e.goProof(t, both, htu)))
		assertDenied(t, resp, codes.Unauthenticated, 401, "", dpopMeta("deny", "dpop-api", "peer_certificate_missing"))
		assertChallenge(t, resp, `DPoP realm="extauthz", error="invalid_token", algs="`+dpopAlgs+`"`)
	})
}

// TestValidateDPoPBlock: `extauthz validate` refuses a bad dpop block,
// exits 1 and prints each error it finds with the file and field path.
func TestValidateDPoPBlock(t *testing.T) {
	t.Parallel()
	good := dpopPolicyFor(jose.P256(t))
	const block = "      dpop:\n        mode: required\n        algorithms: [ES256, EdDSA]\n    headers:\n      x-client-id: client_id\n      x-dpop-jkt: dpop_jkt\n  - name: nonce-api"
	if !strings.Contains(good, block) {
		t.Fatal("test bug: the first rule's dpop block is not in the policy")
	}
	const algErr = `rules[0].bearer.dpop.algorithms[0]: "HS256" is symmetric; a DPoP proof is signed with the client's private key and verified with the public key it carries (one of ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA)`
	for _, tc := range []struct {
		name, mode, algs string
		want             []string
	}{
		// validate lists every error of the block, not only the first.
		{"bad mode and algorithm", "require", "[HS256]", []string{
			`rules[0].bearer.dpop.mode: must be "off", "optional" or "required", got "require"`,
			algErr,
		}},
		{"bad algorithm", "required", "[HS256]", []string{algErr}},
		{"off with settings", "off", "[ES256]", []string{
			`rules[0].bearer.dpop.mode: is off, so the other dpop settings do nothing; set mode to optional or required, or remove them`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, block, strings.NewReplacer("mode: required", "mode: "+tc.mode, "[ES256, EdDSA]", tc.algs).Replace(block), 1)
			file := writeFile(t, "policy.yaml", bad)
			code, stdout, stderr := run(t, "validate", file)
			if code != 1 {
				t.Errorf("validate exited %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, file+": "+w)
			}
			// Each line is file:line:column: path: message; the position
			// is the loader's business (internal/policy tests pin it).
			got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			for i, l := range got {
				got[i] = lineCol.ReplaceAllString(l, ": ")
			}
			if !slices.Equal(got, want) {
				t.Errorf("stderr:\n%s\nwant exactly:\n%s", stderr, strings.Join(want, "\n"))
			}
		})
	}
}

// lineCol is the :line:column of a validate error.
var lineCol = regexp.MustCompile(`:\d+:\d+: `)
