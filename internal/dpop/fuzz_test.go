package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/token"
	"github.com/extauthz/extauthz/test/jose"
)

// The request every fuzzed proof is checked against, unless the fuzzer
// changes its method, authority or path.
const (
	fuzzToken     = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTcifQ.c2lnbmF0dXJl"
	fuzzHTU       = "https://api.example.com/reports"
	fuzzAuthority = "api.example.com"
	fuzzPath      = "/reports"
)

var fuzzNow = time.Unix(1_900_000_000, 0).UTC()

// fuzzSentinels are the errors Verify wraps; each failure wraps exactly
// one, so that a caller's errors.Is mapping to reason codes is unambiguous.
var fuzzSentinels = []error{ErrMalformed, ErrAlgorithm, ErrKey, ErrSignature, ErrMethod, ErrURI, ErrStale, ErrFuture, ErrATH, ErrNonce}

// fuzzProofSeeds are well-formed proofs of GET fuzzHTU for fuzzToken by
// P-256, P-384 and Ed25519 keys, and hostile or malformed variants.
func fuzzProofSeeds(f *testing.F) (valid, hostile []string) {
	f.Helper()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"jti": "jti-1", "htm": "GET", "htu": fuzzHTU, "iat": fuzzNow.Unix(), "ath": ATH(fuzzToken)}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	valid = []string{
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims()),
		jose.MustDPoPProof(f, "ES384", p384, nil, nil, claims("jti", "jti-2")),
		jose.MustDPoPProof(f, "EdDSA", ed, nil, nil, claims("jti", "jti-3", "iat", float64(fuzzNow.Unix())-30.5)),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"typ": "DPoP+JWT"}, claims("htu", "HTTPS://API.example.com:443/./reports")),
	}
	pub := jose.PublicJWK("", "", p256.Public())
	delete(pub, "use")
	v := valid[0]
	dot := strings.LastIndexByte(v, '.')
	hostile = []string{
		"", ".", "..", "a.b.c", "a.b.c.d", v + ".", v[:dot], v[:len(v)-1], v + "A", v + "=", " " + v, v + "," + v,
		strings.Repeat("A", 9<<10),
		jose.MustDPoPProof(f, "HS256", []byte("secret"), p256.Public(), nil, claims()),
		jose.MustDPoPProof(f, "none", nil, p256.Public(), nil, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"jwk": jose.PrivateJWK(p256)}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"jwk": nil}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"typ": "JWT"}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"jwk": jose.PublicJWK("", "", p384.Public())}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, map[string]any{"crit": []any{"exp"}}, claims()),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("htm", "get")),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("htu", fuzzHTU+"?q=1")),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("htu", "http://api.example.com/reports")),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("iat", fuzzNow.Unix()-61)),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("iat", fuzzNow.Unix()+6)),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("iat", "1900000000")),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("ath", nil)),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("jti", nil)),
		jose.MustDPoPProof(f, "ES256", p256, nil, nil, claims("jti", strings.Repeat("j", 257))),
		fuzzSegments(`{"typ":"dpop+jwt","alg":"ES256","alg":"none","jwk":`+jsonOf(f, pub)+`}`, `{}`, "c2ln"),
		fuzzSegments(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+jsonOf(f, pub)+`}`, `{"jti":"a","htm":"GET","htu":"`+fuzzHTU+`","iat":1e400}`, "c2ln"),
		fuzzSegments(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"","y":""}}`, `{}`, ""),
		fuzzSegments(`{"typ":"dpop+jwt","alg":"RS256","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`, `{}`, "c2ln"),
		fuzzSegments(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}`, `[]`, "c2ln"),
	}
	return valid, hostile
}

func fuzzSegments(header, payload, sig string) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(payload)) + "." + sig
}

func jsonOf(f *testing.F, v any) string {
	f.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return string(b)
}

// FuzzVerify: whatever the DPoP header and the request, Verify does not
// panic, fails with exactly one of its sentinels, and accepts only a proof
// whose htm is the request's method, whose htu normalises to the request's
// URI and whose ath names the token, with a 43-character thumbprint that an
// independent RFC 7638 implementation agrees with; verifying it again
// gives the same result.
func FuzzVerify(f *testing.F) {
	valid, hostile := fuzzProofSeeds(f)
	for _, p := range valid {
		f.Add(p, "GET", fuzzAuthority, fuzzPath)
		f.Add(p, "POST", fuzzAuthority, fuzzPath)
		f.Add(p, "GET", "API.EXAMPLE.COM:443", fuzzPath)
		f.Add(p, "GET", fuzzAuthority+":8443", fuzzPath)
		f.Add(p, "GET", "user@"+fuzzAuthority, fuzzPath)
		f.Add(p, "GET", fuzzAuthority, "/x/../%72eports")
		f.Add(p, "GET", fuzzAuthority, fuzzPath+"?q=1#f")
		f.Add(p, "GET", fuzzAuthority, "")
	}
	for _, p := range hostile {
		f.Add(p, "GET", fuzzAuthority, fuzzPath)
	}
	opts := &Options{AccessToken: fuzzToken}
	for i, p := range valid {
		if _, err := Verify(p, Request{Method: "GET", Scheme: "https", Authority: fuzzAuthority, Path: fuzzPath}, opts, fuzzNow); err != nil {
			f.Fatalf("valid seed %d refused: %v", i, err)
		}
	}
	f.Fuzz(func(t *testing.T, proof, method, authority, path string) {
		req := Request{Method: method, Scheme: "https", Authority: authority, Path: path}
		p, err := Verify(proof, req, opts, fuzzNow)
		if err != nil {
			if p != nil {
				t.Fatalf("Verify returned a proof and an error: %v", err)
			}
			n := 0
			for _, s := range fuzzSentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error wraps %d sentinels, want 1: %v", n, err)
			}
			return
		}
		if len(p.JKT) != 43 {
			t.Fatalf("JKT %q is not 43 characters", p.JKT)
		}
		if sum, err := base64.RawURLEncoding.Strict().DecodeString(p.JKT); err != nil || len(sum) != 32 {
			t.Fatalf("JKT %q is not base64url of a SHA-256 digest: %v", p.JKT, err)
		}
		tok, err := token.Parse(proof, token.Limits{MaxTokenBytes: maxProofBytes})
		if err != nil {
			t.Fatalf("accepted proof does not parse: %v", err)
		}
		if htm := tok.Claims()["htm"]; htm != method {
			t.Fatalf("accepted htm %q for method %q", htm, method)
		}
		htu, _ := tok.Claims()["htu"].(string)
		got, ok1 := NormalizeHTU(htu)
		want, ok2 := requestURI(req)
		if !ok1 || !ok2 || got != want {
			t.Fatalf("accepted htu %q (%q) for request %q (%q)", htu, got, authority+path, want)
		}
		if ath := tok.Claims()["ath"]; ath != ATH(fuzzToken) {
			t.Fatalf("accepted ath %v", ath)
		}
		if age := fuzzNow.Sub(p.IssuedAt); age > DefaultMaxAge || age < -DefaultSkew {
			t.Fatalf("accepted iat %s from now", age)
		}
		pub, _, err := PublicKey(tok.Header.JWK, tok.Header.Alg)
		if err != nil {
			t.Fatalf("accepted proof's jwk: %v", err)
		}
		if ref := jose.Thumbprint(pub); ref != p.JKT {
			t.Fatalf("JKT %s, RFC 7638 thumbprint %s", p.JKT, ref)
		}
		again, err := Verify(proof, req, opts, fuzzNow)
		if err != nil || again.JKT != p.JKT || again.JTI != p.JTI || !again.IssuedAt.Equal(p.IssuedAt) {
			t.Fatalf("second Verify = %+v, %v; first %+v", again, err, p)
		}
	})
}

// FuzzNormalizeHTU: NormalizeHTU does not panic, and what it returns is
// an http(s) URI without query or fragment, in normal form: normalising it
// again gives it back, and it is what the request of its own parts
// normalises to.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		fuzzHTU, "HTTPS://API.EXAMPLE.COM:443/reports", "http://a.example:80", "http://a.example:0080/", "https://a.example:/",
		"https://a.example:00", "https://[::1]:8443/a/./b/../c", "https://[::1", "https://[::1]x/", "https://a:b:c/",
		"https://a.example/%7e%7Ealice/%2f%2F/%zz", "https://a.example/%", "https://a.example/%4", "https://a.example/%2E%2E/%2e/x",
		"https://a.example/../../a/..", "https://a.example/./", "https://a.example//..//.", "https://a.example?q", "https://a.example#f",
		"https://u@a.example/", "https://%61.example/", "ftp://a.example/", "https:a.example/", "://a", "https://", "https:///path",
		"https://a.example/\x00", "https://a.example/é", "https://A.Example/A%3fB", "https://a.example/..%2F..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, htu string) {
		out, ok := NormalizeHTU(htu)
		if !ok {
			if out != "" {
				t.Fatalf("refused %q but returned %q", htu, out)
			}
			return
		}
		// RFC 3986 §3.2.2: a host is an IP literal in brackets or has no
		// ':', so a URI's authority has at most one ':' outside brackets.
		_, in, _ := strings.Cut(htu, "://")
		in, _, _ = strings.Cut(in, "/")
		if i := strings.LastIndexByte(in, ']'); i >= 0 {
			in = in[i+1:]
		}
		if strings.Count(in, ":") > 1 {
			t.Fatalf("NormalizeHTU(%q) = %q: accepted an authority that is not host[:port]", htu, out)
		}
		if strings.ContainsAny(out, "?#") {
			t.Fatalf("NormalizeHTU(%q) = %q has a query or fragment", htu, out)
		}
		scheme, rest, _ := strings.Cut(out, "://")
		if scheme != "http" && scheme != "https" {
			t.Fatalf("NormalizeHTU(%q) = %q: scheme %q", htu, out, scheme)
		}
		again, ok := NormalizeHTU(out)
		if !ok || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", htu, out, again, ok)
		}
		authority, path := rest, ""
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			authority, path = rest[:i], rest[i:]
		}
		if !strings.HasPrefix(path, "/") {
			t.Fatalf("NormalizeHTU(%q) = %q: path %q", htu, out, path)
		}
		if r, ok := requestURI(Request{Method: "GET", Scheme: scheme, Authority: authority, Path: path}); !ok || r != out {
			t.Fatalf("the request of %q normalises to %q (%v)", out, r, ok)
		}
	})
}
