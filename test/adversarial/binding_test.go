package adversarial_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/envoytest"
	"github.com/extauthz/extauthz/test/jose"
)

// The sender-constrained rules of policyYAML, all on the API host.
const (
	requiredPath = "/dpop/required/reports"
	optionalPath = "/dpop/optional/reports"
	noncePath    = "/dpop/nonce/reports"
	apiPath      = "/api/reports"
	rsHost       = "api.example.com"
	// defaultAlgs is the algs challenge parameter of a dpop block that names
	// no algorithms.
	defaultAlgs  = "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"
	dpopTokenURL = "https://login.example.com/oauth/dpop-token"
)

func htuOf(path string) string { return "https://" + rsHost + path }

// rsReq is a GET of path?year=2030 on the API host with an Authorization
// value ("" for none) and one DPoP header per proof.
func rsReq(path, authorization string, proofs ...string) req {
	r := req{method: "GET", host: rsHost, path: path + "?year=2030"}
	if authorization != "" {
		r = r.with("authorization", authorization)
	}
	for _, p := range proofs {
		r = r.with("dpop", p)
	}
	return r
}

// withScheme returns a copy of r with :scheme s.
func (r req) withScheme(s string) req {
	r.scheme = s
	return r
}

// withCertificate returns a copy of r whose connection presented the
// client certificate enc (as envoyCertificate encodes it).
func (r req) withCertificate(enc string) req {
	r.certificate = enc
	return r
}

// dpopKey is a DPoP client's key pair and its RFC 7638 thumbprint.
type dpopKey struct {
	priv crypto.Signer
	alg  string
	jkt  string
}

func newDPoPKey(t testing.TB) dpopKey {
	t.Helper()
	k := jose.P256(t)
	return dpopKey{priv: k, alg: "ES256", jkt: jose.Thumbprint(k.Public())}
}

// proof signs claims c with the key (Go signer), header members merged
// over the proof's own (a nil value deletes one).
func (k dpopKey) proof(t testing.TB, c claims, header ...map[string]any) string {
	t.Helper()
	var hdr map[string]any
	if len(header) > 0 {
		hdr = header[0]
	}
	return jose.MustDPoPProof(t, k.alg, k.priv, nil, hdr, c)
}

// proofClaims are the claims of a fresh proof of htm htu, bound to tok by
// ath unless tok is "".
func (h *harness) proofClaims(htm, htu, tok string) claims {
	c := claims{"jti": newJTI(), "htm": htm, "htu": htu, "iat": h.clock.Now().Unix()}
	if tok != "" {
		c["ath"] = jose.ATH(tok)
	}
	return c
}

// dpopCall is a DPoP-scheme GET of path with tok and a fresh proof by k,
// its claims edited by kv (as for with).
func (h *harness) dpopCall(t testing.TB, k dpopKey, path, tok string, kv ...any) req {
	t.Helper()
	return rsReq(path, "DPoP "+tok, k.proof(t, with(h.proofClaims("GET", htuOf(path), tok), kv...)))
}

// boundToken is an access token of the login issuer with the cnf claim
// cnf.
func (h *harness) boundToken(cnf any) string { return signLogin(with(h.loginClaims(), "cnf", cnf)) }

func jkt(thumbprint string) map[string]any { return map[string]any{"jkt": thumbprint} }

// dpopSet is what an allow of the dpop-required or dpop-optional rule sets
// for a token of loginClaims whose proof's key is jkt ("" for none).
func dpopSet(jkt string) map[string]string {
	set := map[string]string{"x-client-id": "reporting-app"}
	if jkt != "" {
		set["x-dpop-jkt"] = jkt
	}
	return set
}

func (h *harness) mustAllowSet(t *testing.T, r req, set map[string]string) {
	t.Helper()
	assertAllow(t, h.check(t, r), set, removeAllBut(set))
}

// newCert is a self-signed P-256 client certificate with the URI SANs
// uris, as DER.
func newCert(t testing.TB, cn string, uris ...string) []byte {
	t.Helper()
	k := jose.P256(t)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// envoyEncode percent-encodes a PEM text as Envoy's source.certificate
// does: every character of PEM that is not unreserved.
var envoyEncode = envoytest.Encode

// envoyCertificate is the PEM of the certificates ders, in order, as Envoy
// forwards it.
func envoyCertificate(ders ...[]byte) string { return envoytest.PEM(ders...) }

// x5t is RFC 8705's cnf member for der: base64url SHA-256, no padding.
func x5t(der []byte) map[string]any {
	sum := sha256.Sum256(der)
	return map[string]any{"x5t#S256": b64.EncodeToString(sum[:])}
}

// responseHeader is the value of name among the denied response's headers
// or, for an allow, the response_headers_to_add.
func responseHeader(resp *authv3.CheckResponse, name string) (string, bool) {
	hs := resp.GetDeniedResponse().GetHeaders()
	if ok := resp.GetOkResponse(); ok != nil {
		hs = ok.GetResponseHeadersToAdd()
	}
	for _, h := range hs {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue(), true
		}
	}
	return "", false
}

// dpopInvalid is the deny of a bad proof at a resource server.
func dpopInvalid(reason string) deny { return deny{codes.Unauthenticated, 401, reason} }

// TestDPoPProofAlgorithmAndKey: a proof is an asymmetric JWS of typ
// dpop+jwt whose jwk is a public key that verifies it. HS* keyed with
// anything (the jwk is an EC key), alg none in every case, a private key in
// the jwk, a symmetric jwk, no jwk, the jwk of another key, and the wrong
// typ are refused before the token is looked at.
func TestDPoPProofAlgorithmAndKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	other := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	fresh := func() claims { return h.proofClaims("GET", htuOf(requiredPath), tok) }
	call := func(proof string) req { return rsReq(requiredPath, "DPoP "+tok, proof) }
	h.mustAllowSet(t, call(k.proof(t, fresh())), dpopSet(k.jkt))

	pub := k.priv.Public()
	pubJWK := jose.PublicJWK("", "", pub)
	delete(pubJWK, "use")
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var attacks []attack
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		for name, secret := range map[string][]byte{"random secret": randomBytes(32), "the jwk as secret": []byte(js(pubJWK)), "empty secret": {}} {
			attacks = append(attacks, attack{
				name: alg + " with an EC jwk, " + name,
				req:  call(jose.MustDPoPProof(t, alg, secret, pub, nil, fresh())),
				want: dpopInvalid(check.ReasonDPoPAlgorithm),
			})
		}
	}
	for _, alg := range allCases("none") {
		for _, sig := range []struct {
			name string
			b    []byte
		}{{"unsigned", nil}, {"signed", randomBytes(64)}} {
			p := compact(js(map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": pubJWK}), js(fresh()), sig.b)
			attacks = append(attacks, attack{name: "alg " + alg + ", " + sig.name, req: call(p), want: dpopInvalid(check.ReasonDPoPAlgorithm)})
		}
	}
	for _, alg := range []any{nil, "", 256, "es256", "ES256K", "RSA-OAEP"} {
		hdr := map[string]any{"typ": "dpop+jwt", "jwk": pubJWK}
		if alg != nil {
			hdr["alg"] = alg
		}
		attacks = append(attacks, attack{name: fmt.Sprintf("alg %v", alg), req: call(rawJWS("ES256", k.priv, js(hdr), js(fresh()))), want: dpopInvalid(check.ReasonDPoPAlgorithm)})
	}
	secretJWK := map[string]any{"kty": "oct", "k": b64.EncodeToString(randomBytes(32))}
	privateEC := jose.PrivateJWK(k.priv)
	attacks = append(attacks,
		attack{name: "private EC jwk", req: call(k.proof(t, fresh(), map[string]any{"jwk": privateEC})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "private Ed25519 jwk", req: call(jose.MustDPoPProof(t, "EdDSA", edPriv, nil, map[string]any{"jwk": jose.PrivateJWK(edPriv)}, fresh())), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "private RSA jwk", req: call(jose.MustDPoPProof(t, "RS256", testKeys().evilRSA, nil, map[string]any{"jwk": jose.PrivateJWK(testKeys().evilRSA)}, fresh())), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "public jwk plus a d member", req: call(k.proof(t, fresh(), map[string]any{"jwk": with(pubJWK, "d", privateEC["d"])})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "symmetric jwk", req: call(k.proof(t, fresh(), map[string]any{"jwk": secretJWK})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "no jwk", req: call(k.proof(t, fresh(), map[string]any{"jwk": nil})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "jwk as a string", req: call(k.proof(t, fresh(), map[string]any{"jwk": js(pubJWK)})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "jwk alg differs", req: call(k.proof(t, fresh(), map[string]any{"jwk": with(pubJWK, "alg", "ES384")})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "jwk of another key", req: call(k.proof(t, fresh(), map[string]any{"jwk": jose.PublicJWK("", "", other.priv.Public())})), want: dpopInvalid(check.ReasonDPoPSignature)},
		attack{name: "typ JWT", req: call(k.proof(t, fresh(), map[string]any{"typ": "JWT"})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "typ at+jwt", req: call(k.proof(t, fresh(), map[string]any{"typ": "at+jwt"})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "no typ", req: call(k.proof(t, fresh(), map[string]any{"typ": nil})), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "not a JWS", req: call("dpop"), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "empty DPoP header", req: call(""), want: dpopInvalid(check.ReasonDPoPInvalid)},
		attack{name: "the access token as proof", req: call(tok), want: dpopInvalid(check.ReasonDPoPInvalid)},
	)
	// The jwk must be a canonical public key that fits alg (RFC 7518 §3.4:
	// ES256 is P-256 only).
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	evilRSA := testKeys().evilRSA
	rsaJWK := jose.PublicJWK("", "", &evilRSA.PublicKey)
	delete(rsaJWK, "use")
	point, err := k.priv.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	offCurve := append([]byte(nil), point[33:]...)
	offCurve[31] ^= 1
	n, _ := b64.DecodeString(rsaJWK["n"].(string))
	for _, c := range []struct {
		name  string
		alg   string
		key   any
		jwk   any // nil: the key's own public JWK
		proof string
	}{
		{name: "ES256 with a P-384 key", alg: "ES256", key: p384},
		{name: "ES384 with a P-256 key", alg: "ES384", key: k.priv},
		{name: "EdDSA with an EC jwk", alg: "EdDSA", key: edPriv, jwk: pubJWK},
		{name: "ES256 with an Ed25519 jwk", alg: "ES256", key: k.priv, jwk: jose.PublicJWK("", "", edPriv.Public())},
		{name: "RS256 with an EC jwk", alg: "RS256", key: evilRSA, jwk: pubJWK},
		{name: "RS256 with a 1024-bit key", alg: "RS256", key: rsa1024},
		{name: "RSA e even", alg: "RS256", key: evilRSA, jwk: with(rsaJWK, "e", b64.EncodeToString([]byte{1, 0, 0}))},
		{name: "RSA e 1", alg: "RS256", key: evilRSA, jwk: with(rsaJWK, "e", b64.EncodeToString([]byte{1}))},
		{name: "RSA n with a leading zero", alg: "RS256", key: evilRSA, jwk: with(rsaJWK, "n", b64.EncodeToString(append([]byte{0}, n...)))},
		{name: "EC x of 31 bytes", alg: "ES256", key: k.priv, jwk: with(pubJWK, "x", b64.EncodeToString(point[2:33]))},
		{name: "EC x padded", alg: "ES256", key: k.priv, jwk: with(pubJWK, "x", pubJWK["x"].(string)+"=")},
		{name: "EC x in standard base64", alg: "ES256", key: k.priv, jwk: with(pubJWK, "x", base64.StdEncoding.EncodeToString(point[1:33]))},
		{name: "EC point off the curve", alg: "ES256", key: k.priv, jwk: with(pubJWK, "y", b64.EncodeToString(offCurve))},
		{name: "EC crv secp256k1", alg: "ES256", key: k.priv, jwk: with(pubJWK, "crv", "secp256k1")},
		{name: "OKP crv Ed448", alg: "EdDSA", key: edPriv, jwk: with(jose.PublicJWK("", "", edPriv.Public()), "crv", "Ed448")},
		{name: "kty missing", alg: "ES256", key: k.priv, jwk: with(pubJWK, "kty", "<delete>")},
		{name: "proof over 8 KiB", alg: "ES256", key: k.priv, proof: k.proof(t, with(fresh(), "pad", strings.Repeat("x", 8<<10)))},
	} {
		p := c.proof
		if p == "" {
			var hdr map[string]any
			if c.jwk != nil {
				hdr = map[string]any{"jwk": c.jwk}
			}
			p = jose.MustDPoPProof(t, c.alg, c.key, nil, hdr, fresh())
		}
		attacks = append(attacks, attack{name: c.name, req: call(p), want: dpopInvalid(check.ReasonDPoPInvalid)})
	}
	h.run(t, attacks)

	// Members beside the thumbprint's do not change the key's identity.
	h.mustAllowSet(t, call(k.proof(t, fresh(), map[string]any{"jwk": with(pubJWK, "kid", "client-key-1", "use", "sig", "key_ops", []any{"sign"})})), dpopSet(k.jkt))
	// DPoP typ is case-insensitive; EdDSA proofs verify.
	h.mustAllowSet(t, call(k.proof(t, fresh(), map[string]any{"typ": "DPoP+JWT"})), dpopSet(k.jkt))
	ed := dpopKey{priv: edPriv, alg: "EdDSA", jkt: jose.Thumbprint(edPriv.Public())}
	edTok := h.boundToken(jkt(ed.jkt))
	h.mustAllowSet(t, h.dpopCall(t, ed, requiredPath, edTok), dpopSet(ed.jkt))
}

// TestDPoPClaims: jti, htm, htu and iat are required, of the right JSON
// types.
func TestDPoPClaims(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	call := func(kv ...any) req { return h.dpopCall(t, k, requiredPath, tok, kv...) }
	h.run(t, []attack{
		{name: "no jti", req: call("jti", "<delete>"), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "empty jti", req: call("jti", ""), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "jti of 257 bytes", req: call("jti", strings.Repeat("j", 257)), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "jti a number", req: call("jti", 7), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "no htm", req: call("htm", "<delete>"), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "htm a list", req: call("htm", []any{"GET"}), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "no htu", req: call("htu", "<delete>"), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "htu an object", req: call("htu", map[string]any{"href": htuOf(requiredPath)}), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "no iat", req: call("iat", "<delete>"), want: dpopInvalid(check.ReasonDPoPInvalid)},
		{name: "iat a string", req: call("iat", fmt.Sprint(t0.Unix())), want: dpopInvalid(check.ReasonDPoPInvalid)},
	})
	h.mustAllowSet(t, call("jti", strings.Repeat("j", 256)), dpopSet(k.jkt))
}

// TestDPoPHTU: htu must name the request's scheme, host, port and path,
// after RFC 3986 normalisation, without query or fragment (RFC 9449 §4.2,
// §4.3). The request is GET https://api.example.com/dpop/required/reports?year=2030.
func TestDPoPHTU(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	base := "https://api.example.com" + requiredPath
	var attacks []attack
	for _, htu := range []string{
		"https://evil.example.com" + requiredPath,
		"https://api.example.com.evil.example" + requiredPath,
		"http://api.example.com" + requiredPath,
		"wss://api.example.com" + requiredPath,
		"https://api.example.com/dpop/required/other",
		"https://api.example.com/dpop/required/reports/",
		"https://api.example.com/DPOP/required/reports",
		"https://api.example.com/dpop%2Frequired/reports",
		"https://api.example.com//dpop/required/reports",
		base + "?year=2030",
		base + "?",
		base + "#top",
		base + "#",
		"https://api.example.com:8443" + requiredPath,
		"https://api.example.com:80" + requiredPath,
		"https://user@api.example.com" + requiredPath,
		"https://api.example.com." + requiredPath,
		"https://api.example.com/dpop/required/reports%",
		"https://api.example.com/dpop/required/report%ZZ",
		"https:/api.example.com" + requiredPath,
		"//api.example.com" + requiredPath,
		requiredPath,
		"",
		"https://api.example.com" + requiredPath + " ",
		"https://api.example.com" + requiredPath + "\x00",
	} {
		attacks = append(attacks, attack{name: fmt.Sprintf("htu %q", htu), req: h.dpopCall(t, k, requiredPath, tok, "htu", htu), want: dpopInvalid(check.ReasonDPoPURI)})
	}
	// The request's :scheme counts too.
	attacks = append(attacks,
		attack{name: "https htu on an http request", req: h.dpopCall(t, k, requiredPath, tok).withScheme("http"), want: dpopInvalid(check.ReasonDPoPURI)},
		attack{name: "htu on another port of the request's authority", req: func() req {
			r := h.dpopCall(t, k, requiredPath, tok)
			r.host = rsHost + ":8443"
			return r
		}(), want: dpopInvalid(check.ReasonDPoPURI)},
	)
	h.run(t, attacks)

	allow := dpopSet(k.jkt)
	for _, htu := range []string{
		"HTTPS://API.EXAMPLE.COM" + requiredPath,
		"HtTpS://Api.Example.Com" + requiredPath,
		"https://api.example.com:443" + requiredPath,
		"https://api.example.com:" + requiredPath,
		"https://api.example.com/dpop/%72equired/reports",
		"https://api.example.com/dpop/required/./reports",
		"https://api.example.com/dpop/required/x/../reports",
	} {
		t.Run(fmt.Sprintf("allow htu %q", htu), func(t *testing.T) {
			h.mustAllowSet(t, h.dpopCall(t, k, requiredPath, tok, "htu", htu), allow)
		})
	}
	// %7E and ~ are the same URI, whichever side encodes it.
	for _, c := range []struct{ path, htuPath string }{
		{"/dpop/required/~alice", "/dpop/required/%7Ealice"},
		{"/dpop/required/~alice", "/dpop/required/%7ealice"},
		{"/dpop/required/%7Ealice", "/dpop/required/~alice"},
		{"/dpop/required/%2f", "/dpop/required/%2F"},
	} {
		t.Run(fmt.Sprintf("allow %s for %s", c.htuPath, c.path), func(t *testing.T) {
			h.mustAllowSet(t, h.dpopCall(t, k, c.path, tok, "htu", htuOf(c.htuPath)), allow)
		})
	}
	// An authority with two ports is not a URI (RFC 3986 §3.2.2: a host
	// outside brackets has no ':'), whatever the request. NormalizeHTU once
	// took everything before the last ':' as the host, so this htu read as
	// https://api.example.com:8443/… (FuzzNormalizeHTU found it; its
	// crashers are kept in internal/dpop/testdata/fuzz).
	t.Run("htu with two ports", func(t *testing.T) {
		r := h.dpopCall(t, k, requiredPath, tok, "htu", "https://api.example.com:8443:443"+requiredPath)
		r.host = rsHost + ":8443"
		assertDeny(t, h.check(t, r), dpopInvalid(check.ReasonDPoPURI))
	})
	t.Run("allow http on an http request", func(t *testing.T) {
		h.mustAllowSet(t, h.dpopCall(t, k, requiredPath, tok, "htu", "http://api.example.com:80"+requiredPath).withScheme("http"), allow)
	})
	t.Run("allow the default port in :authority", func(t *testing.T) {
		r := h.dpopCall(t, k, requiredPath, tok)
		r.host = "API.example.com:443"
		h.mustAllowSet(t, r, allow)
	})
}

// TestDPoPHTM: htm is the request method exactly: methods are
// case-sensitive (RFC 9110 §9.1).
func TestDPoPHTM(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	var attacks []attack
	for _, htm := range []string{"POST", "get", "Get", "GET ", " GET", "HEAD", ""} {
		attacks = append(attacks, attack{name: fmt.Sprintf("htm %q", htm), req: h.dpopCall(t, k, requiredPath, tok, "htm", htm), want: dpopInvalid(check.ReasonDPoPMethod)})
	}
	post := h.dpopCall(t, k, requiredPath, tok)
	post.method = "POST"
	attacks = append(attacks, attack{name: "GET proof on a POST", req: post, want: dpopInvalid(check.ReasonDPoPMethod)})
	h.run(t, attacks)
}

// TestDPoPIssuedAt: iat at most 60 s old and at most 5 s ahead, fractions
// read exactly.
func TestDPoPIssuedAt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	now := float64(h.clock.Now().Unix())
	call := func(iat float64) req { return h.dpopCall(t, k, requiredPath, tok, "iat", iat) }
	h.run(t, []attack{
		{name: "61 s old", req: call(now - 61), want: dpopInvalid(check.ReasonDPoPStale)},
		{name: "60.5 s old", req: call(now - 60.5), want: dpopInvalid(check.ReasonDPoPStale)},
		{name: "an hour old", req: call(now - 3600), want: dpopInvalid(check.ReasonDPoPStale)},
		{name: "iat 0", req: call(0), want: dpopInvalid(check.ReasonDPoPStale)},
		{name: "6 s ahead", req: call(now + 6), want: dpopInvalid(check.ReasonDPoPFuture)},
		{name: "5.5 s ahead", req: call(now + 5.5), want: dpopInvalid(check.ReasonDPoPFuture)},
		{name: "an hour ahead", req: call(now + 3600), want: dpopInvalid(check.ReasonDPoPFuture)},
	})
	for _, d := range []float64{-60, -59.5, -1, 0, 4.5, 5} {
		t.Run(fmt.Sprintf("allow iat %+g s", d), func(t *testing.T) {
			h.mustAllowSet(t, call(now+d), dpopSet(k.jkt))
		})
	}
	t.Run("a proof kept 61 s", func(t *testing.T) {
		r := h.dpopCall(t, k, requiredPath, tok)
		h.clock.Advance(61 * time.Second)
		assertDeny(t, h.check(t, r), dpopInvalid(check.ReasonDPoPStale))
	})
}

// TestDPoPATH: a proof names its access token by ath; one made for another
// token, even one bound to the same key, is refused.
func TestDPoPATH(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tokA, tokB := h.boundToken(jkt(k.jkt)), h.boundToken(jkt(k.jkt))
	sum := sha256.Sum256([]byte(tokA))
	call := func(kv ...any) req { return h.dpopCall(t, k, requiredPath, tokA, kv...) }
	h.run(t, []attack{
		{name: "no ath", req: call("ath", "<delete>"), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath of another string", req: call("ath", jose.ATH("another token")), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath of the Authorization value", req: call("ath", jose.ATH("DPoP "+tokA)), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath padded", req: call("ath", base64.URLEncoding.EncodeToString(sum[:])), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath in standard base64", req: call("ath", base64.StdEncoding.EncodeToString(sum[:])), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath in hex", req: call("ath", hex.EncodeToString(sum[:])), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath empty", req: call("ath", ""), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "ath a list", req: call("ath", []any{jose.ATH(tokA)}), want: dpopInvalid(check.ReasonDPoPATH)},
		{name: "proof for token A with token B, same key", req: rsReq(requiredPath, "DPoP "+tokB, k.proof(t, h.proofClaims("GET", htuOf(requiredPath), tokA))), want: dpopInvalid(check.ReasonDPoPATH)},
	})
	h.mustAllowSet(t, h.dpopCall(t, k, requiredPath, tokB), dpopSet(k.jkt))
}

// TestDPoPProofReplay: a proof's jti is single use per key: the same
// proof, or another proof with its jti, is refused the second time. The
// jti is namespaced by key, so another key's proof may use the same jti.
func TestDPoPProofReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k, k2 := newDPoPKey(t), newDPoPKey(t)
	tok, tok2 := h.boundToken(jkt(k.jkt)), h.boundToken(jkt(k2.jkt))
	c := h.proofClaims("GET", htuOf(requiredPath), tok)
	r := rsReq(requiredPath, "DPoP "+tok, k.proof(t, c))
	h.mustAllowSet(t, r, dpopSet(k.jkt))
	h.run(t, []attack{
		{name: "the same proof again", req: r, want: dpopInvalid(check.ReasonDPoPReplayed)},
		{name: "the same proof again, raw encoding", req: r.raw(), want: dpopInvalid(check.ReasonDPoPReplayed)},
		{name: "a new proof with the same jti", req: rsReq(requiredPath, "DPoP "+tok, k.proof(t, with(c, "iat", c["iat"].(int64)+1))), want: dpopInvalid(check.ReasonDPoPReplayed)},
	})
	h.mustAllowSet(t, h.dpopCall(t, k2, requiredPath, tok2, "jti", c["jti"]), dpopSet(k2.jkt))
}

// TestDPoPBinding: a token bound to a key (cnf.jkt) needs a proof by that
// key in the DPoP scheme, on every rule; a DPoP-scheme token must be bound;
// cnf must be an object of only jkt and x5t#S256 strings.
func TestDPoPBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newDPoPKey(t), newDPoPKey(t)
	boundA := h.boundToken(jkt(a.jkt))
	unbound := signLogin(h.loginClaims())
	proofFor := func(path, tok string) string { return a.proof(t, h.proofClaims("GET", htuOf(path), tok)) }

	h.mustAllowSet(t, h.dpopCall(t, a, requiredPath, boundA), dpopSet(a.jkt))
	h.mustAllowSet(t, h.dpopCall(t, a, optionalPath, boundA), dpopSet(a.jkt))
	h.mustAllowSet(t, rsReq(optionalPath, "Bearer "+unbound), dpopSet(""))
	h.mustAllowSet(t, rsReq(requiredPath, "dpop "+boundA, proofFor(requiredPath, boundA)), dpopSet(a.jkt))

	attacks := []attack{
		{name: "bound token as Bearer, rule without dpop", req: apiReq("Bearer " + boundA), want: invalidToken(check.ReasonBoundNoProof)},
		{name: "bound token as Bearer with a DPoP header, rule without dpop", req: apiReq("Bearer "+boundA).with("dpop", proofFor(apiPath, boundA)), want: invalidToken(check.ReasonBoundNoProof)},
		{name: "bound token as Bearer, optional rule", req: rsReq(optionalPath, "Bearer "+boundA), want: invalidToken(check.ReasonBoundNoProof)},
		{name: "bound token as Bearer with a DPoP header, optional rule", req: rsReq(optionalPath, "Bearer "+boundA, proofFor(optionalPath, boundA)), want: invalidToken(check.ReasonBoundNoProof)},
		{name: "bound token as Bearer, required rule", req: rsReq(requiredPath, "Bearer "+boundA), want: invalidToken(check.ReasonDPoPRequired)},
		{name: "unbound token as Bearer, required rule", req: rsReq(requiredPath, "Bearer "+unbound), want: invalidToken(check.ReasonDPoPRequired)},
		// Refused before the token is parsed or any key is looked up.
		{name: "garbage as Bearer, required rule", req: rsReq(requiredPath, "Bearer garbage"), want: invalidToken(check.ReasonDPoPRequired)},
		{name: "expired token as Bearer, required rule", req: rsReq(requiredPath, "Bearer "+signLogin(with(h.loginClaims(), "exp", unixAt(h.clock.Now(), -time.Hour)))), want: invalidToken(check.ReasonDPoPRequired)},
		{name: "unknown kid as Bearer, required rule", req: rsReq(requiredPath, "Bearer "+sign("EdDSA", testKeys().login, map[string]any{"kid": "login-9"}, h.loginClaims())), want: invalidToken(check.ReasonDPoPRequired)},
		{name: "token of key A, proof by key B, required rule", req: h.dpopCall(t, b, requiredPath, boundA), want: invalidToken(check.ReasonDPoPKeyMismatch)},
		{name: "token of key A, proof by key B, optional rule", req: h.dpopCall(t, b, optionalPath, boundA), want: invalidToken(check.ReasonDPoPKeyMismatch)},
		{name: "cnf.jkt in upper case", req: h.dpopCall(t, a, requiredPath, h.boundToken(jkt(strings.ToUpper(a.jkt)))), want: invalidToken(check.ReasonDPoPKeyMismatch)},
		{name: "cnf.jkt padded", req: h.dpopCall(t, a, requiredPath, h.boundToken(jkt(a.jkt+"="))), want: invalidToken(check.ReasonDPoPKeyMismatch)},
		{name: "unbound token in the DPoP scheme, required rule", req: h.dpopCall(t, a, requiredPath, unbound), want: invalidToken(check.ReasonDPoPUnbound)},
		{name: "unbound token in the DPoP scheme, optional rule", req: h.dpopCall(t, a, optionalPath, unbound), want: invalidToken(check.ReasonDPoPUnbound)},
		{name: "DPoP scheme without a DPoP header, required rule", req: rsReq(requiredPath, "DPoP "+boundA), want: dpopInvalid(check.ReasonDPoPMissing)},
		{name: "DPoP scheme without a DPoP header, optional rule", req: rsReq(optionalPath, "DPoP "+boundA), want: dpopInvalid(check.ReasonDPoPMissing)},
		{name: "DPoP scheme, rule without dpop", req: apiReq("DPoP "+boundA).with("dpop", proofFor(apiPath, boundA)), want: bearerMissing()},
	}
	attacks = append(attacks, both([]attack{
		{name: "two DPoP headers", req: rsReq(requiredPath, "DPoP "+boundA, proofFor(requiredPath, boundA), proofFor(requiredPath, boundA)), want: dpopInvalid(check.ReasonDPoPInvalid)},
	})...)
	pubJWK := jose.PublicJWK("", "", a.priv.Public())
	for _, c := range []struct {
		name string
		cnf  any
	}{
		{"x5t (SHA-1)", map[string]any{"x5t": "3q2-7wAAAAAAAAAAAAAAAAAAAAA"}},
		{"jwk", map[string]any{"jwk": pubJWK}},
		{"jku", map[string]any{"jku": "https://evil.example.com/jwks.json"}},
		{"kid", map[string]any{"kid": "a-1"}},
		{"jkt and x5t", map[string]any{"jkt": a.jkt, "x5t": "3q2-7wAAAAAAAAAAAAAAAAAAAAA"}},
		{"jkt and jwk", map[string]any{"jkt": a.jkt, "jwk": pubJWK}},
		{"jkt a number", map[string]any{"jkt": 1}},
		{"jkt null", map[string]any{"jkt": nil}},
		{"jkt an object", map[string]any{"jkt": map[string]any{"jkt": a.jkt}}},
		{"x5t#S256 a list", map[string]any{"x5t#S256": []any{"abc"}}},
		{"JKT", map[string]any{"JKT": a.jkt}},
		{"empty object", map[string]any{}},
		{"a string", a.jkt},
		{"a list", []any{jkt(a.jkt)}},
		{"null", nil},
		{"true", true},
		{"a number", 1},
	} {
		tok := h.boundToken(c.cnf)
		attacks = append(attacks,
			attack{name: "cnf " + c.name + ", Bearer, rule without dpop", req: apiReq("Bearer " + tok), want: invalidToken(check.ReasonCnfUnsupported)},
			attack{name: "cnf " + c.name + ", Bearer, optional rule", req: rsReq(optionalPath, "Bearer "+tok), want: invalidToken(check.ReasonCnfUnsupported)},
			attack{name: "cnf " + c.name + ", DPoP, required rule", req: h.dpopCall(t, a, requiredPath, tok), want: invalidToken(check.ReasonCnfUnsupported)},
		)
	}
	h.run(t, attacks)
}

// TestCertificateBinding: a token bound to a client certificate
// (cnf.x5t#S256, RFC 8705) needs that certificate on the connection, as
// Envoy forwards it in source.certificate: the first PEM block's SHA-256,
// compared exactly.
func TestCertificateBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mine, other := newCert(t, "reporting-app"), newCert(t, "other-app")
	tok := h.boundToken(x5t(mine))
	set := map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}
	h.mustAllowSet(t, apiReq("Bearer "+tok).withCertificate(envoyCertificate(mine)), set)
	h.mustAllowSet(t, apiReq("Bearer "+tok).withCertificate(envoyCertificate(mine, other)), set)
	// '+' is base64 in a PEM, never a space, whether Envoy encoded it or not.
	partial := strings.NewReplacer("\n", "%0A", " ", "%20").Replace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mine})))
	h.mustAllowSet(t, apiReq("Bearer "+tok).withCertificate(partial), set)
	// An mTLS-bound token is a Bearer token for the dpop rules too.
	h.mustAllowSet(t, rsReq(optionalPath, "Bearer "+tok).withCertificate(envoyCertificate(mine)), dpopSet(""))

	sum := sha256.Sum256(mine)
	sha1Sum := sha1.Sum(mine)
	keyDER, err := x509.MarshalPKCS8PrivateKey(jose.P256(t))
	if err != nil {
		t.Fatal(err)
	}
	privatePEM := envoyEncode(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	junkCert := envoyEncode(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: randomBytes(300)})))
	enc := envoyCertificate(mine)
	attacks := []attack{
		{name: "no certificate", req: apiReq("Bearer " + tok), want: invalidToken(check.ReasonCertMissing)},
		{name: "another certificate", req: apiReq("Bearer " + tok).withCertificate(envoyCertificate(other)), want: invalidToken(check.ReasonCertMismatch)},
		{name: "another certificate first, the bound one second", req: apiReq("Bearer " + tok).withCertificate(envoyCertificate(other, mine)), want: invalidToken(check.ReasonCertMismatch)},
		{name: "the attacker's certificate", req: apiReq("Bearer " + tok).withCertificate(envoyCertificate(evilCertDER())), want: invalidToken(check.ReasonCertMismatch)},
		{name: "x5t#S256 padded", req: apiReq("Bearer " + h.boundToken(map[string]any{"x5t#S256": base64.URLEncoding.EncodeToString(sum[:])})).withCertificate(enc), want: invalidToken(check.ReasonCertMismatch)},
		{name: "x5t#S256 in standard base64", req: apiReq("Bearer " + h.boundToken(map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(sum[:])})).withCertificate(enc), want: invalidToken(check.ReasonCertMismatch)},
		{name: "x5t#S256 in hex", req: apiReq("Bearer " + h.boundToken(map[string]any{"x5t#S256": hex.EncodeToString(sum[:])})).withCertificate(enc), want: invalidToken(check.ReasonCertMismatch)},
		{name: "x5t#S256 of the SHA-1", req: apiReq("Bearer " + h.boundToken(map[string]any{"x5t#S256": b64.EncodeToString(sha1Sum[:])})).withCertificate(enc), want: invalidToken(check.ReasonCertMismatch)},
		{name: "garbage", req: apiReq("Bearer " + tok).withCertificate("garbage"), want: invalidToken(check.ReasonCertInvalid)},
		{name: "bad percent escape", req: apiReq("Bearer " + tok).withCertificate(enc[:40] + "%ZZ" + enc[40:]), want: invalidToken(check.ReasonCertInvalid)},
		{name: "truncated escape", req: apiReq("Bearer " + tok).withCertificate(enc + "%0"), want: invalidToken(check.ReasonCertInvalid)},
		{name: "truncated PEM", req: apiReq("Bearer " + tok).withCertificate(enc[:len(enc)/2]), want: invalidToken(check.ReasonCertInvalid)},
		{name: "a PRIVATE KEY block", req: apiReq("Bearer " + tok).withCertificate(privatePEM), want: invalidToken(check.ReasonCertInvalid)},
		{name: "a PRIVATE KEY block before the certificate", req: apiReq("Bearer " + tok).withCertificate(privatePEM + enc), want: invalidToken(check.ReasonCertInvalid)},
		{name: "a CERTIFICATE block of junk", req: apiReq("Bearer " + tok).withCertificate(junkCert), want: invalidToken(check.ReasonCertInvalid)},
		{name: "33 KiB", req: apiReq("Bearer " + tok).withCertificate(enc + strings.Repeat("A", 33<<10)), want: invalidToken(check.ReasonCertInvalid)},
	}
	// Bound to a key and a certificate: both are verified.
	k := newDPoPKey(t)
	dual := h.boundToken(map[string]any{"jkt": k.jkt, "x5t#S256": x5t(mine)["x5t#S256"]})
	h.mustAllowSet(t, h.dpopCall(t, k, optionalPath, dual).withCertificate(enc), dpopSet(k.jkt))
	attacks = append(attacks,
		attack{name: "jkt and x5t#S256, proof without certificate", req: h.dpopCall(t, k, optionalPath, dual), want: invalidToken(check.ReasonCertMissing)},
		attack{name: "jkt and x5t#S256, proof with another certificate", req: h.dpopCall(t, k, optionalPath, dual).withCertificate(envoyCertificate(other)), want: invalidToken(check.ReasonCertMismatch)},
		attack{name: "jkt and x5t#S256, certificate without proof", req: rsReq(optionalPath, "Bearer "+dual).withCertificate(enc), want: invalidToken(check.ReasonBoundNoProof)},
		attack{name: "certificate-bound token in the DPoP scheme", req: h.dpopCall(t, k, requiredPath, tok).withCertificate(enc), want: invalidToken(check.ReasonDPoPUnbound)},
	)
	h.run(t, attacks)
}

// TestPeerSVIDBinding: with peer_svid, a JWT-SVID client assertion is
// usable only over a connection whose client certificate is an X.509-SVID
// of the same SPIFFE ID, its single URI SAN.
func TestPeerSVIDBinding(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	svidReq := func() req {
		r := assertionReq(signSpire(h.svidClaims()))
		r.path = "/oauth/svid-token"
		return r
	}
	set := map[string]string{"x-client-id": workloadSVID}
	h.mustAllowSet(t, svidReq().withCertificate(envoyCertificate(newCert(t, "worker", workloadSVID))), set)
	h.run(t, []attack{
		{name: "no certificate", req: svidReq(), want: invalidClient(check.ReasonCertMissing)},
		{name: "another workload's SVID", req: svidReq().withCertificate(envoyCertificate(newCert(t, "admin", "spiffe://example.org/ns/admin/sa/root"))), want: invalidClient(check.ReasonPeerSVID)},
		{name: "SVID of another trust domain", req: svidReq().withCertificate(envoyCertificate(newCert(t, "worker", "spiffe://example.com/ns/apps/sa/worker"))), want: invalidClient(check.ReasonPeerSVID)},
		{name: "upper-case trust domain", req: svidReq().withCertificate(envoyCertificate(newCert(t, "worker", "spiffe://EXAMPLE.ORG/ns/apps/sa/worker"))), want: invalidClient(check.ReasonPeerSVID)},
		{name: "no URI SAN", req: svidReq().withCertificate(envoyCertificate(newCert(t, workloadSVID))), want: invalidClient(check.ReasonPeerSVID)},
		{name: "two URI SANs, the right one first", req: svidReq().withCertificate(envoyCertificate(newCert(t, "worker", workloadSVID, "spiffe://example.org/ns/admin/sa/root"))), want: invalidClient(check.ReasonPeerSVID)},
		{name: "garbage", req: svidReq().withCertificate("%%%"), want: invalidClient(check.ReasonCertInvalid)},
	})
}

// TestAssertionTyping: a client assertion is typed JWT,
// client-authentication+jwt or not at all; an access token, a DPoP proof,
// a security event or logout token signed by the client is not one
// (draft-ietf-oauth-rfc7523bis), and neither is an ordinary assertion sent
// as jwt-spiffe.
func TestAssertionTyping(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	typed := func(typ any) string {
		return sign("ES256", k.ec, map[string]any{"kid": "ec-1", "typ": typ}, h.ecClaims())
	}
	set := map[string]string{"x-client-id": "ec-client", "x-is-agent": "false"}
	for _, typ := range []any{"JWT", "jwt", nil, "client-authentication+jwt", "Client-Authentication+JWT", "application/client-authentication+jwt"} {
		t.Run(fmt.Sprintf("allow typ %v", typ), func(t *testing.T) { h.mustAllowSet(t, assertionReq(typed(typ)), set) })
	}
	var attacks []attack
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "dpop+jwt", "secevent+jwt", "logout+jwt", "foo+jwt", "JOSE", "JWS", "token-introspection+jwt"} {
		attacks = append(attacks, attack{name: "typ " + typ, req: assertionReq(typed(typ)), want: invalidClient(check.ReasonTokenType)})
	}
	svidAT := sign("ES256", k.spire, map[string]any{"kid": "spire-1", "typ": "at+jwt"}, h.svidClaims())
	spiffeURN := "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
	attacks = append(attacks,
		attack{name: "JWT-SVID typ at+jwt", req: assertionReq(svidAT), want: invalidClient(check.ReasonTokenType)},
		attack{name: "jwt-spiffe with an ordinary assertion", req: tokenReq(form("grant_type", "client_credentials", "client_assertion_type", spiffeURN, "client_assertion", signEC(h.ecClaims()))), want: invalidClient(check.ReasonAssertionType)},
	)
	h.run(t, attacks)
	t.Run("allow jwt-spiffe with a JWT-SVID", func(t *testing.T) {
		svidSet := map[string]string{"x-client-id": workloadSVID, "x-spiffe-id": workloadSVID, "x-is-agent": "false"}
		h.mustAllowSet(t, tokenReq(form("grant_type", "client_credentials", "client_assertion_type", spiffeURN, "client_assertion", signSpire(h.svidClaims()))), svidSet)
	})
}

// TestDPoPNonce: a nonce rule answers a proof without a current server
// nonce with use_dpop_nonce and a DPoP-Nonce header; the retry with it is
// allowed and told the next nonce; a forged or expired nonce is refused.
func TestDPoPNonce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	tok := h.boundToken(jkt(k.jkt))
	set := map[string]string{"x-dpop-jkt": k.jkt}
	wantChallenge := `DPoP realm="extauthz", error="use_dpop_nonce", algs="` + defaultAlgs + `"`
	needNonce := dpopInvalid(check.ReasonDPoPNonce)

	resp := h.check(t, h.dpopCall(t, k, noncePath, tok))
	assertDeny(t, resp, needNonce)
	nonce, ok := responseHeader(resp, "dpop-nonce")
	if !ok || nonce == "" {
		t.Fatalf("use_dpop_nonce without a dpop-nonce header: %v", resp.GetDeniedResponse().GetHeaders())
	}
	if got, _ := responseHeader(resp, "www-authenticate"); got != wantChallenge {
		t.Errorf("WWW-Authenticate = %s\nwant               %s", got, wantChallenge)
	}

	resp = h.check(t, h.dpopCall(t, k, noncePath, tok, "nonce", nonce))
	assertAllow(t, resp, set, removeAllBut(set))
	if next, ok := responseHeader(resp, "dpop-nonce"); !ok || next != nonce {
		t.Errorf("allow's dpop-nonce = %q (present %v), want the current nonce %q", next, ok, nonce)
	}

	forged := []byte(nonce)
	forged[len(forged)-1] ^= 1
	h.run(t, []attack{
		{name: "forged nonce", req: h.dpopCall(t, k, noncePath, tok, "nonce", string(forged)), want: needNonce},
		{name: "random nonce", req: h.dpopCall(t, k, noncePath, tok, "nonce", b64.EncodeToString(randomBytes(24))), want: needNonce},
		{name: "short nonce", req: h.dpopCall(t, k, noncePath, tok, "nonce", "abc"), want: needNonce},
		{name: "empty nonce", req: h.dpopCall(t, k, noncePath, tok, "nonce", ""), want: needNonce},
		{name: "nonce a number", req: h.dpopCall(t, k, noncePath, tok, "nonce", 1), want: needNonce},
	})

	// A nonce lasts its window and the next (5 min each).
	h.clock.Advance(5 * time.Minute)
	tok = h.boundToken(jkt(k.jkt))
	resp = h.check(t, h.dpopCall(t, k, noncePath, tok, "nonce", nonce))
	assertAllow(t, resp, set, removeAllBut(set))
	next, _ := responseHeader(resp, "dpop-nonce")
	if next == nonce || next == "" {
		t.Errorf("a new window's allow carries dpop-nonce %q, want a new nonce", next)
	}
	h.clock.Advance(5 * time.Minute)
	tok = h.boundToken(jkt(k.jkt))
	resp = h.check(t, h.dpopCall(t, k, noncePath, tok, "nonce", nonce))
	assertDeny(t, resp, needNonce)
	if fresh, _ := responseHeader(resp, "dpop-nonce"); fresh == "" || fresh == nonce {
		t.Errorf("expired nonce answered with dpop-nonce %q", fresh)
	}
	h.mustAllowSet(t, h.dpopCall(t, k, noncePath, tok, "nonce", next), set)
}

// TestDPoPChallenges: the WWW-Authenticate of each kind of deny, in the
// scheme the rule and the request call for (RFC 9449 §7.1, RFC 6750 §3).
func TestDPoPChallenges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k, other := newDPoPKey(t), newDPoPKey(t)
	bound := h.boundToken(jkt(k.jkt))
	algs := `, algs="` + defaultAlgs + `"`
	for _, c := range []struct {
		name string
		req  req
		want deny
		www  string
	}{
		{"invalid proof", h.dpopCall(t, k, requiredPath, bound, "htm", "POST"), dpopInvalid(check.ReasonDPoPMethod), `DPoP realm="extauthz", error="invalid_dpop_proof"` + algs},
		{"invalid proof, optional rule", h.dpopCall(t, k, optionalPath, bound, "htm", "POST"), dpopInvalid(check.ReasonDPoPMethod), `DPoP realm="extauthz", error="invalid_dpop_proof"` + algs},
		{"use_dpop_nonce", h.dpopCall(t, k, noncePath, bound), dpopInvalid(check.ReasonDPoPNonce), `DPoP realm="extauthz", error="use_dpop_nonce"` + algs},
		{"dpop_required", rsReq(requiredPath, "Bearer "+bound), invalidToken(check.ReasonDPoPRequired), `DPoP realm="extauthz", error="invalid_token"` + algs},
		{"missing credential, required rule", rsReq(requiredPath, ""), bearerMissing(), `DPoP realm="extauthz"` + algs},
		{"missing credential, optional rule", rsReq(optionalPath, ""), bearerMissing(), `Bearer realm="extauthz", DPoP realm="extauthz"` + algs},
		{"missing credential, rule without dpop", apiReq(""), bearerMissing(), `Bearer realm="extauthz"`},
		{"DPoP scheme, rule without dpop", apiReq("DPoP " + bound), bearerMissing(), `Bearer realm="extauthz"`},
		{"DPoP scheme without a proof", rsReq(requiredPath, "DPoP "+bound), dpopInvalid(check.ReasonDPoPMissing), `DPoP realm="extauthz", error="invalid_dpop_proof"` + algs},
		{"key mismatch, optional rule", h.dpopCall(t, other, optionalPath, bound), invalidToken(check.ReasonDPoPKeyMismatch), `DPoP realm="extauthz", error="invalid_token"` + algs},
		{"bound token as Bearer, optional rule", rsReq(optionalPath, "Bearer "+bound), invalidToken(check.ReasonBoundNoProof), `Bearer realm="extauthz", error="invalid_token"`},
		{"bound token as Bearer, rule without dpop", apiReq("Bearer " + bound), invalidToken(check.ReasonBoundNoProof), `Bearer realm="extauthz", error="invalid_token"`},
		{"expired token in the DPoP scheme, optional rule", h.dpopCall(t, k, optionalPath, signLogin(with(h.loginClaims(), "exp", unixAt(h.clock.Now(), -time.Hour), "cnf", jkt(k.jkt)))), invalidToken(check.ReasonExpired), `DPoP realm="extauthz", error="invalid_token"` + algs},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := h.check(t, c.req)
			assertDeny(t, resp, c.want)
			if got, _ := responseHeader(resp, "www-authenticate"); got != c.www {
				t.Errorf("WWW-Authenticate = %s\nwant               %s", got, c.www)
			}
		})
	}
}

// TestDPoPTokenEndpoint: at a token endpoint whose rule takes a proof
// beside the assertion, the proof (no ath) is checked when sent and its
// key exposed as dpop_jkt; a bad proof is a 400 invalid_dpop_proof.
func TestDPoPTokenEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := newDPoPKey(t)
	call := func(proof string) req {
		r := assertionReq(signEC(h.ecClaims()))
		r.path = "/oauth/dpop-token"
		if proof != "" {
			r = r.with("dpop", proof)
		}
		return r
	}
	proof := func(kv ...any) string { return k.proof(t, with(h.proofClaims("POST", dpopTokenURL, ""), kv...)) }
	h.mustAllowSet(t, call(""), map[string]string{"x-client-id": "ec-client"})
	p := proof()
	h.mustAllowSet(t, call(p), map[string]string{"x-client-id": "ec-client", "x-dpop-jkt": k.jkt})
	bad := func(reason string) deny { return deny{codes.PermissionDenied, 400, reason} }
	h.run(t, []attack{
		{name: "replayed proof", req: call(p), want: bad(check.ReasonDPoPReplayed)},
		{name: "htm GET", req: call(proof("htm", "GET")), want: bad(check.ReasonDPoPMethod)},
		{name: "htu of the resource server", req: call(proof("htu", htuOf(requiredPath))), want: bad(check.ReasonDPoPURI)},
		{name: "HS256", req: call(jose.MustDPoPProof(t, "HS256", randomBytes(32), k.priv.Public(), nil, h.proofClaims("POST", dpopTokenURL, ""))), want: bad(check.ReasonDPoPAlgorithm)},
		{name: "private jwk", req: call(k.proof(t, h.proofClaims("POST", dpopTokenURL, ""), map[string]any{"jwk": jose.PrivateJWK(k.priv)})), want: bad(check.ReasonDPoPInvalid)},
	})
	resp := h.check(t, call(proof("iat", h.clock.Now().Unix()-120)))
	assertDeny(t, resp, bad(check.ReasonDPoPStale))
	d := resp.GetDeniedResponse()
	ct, _ := responseHeader(resp, "content-type")
	cc, _ := responseHeader(resp, "cache-control")
	if d.GetBody() != `{"error":"invalid_dpop_proof"}` || ct != "application/json" || cc != "no-store" {
		t.Errorf("token endpoint's bad proof: body %s, content-type %q, cache-control %q", d.GetBody(), ct, cc)
	}
}

// TestDPoPInterop: proofs made by the npm jose library, as a real DPoP
// client makes them, for EC, Ed25519 and RSA keys: the server's dpop_jkt is
// jose's thumbprint.
func TestDPoPInterop(t *testing.T) {
	t.Parallel()
	node := jose.NodeSigner(t)
	h := newHarness(t)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alg  string
		priv crypto.Signer
	}{{"ES256", jose.P256(t)}, {"EdDSA", ed}, {"PS256", testKeys().evilRSA}, {"RS256", testKeys().evilRSA}} {
		t.Run(c.alg, func(t *testing.T) {
			thumb := jose.Thumbprint(c.priv.Public())
			tok := h.boundToken(jkt(thumb))
			proof, nodeJKT := node.DPoPProof(t, c.alg, c.priv, tok, nil, with(h.proofClaims("GET", htuOf(requiredPath), ""), "ath", true))
			if nodeJKT != thumb {
				t.Fatalf("jose's thumbprint %s, ours %s", nodeJKT, thumb)
			}
			h.mustAllowSet(t, rsReq(requiredPath, "DPoP "+tok, proof), dpopSet(thumb))
		})
	}
}
