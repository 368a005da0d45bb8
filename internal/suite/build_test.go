package suite

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// examplesDir holds the example policies and keys the tests build with.
const examplesDir = "../../examples/policies"

func TestRelativeTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"+2m":                  now.Add(2 * time.Minute),
		"-1h":                  now.Add(-time.Hour),
		"now+30s":              now.Add(30 * time.Second),
		"now-1h30m":            now.Add(-90 * time.Minute),
		"2030-05-06T07:08:09Z": time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC),
	} {
		got, err := relativeTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("relativeTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "+2", "now+", "2m", "tomorrow"} {
		if _, err := relativeTime(in, now); err == nil {
			t.Errorf("relativeTime(%q): no error", in)
		}
	}
}

// testBuild is a request builder with the example keys client (EC P-256),
// login (Ed25519) and jobs (an HMAC secret), at a fixed time.
func testBuild(t *testing.T) *build {
	t.Helper()
	ex := examplesDir
	b := &build{dir: ex, signers: map[string]*signer{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nonce: "the-nonce"}
	for name, file := range map[string]string{
		"client": "keys/dpop-client.private.jwk.json",
		"other":  "keys/dpop-other.private.jwk.json",
		"login":  "keys/login.private.jwk.json",
		"jobs":   "keys/internal-jobs.hmac",
	} {
		s, err := readSigner(filepath.Join(ex, file))
		if err != nil {
			t.Fatal(err)
		}
		b.signers[name] = s
	}
	return b
}

// decodeJWS splits a compact JWS into its header and claims; with
// selfSigned it checks that it is an ES256 signature by the key of its own
// jwk header.
func decodeJWS(t *testing.T, jws string, selfSigned bool) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	if selfSigned {
		jwkJSON, _ := json.Marshal(header["jwk"])
		k, err := jwk.ParseKey(jwkJSON)
		if err != nil {
			t.Fatalf("jwk header: %v", err)
		}
		var pub ecdsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if len(sig) != 64 {
			t.Fatalf("an ES256 signature of %d bytes", len(sig))
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(&pub, digest[:], r, s) {
			t.Errorf("the proof is not signed by the key of its jwk header")
		}
	}
	return header, claims
}

func TestDPoPProof(t *testing.T) {
	b := testBuild(t)
	tok := &testToken{As: "dpop", Key: "login", Claims: map[string]any{"iss": "https://login.example.com", "cnf": map[string]any{"jkt": "jkt(client)"}}}
	req, err := b.request(testCase{
		Request: testRequest{Host: "api.example.com:8443", Path: "/orders/1?expand=items"},
		Token:   tok,
		DPoP:    &testProof{Key: "client"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	accessToken, ok := strings.CutPrefix(h.GetHeaders()["authorization"], "DPoP ")
	if !ok {
		t.Fatalf("authorization %q is not in the DPoP scheme", h.GetHeaders()["authorization"])
	}
	if h.GetScheme() != "https" {
		t.Errorf("scheme %q, want https by default", h.GetScheme())
	}
	header, claims := decodeJWS(t, h.GetHeaders()["dpop"], true)
	wantJWK := map[string]any{"kty": "EC", "crv": "P-256", "x": "GQYFl90E14b3v324lwIfTjeYJkBqmhTjajIqW3U-qDk", "y": "-TjyAF6fsayI6XKNkeVQtD_eR-vUm8IGXgLvauU-ySs"}
	if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" || !reflect.DeepEqual(header["jwk"], wantJWK) || len(header) != 3 {
		t.Errorf("proof header %v; want typ dpop+jwt, alg ES256 and the public jwk %v only", header, wantJWK)
	}
	sum := sha256.Sum256([]byte(accessToken))
	want := map[string]any{
		"htm": "GET",
		"htu": "https://api.example.com:8443/orders/1",
		"iat": float64(b.now.Unix()),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("proof claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) != 32 || len(claims) != 5 {
		t.Errorf("proof claims %v; want a random jti and %v", claims, want)
	}
	// The token's cnf.jkt names the proof key: RFC 7638's thumbprint,
	// computed here independently of jwx (sha256 of
	// {"crv":"P-256","kty":"EC","x":…,"y":…}).
	_, tc := decodeJWS(t, accessToken, false)
	if got := tc["cnf"].(map[string]any)["jkt"]; got != "qfm6HQ4MhxqxMZleBzo4PCs81Npu4-p1bOeNylyJcKA" {
		t.Errorf("cnf.jkt = %v", got)
	}

	// Overrides make bad proofs; a proof beside a client assertion has no
	// ath; the request's scheme goes into htu.
	req, err = b.request(testCase{
		Request: testRequest{Host: "login.example.com", Path: "/token", Scheme: "http", Form: map[string]string{"grant_type": "client_credentials"}},
		Token:   &testToken{As: "client_assertion", Key: "login", Claims: map[string]any{}},
		DPoP: &testProof{
			Key:    "client",
			Header: map[string]any{"typ": "JWT", "jwk": "jwk(other)"},
			Claims: map[string]any{"htm": "PUT", "iat": "-10m", "jti": nil, "nonce": "{{nonce}}", "extra": []any{"jkt(login)"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h = req.GetAttributes().GetRequest().GetHttp()
	// Signed by client, with other's jwk: not self-signed.
	header, claims = decodeJWS(t, h.GetHeaders()["dpop"], false)
	if header["typ"] != "JWT" || header["jwk"].(map[string]any)["x"] == wantJWK["x"] {
		t.Errorf("header overrides not applied: %v", header)
	}
	want = map[string]any{
		"htm":   "PUT",
		"htu":   "http://login.example.com/token",
		"iat":   float64(b.now.Add(-10 * time.Minute).Unix()),
		"nonce": "the-nonce",
		"extra": []any{"pitgZX_z9rOWLTbz_l0_MJV0oOUmkHCE9W92yKRFLkE"},
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("proof claims %v, want %v", claims, want)
	}
	if h.GetMethod() != "POST" || !strings.Contains(h.GetBody(), "client_assertion=") {
		t.Errorf("method %s, body %q: the assertion is no longer sent", h.GetMethod(), h.GetBody())
	}

	// A DPoP header the test writes itself wins; {{dpop}} is the proof.
	req, err = b.request(testCase{
		Request: testRequest{Host: "api.example.com", Headers: map[string]string{"DPoP": "{{dpop}},{{dpop}}"}},
		DPoP:    &testProof{Key: "client"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["dpop"]; strings.Count(v, ",") != 1 || strings.Count(v, ".") != 4 {
		t.Errorf("dpop header %q, want two proofs", v)
	}
}

func TestThumbprintFunctions(t *testing.T) {
	b := testBuild(t)
	for in, want := range map[string]any{
		// RFC 7638 thumbprints and RFC 8705 certificate thumbprints
		// computed with python and openssl, not the runner's code.
		"jkt(client)":                      "qfm6HQ4MhxqxMZleBzo4PCs81Npu4-p1bOeNylyJcKA",
		"jkt(login)":                       "pitgZX_z9rOWLTbz_l0_MJV0oOUmkHCE9W92yKRFLkE",
		"x5t#S256(keys/client-a.cert.pem)": "uXHH3Z3ouS9uJp4lwIa7I1cU6Gx_pG2r09dZru4xxsI",
		"jkt(client) ":                     "jkt(client) ", // not a function: as is
		"before {{nonce}} after":           "before the-nonce after",
	} {
		got, err := b.expand(in)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"jkt(nope)":                       `no key named "nope"`,
		"jwk(jobs)":                       "shared secret",
		"x5t#S256(keys/login.jwks.json)":  "no PEM CERTIFICATE",
		"x5t#S256(keys/missing.cert.pem)": "no such file",
	} {
		if _, err := b.expand(map[string]any{"cnf": []any{in}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expand(%q): error %v, want %q", in, err, want)
		}
	}
}

func TestPeerCertificate(t *testing.T) {
	b := testBuild(t)
	req, err := b.request(testCase{Request: testRequest{Host: "api.example.com", PeerCertificate: "keys/client-a.cert.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(b.dir, "keys/client-a.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got := req.GetAttributes().GetSource().GetCertificate()
	if strings.ContainsAny(got, "\n +/=") || !strings.HasPrefix(got, "-----BEGIN%20CERTIFICATE-----%0A") {
		t.Errorf("certificate %q is not encoded as Envoy encodes it", got)
	}
	// Envoy escapes exactly \n, space, +, / and =, which path unescaping
	// (as Envoy's readers do) undoes.
	if dec, err := url.PathUnescape(got); err != nil || dec != string(pemBytes) {
		t.Errorf("PathUnescape(certificate) = %q, %v; want the PEM file", dec, err)
	}
	if req, _ = b.request(testCase{Request: testRequest{Host: "api.example.com"}}); req.GetAttributes().GetSource() != nil {
		t.Errorf("a source without peer_certificate: %v", req.GetAttributes().GetSource())
	}
}
