package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/test/jose"
)

var now = time.Unix(1_900_000_000, 0)

// TestThumbprintVectors: the RFC 7638 §3.1 RSA key and the RFC 9449 §6.1
// P-256 key give their published thumbprints.
func TestThumbprintVectors(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	for _, c := range []struct{ jwk, alg, want string }{
		{`{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`, "RS256", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`, "ES256", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
	} {
		_, got, err := dpop.PublicKey(c.jwk, c.alg)
		if err != nil || got != c.want {
			t.Errorf("PublicKey(%.40s…) = %q, %v; want %q", c.jwk, got, err, c.want)
		}
	}
}

// TestPublicKeyRefuses: a proof's jwk must be one public key in its one
// canonical spelling.
func TestPublicKeyRefuses(t *testing.T) {
	k := jose.P256(t)
	ec := jose.PublicJWK("", "", &k.PublicKey)
	delete(ec, "use")
	enc := func(m map[string]any, kv ...any) string {
		c := map[string]any{}
		for n, v := range m {
			c[n] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(c)
		return string(b)
	}
	x, _ := base64.RawURLEncoding.DecodeString(ec["x"].(string))
	for name, jwk := range map[string]string{
		"private EC key":     enc(jose.PrivateJWK(k)),
		"a k member":         enc(ec, "k", "c2VjcmV0"),
		"symmetric":          `{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`,
		"no kty":             enc(ec, "kty", nil),
		"unknown kty":        enc(ec, "kty", "XYZ"),
		"unknown curve":      enc(ec, "crv", "secp256k1"),
		"short x":            enc(ec, "x", base64.RawURLEncoding.EncodeToString(x[1:])),
		"padded x":           enc(ec, "x", ec["x"].(string)+"="),
		"x as a number":      enc(ec, "x", 7),
		"off the curve":      enc(ec, "y", ec["x"]),
		"alg of another key": enc(ec, "alg", "ES384"),
		"duplicate member":   `{"kty":"EC","kty":"EC","crv":"P-256","x":"` + ec["x"].(string) + `","y":"` + ec["y"].(string) + `"}`,
		"X25519 OKP":         `{"kty":"OKP","crv":"X25519","x":"` + ec["x"].(string) + `"}`,
		"RSA leading zero":   `{"kty":"RSA","e":"AQAB","n":"AA` + strings.Repeat("A", 342) + `"}`,
		"RSA too small":      `{"kty":"RSA","e":"AQAB","n":"` + strings.Repeat("w", 171) + `"}`,
		"RSA even exponent":  `{"kty":"RSA","e":"AQAA","n":"` + strings.Repeat("w", 342) + `"}`,
		"not an object":      `["EC"]`,
		"trailing bytes":     enc(ec) + "x",
	} {
		if _, _, err := dpop.PublicKey(jwk, "ES256"); !errors.Is(err, dpop.ErrKey) {
			t.Errorf("%s: err = %v, want ErrKey", name, err)
		}
	}
	// The thumbprint is jose's (an implementation of RFC 7638 not ours).
	if _, jkt, err := dpop.PublicKey(enc(ec, "kid", "k1", "use", "sig"), "ES256"); err != nil || jkt != jose.Thumbprint(&k.PublicKey) {
		t.Errorf("thumbprint %q, %v; want %q (members other than the required ones do not count)", jkt, err, jose.Thumbprint(&k.PublicKey))
	}
}

// TestNormalizeHTU: RFC 9449 §4.3 compares URIs after RFC 3986
// syntax-based and scheme-based normalisation, and htu has no query or
// fragment.
func TestNormalizeHTU(t *testing.T) {
	const base = "https://api.example.com/a/b"
	for _, same := range []string{
		"https://api.example.com/a/b", "HTTPS://API.Example.COM/a/b", "https://api.example.com:443/a/b",
		"https://api.example.com:/a/b", "https://api.example.com:0443/a/b", "https://api.example.com/a/./b",
		"https://api.example.com/a/c/../b", "https://api.example.com/%61/b",
	} {
		if got, ok := dpop.NormalizeHTU(same); !ok || got != base {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", same, got, ok, base)
		}
	}
	for in, want := range map[string]string{
		"https://api.example.com":           "https://api.example.com/",
		"http://api.example.com:80/x":       "http://api.example.com/x",
		"https://api.example.com:8443/x":    "https://api.example.com:8443/x",
		"https://api.example.com/a%2fb":     "https://api.example.com/a%2Fb",
		"https://api.example.com/%7euser":   "https://api.example.com/~user",
		"https://[::1]:443/x":               "https://[::1]/x",
		"https://api.example.com/users/a@b": "https://api.example.com/users/a@b",
		"https://api.example.com/a:b":       "https://api.example.com/a:b",
		"https://api.example.com/a/b/../..": "https://api.example.com/",
	} {
		if got, ok := dpop.NormalizeHTU(in); !ok || got != want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{
		"https://api.example.com/a?b=1", "https://api.example.com/a?", "https://api.example.com/a#f",
		"https://user@api.example.com/a", "ftp://api.example.com/a", "api.example.com/a", "/a/b",
		"https:///a", "https://api.example.com:x/a", "https://api.example.com/a b", "https://api.example.com/%zz",
		"https://api.example.com/\u00e4", "https://[::1/x", "",
		"https://api.example.com:8443:443/x", "https://api%2Eexample.com/x", "https://[zz]/x", "https://[]/x", "https://a/b\\c.com/x",
	} {
		if got, ok := dpop.NormalizeHTU(bad); ok {
			t.Errorf("NormalizeHTU(%q) = %q, want refused", bad, got)
		}
	}
}

// TestNonces: a nonce is good in its window and the next, under its own
// secret only.
func TestNonces(t *testing.T) {
	clock := now
	secret := []byte(strings.Repeat("s", 32))
	n, err := dpop.NewNonces(secret, time.Minute, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dpop.NewNonces([]byte(strings.Repeat("o", 32)), time.Minute, func() time.Time { return clock })
	nonce := n.Current()
	if !n.Valid(nonce) || other.Valid(nonce) {
		t.Fatalf("fresh nonce: valid %v, valid under another secret %v", n.Valid(nonce), other.Valid(nonce))
	}
	clock = clock.Add(time.Minute)
	if !n.Valid(nonce) {
		t.Error("a nonce of the previous window is refused")
	}
	clock = clock.Add(time.Minute)
	if n.Valid(nonce) {
		t.Error("a nonce two windows old is accepted")
	}
	for _, bad := range []string{"", "x", nonce + "A", strings.Repeat("A", len(nonce))} {
		if n.Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
	if _, err := dpop.NewNonces([]byte("short"), 0, nil); err == nil {
		t.Error("a 5-byte secret is accepted")
	}
}

// TestVerify: each of RFC 9449 §4.3's checks, with its own error.
func TestVerify(t *testing.T) {
	k := jose.P256(t)
	const tok = "access.token.value"
	req := dpop.Request{Method: "GET", Scheme: "https", Authority: "api.example.com:443", Path: "/r?q=1"}
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"jti": "j1", "htm": "GET", "htu": "https://api.example.com/r", "iat": now.Unix(), "ath": jose.ATH(tok)}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	sign := func(header map[string]any, c map[string]any) string {
		return jose.MustDPoPProof(t, "ES256", k, nil, header, c)
	}
	nonces, _ := dpop.NewNonces(nil, 0, func() time.Time { return now })
	opts := &dpop.Options{AccessToken: tok}
	p, err := dpop.Verify(sign(nil, claims()), req, opts, now)
	if err != nil || p.JKT != jose.Thumbprint(&k.PublicKey) || p.JTI != "j1" || !p.IssuedAt.Equal(now) {
		t.Fatalf("valid proof: %+v, %v", p, err)
	}
	if got := p.Until(opts); !got.Equal(now.Add(dpop.DefaultMaxAge + dpop.DefaultSkew)) {
		t.Errorf("Until = %v", got)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name  string
		proof string
		opts  *dpop.Options
		want  error
	}{
		{"typ JWT", sign(map[string]any{"typ": "JWT"}, claims()), opts, dpop.ErrMalformed},
		{"no typ", sign(map[string]any{"typ": nil}, claims()), opts, dpop.ErrMalformed},
		{"HS256", jose.MustDPoPProof(t, "HS256", []byte(strings.Repeat("k", 32)), &k.PublicKey, nil, claims()), opts, dpop.ErrAlgorithm},
		{"alg none", jose.MustDPoPProof(t, "none", nil, &k.PublicKey, nil, claims()), opts, dpop.ErrAlgorithm},
		{"alg off the list", sign(nil, claims()), &dpop.Options{AccessToken: tok, Algorithms: []string{"EdDSA"}}, dpop.ErrAlgorithm},
		{"no jwk", sign(map[string]any{"jwk": nil}, claims()), opts, dpop.ErrKey},
		{"private jwk", sign(map[string]any{"jwk": jose.PrivateJWK(k)}, claims()), opts, dpop.ErrKey},
		{"jwk of another key", jose.MustDPoPProof(t, "ES256", k, &otherKey.PublicKey, nil, claims()), opts, dpop.ErrSignature},
		{"no jti", sign(nil, claims("jti", nil)), opts, dpop.ErrMalformed},
		{"empty jti", sign(nil, claims("jti", "")), opts, dpop.ErrMalformed},
		{"htm a number", sign(nil, claims("htm", 1)), opts, dpop.ErrMalformed},
		{"no iat", sign(nil, claims("iat", nil)), opts, dpop.ErrMalformed},
		{"htm POST", sign(nil, claims("htm", "POST")), opts, dpop.ErrMethod},
		{"htm get", sign(nil, claims("htm", "get")), opts, dpop.ErrMethod},
		{"htu of another host", sign(nil, claims("htu", "https://evil.example.com/r")), opts, dpop.ErrURI},
		{"htu http", sign(nil, claims("htu", "http://api.example.com/r")), opts, dpop.ErrURI},
		{"htu of another path", sign(nil, claims("htu", "https://api.example.com/s")), opts, dpop.ErrURI},
		{"htu with the query", sign(nil, claims("htu", "https://api.example.com/r?q=1")), opts, dpop.ErrURI},
		{"iat 61 s old", sign(nil, claims("iat", now.Unix()-61)), opts, dpop.ErrStale},
		{"iat 6 s ahead", sign(nil, claims("iat", now.Unix()+6)), opts, dpop.ErrFuture},
		{"no ath", sign(nil, claims("ath", nil)), opts, dpop.ErrATH},
		{"ath of another token", sign(nil, claims("ath", jose.ATH("other"))), opts, dpop.ErrATH},
		{"no nonce", sign(nil, claims()), &dpop.Options{AccessToken: tok, Nonces: nonces}, dpop.ErrNonce},
		{"a forged nonce", sign(nil, claims("nonce", "AAAA")), &dpop.Options{AccessToken: tok, Nonces: nonces}, dpop.ErrNonce},
		{"two proofs", sign(nil, claims()) + "," + sign(nil, claims()), opts, dpop.ErrMalformed},
	} {
		if _, err := dpop.Verify(c.proof, req, c.opts, now); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// Edges that hold: 60 s old, 5 s ahead, a fractional iat, the nonce.
	for name, c := range map[string]map[string]any{
		"iat 60 s old":   claims("iat", now.Unix()-60),
		"iat 5 s ahead":  claims("iat", now.Unix()+5),
		"iat fractional": claims("iat", float64(now.Unix())+0.5),
		"nonce":          claims("nonce", nonces.Current()),
	} {
		c["nonce"] = nonces.Current()
		if _, err := dpop.Verify(sign(nil, c), req, &dpop.Options{AccessToken: tok, Nonces: nonces}, now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// RFC 7515 §4.1.9: the media type's "application/" may be present.
	for _, typ := range []string{"application/dpop+jwt", "DPoP+JWT"} {
		if _, err := dpop.Verify(sign(map[string]any{"typ": typ}, claims()), req, opts, now); err != nil {
			t.Errorf("typ %s: %v", typ, err)
		}
	}
}
