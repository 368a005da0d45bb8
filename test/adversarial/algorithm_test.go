package adversarial_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

// allCases returns every upper/lower-case spelling of s.
func allCases(s string) []string {
	out := []string{""}
	for _, c := range s {
		var next []string
		for _, p := range out {
			lo, up := strings.ToLower(string(c)), strings.ToUpper(string(c))
			next = append(next, p+lo)
			if up != lo {
				next = append(next, p+up)
			}
		}
		out = next
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestAlgNone: "none" in every letter case, unsigned and with a signature,
// as a client assertion and as a bearer token. The header alone decides:
// no key is fetched.
func TestAlgNone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustAllow(t, assertionReq(signEC(h.ecClaims())))
	h.mustAllow(t, apiReq("Bearer "+signLogin(h.loginClaims())))

	var attacks []attack
	for _, alg := range allCases("none") {
		for _, sig := range []struct {
			name string
			b    []byte
		}{{"unsigned", nil}, {"signed", randomBytes(64)}} {
			ca := compact(js(map[string]any{"alg": alg, "kid": "ec-1"}), js(h.ecClaims()), sig.b)
			at := compact(js(map[string]any{"alg": alg, "kid": "login-1", "typ": "at+jwt"}), js(h.loginClaims()), sig.b)
			attacks = append(attacks,
				attack{name: "assertion/" + alg + "/" + sig.name, req: assertionReq(ca), want: invalidClient(check.ReasonAlgorithm)},
				attack{name: "bearer/" + alg + "/" + sig.name, req: apiReq("Bearer " + at), want: invalidToken(check.ReasonAlgorithm)},
			)
		}
	}
	if len(attacks) != 64 {
		t.Fatalf("%d cases, want 16 spellings × 2 × 2", len(attacks))
	}
	h.run(t, attacks)
}

// publicKeyEncodings are the byte strings an attacker may use as the HMAC
// secret in the key-confusion attack: every way the issuer's public key is
// published or commonly serialised.
func publicKeyEncodings(t *testing.T, pub any, jwk map[string]any) map[string][]byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	out := map[string][]byte{
		"pem":           pemPKIX,
		"pem-no-eol":    []byte(strings.TrimSuffix(string(pemPKIX), "\n")),
		"pem-crlf":      []byte(strings.ReplaceAll(string(pemPKIX), "\n", "\r\n")),
		"der":           der,
		"jwk":           []byte(js(jwk)),
		"jwks-document": jose.JWKS(jwk),
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		pkcs1 := x509.MarshalPKCS1PublicKey(k)
		out["pem-pkcs1"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})
		out["der-pkcs1"] = pkcs1
		out["modulus"] = k.N.Bytes()
		out["modulus-b64url"] = []byte(jwk["n"].(string))
	case *ecdsa.PublicKey:
		point, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out["point-uncompressed"] = point
		out["point-compressed"] = compressed(point)
		out["x"] = point[1:33]
		out["x-b64url"] = []byte(jwk["x"].(string))
	case ed25519.PublicKey:
		out["raw"] = []byte(k)
		out["x-b64url"] = []byte(jwk["x"].(string))
	}
	return out
}

// compressed is the SEC 1 compressed form of an uncompressed P-256 point.
func compressed(point []byte) []byte {
	out := append([]byte{2 + point[64]&1}, point[1:33]...)
	return out
}

// TestHMACWithPublicKey: HS256/384/512 tokens keyed with the issuer's
// public key in every encoding, against JWKS issuers (RSA, EC, Ed25519)
// and the PEM-file issuer. HS* is not on a public-key issuer's allow-list,
// so each is refused before any key is looked up.
func TestHMACWithPublicKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	targets := []struct {
		name   string
		pub    any
		jwk    map[string]any
		kid    any // nil: no kid
		claims claims
		bearer bool
	}{
		{"rsa", &k.rsa.PublicKey, jose.PublicJWK("rsa-1", "RS256", &k.rsa.PublicKey), "rsa-1", h.rsaClaims(), false},
		{"pem", &k.rsa.PublicKey, jose.PublicJWK("", "", &k.rsa.PublicKey), nil, with(h.rsaClaims(), "iss", "pem-client", "sub", "pem-client"), false},
		{"ec", &k.ec.PublicKey, jose.PublicJWK("ec-1", "ES256", &k.ec.PublicKey), "ec-1", h.ecClaims(), false},
		{"login", k.login.Public(), jose.PublicJWK("login-1", "EdDSA", k.login.Public()), "login-1", h.loginClaims(), true},
	}
	var attacks []attack
	for _, tg := range targets {
		for enc, secret := range publicKeyEncodings(t, tg.pub, tg.jwk) {
			for _, alg := range []string{"HS256", "HS384", "HS512"} {
				tok := sign(alg, secret, map[string]any{"kid": tg.kid}, with(tg.claims, "jti", newJTI()))
				a := attack{name: fmt.Sprintf("%s/%s/%s", tg.name, enc, alg), req: assertionReq(tok), want: invalidClient(check.ReasonAlgorithm)}
				if tg.bearer {
					a.req, a.want = apiReq("Bearer "+tok), invalidToken(check.ReasonAlgorithm)
				}
				attacks = append(attacks, a)
			}
		}
	}
	h.run(t, attacks)
}

// TestAlgorithmKeyMismatch: an algorithm that is on the allow-list but does
// not fit the key the kid names (or, for keyless PEM keys, any key), alg
// spellings outside the allow-list, and alg of the wrong JSON type. The
// HMAC issuer takes HS* only; JWT-SVID issuers RS/PS/ES only.
func TestAlgorithmKeyMismatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	h.mustAllow(t, assertionReq(sign("HS256", k.hmac, nil, with(h.ecClaims(), "iss", "hmac-client", "sub", "hmac-client"))))
	h.mustAllow(t, assertionReq(sign("PS256", k.rsa, nil, with(h.rsaClaims(), "iss", "pem-client", "sub", "pem-client"))))
	h.mustAllow(t, assertionReq(signSpire(h.svidClaims())))

	hm := func() claims { return with(h.ecClaims(), "iss", "hmac-client", "sub", "hmac-client", "jti", newJTI()) }
	pemc := func() claims { return with(h.rsaClaims(), "iss", "pem-client", "sub", "pem-client", "jti", newJTI()) }
	rawAlg := func(alg any, kid string, c claims) string {
		return compact(js(map[string]any{"alg": alg, "kid": kid}), js(c), randomBytes(64))
	}
	attacks := []attack{
		// The rsa issuer's JWK says alg RS256: even a genuine PS256
		// signature by its own private key does not fit it.
		{name: "PS256 by the real key, JWK alg RS256", req: assertionReq(sign("PS256", k.rsa, map[string]any{"kid": "rsa-1"}, h.rsaClaims())), want: invalidClient(check.ReasonNoKey)},
		{name: "ES256 against an RSA kid", req: assertionReq(sign("ES256", k.evilEC, map[string]any{"kid": "rsa-1"}, h.rsaClaims())), want: invalidClient(check.ReasonNoKey)},
		{name: "RS256 against an EC kid", req: assertionReq(sign("RS256", k.evilRSA, map[string]any{"kid": "ec-1"}, h.ecClaims())), want: invalidClient(check.ReasonNoKey)},
		{name: "ES384 against a P-256 kid", req: assertionReq(compact(js(map[string]any{"alg": "ES384", "kid": "ec-1"}), js(h.ecClaims()), randomBytes(96))), want: invalidClient(check.ReasonNoKey)},
		{name: "ES512 against a P-256 kid", req: assertionReq(compact(js(map[string]any{"alg": "ES512", "kid": "ec-1"}), js(h.ecClaims()), randomBytes(132))), want: invalidClient(check.ReasonNoKey)},
		{name: "EdDSA against an EC kid", req: assertionReq(sign("EdDSA", k.login, map[string]any{"kid": "ec-1"}, h.ecClaims())), want: invalidClient(check.ReasonNoKey)},
		{name: "RS256 against the Ed25519 kid", req: apiReq("Bearer " + sign("RS256", k.evilRSA, map[string]any{"kid": "login-1"}, h.loginClaims())), want: invalidToken(check.ReasonNoKey)},
		{name: "ES256 against a keyless PEM RSA key", req: assertionReq(sign("ES256", k.evilEC, nil, pemc())), want: invalidClient(check.ReasonNoKey)},
		{name: "EdDSA against a keyless PEM RSA key", req: assertionReq(sign("EdDSA", k.login, nil, pemc())), want: invalidClient(check.ReasonNoKey)},
		{name: "RS256 at the HMAC issuer", req: assertionReq(sign("RS256", k.evilRSA, nil, hm())), want: invalidClient(check.ReasonAlgorithm)},
		{name: "HS256 at the HMAC issuer, wrong secret", req: assertionReq(sign("HS256", randomBytes(48), nil, hm())), want: invalidClient(check.ReasonSignature)},
		{name: "HS256 at the HMAC issuer, empty secret", req: assertionReq(sign("HS256", []byte{}, nil, hm())), want: invalidClient(check.ReasonSignature)},
		{name: "EdDSA JWT-SVID", req: assertionReq(sign("EdDSA", k.login, map[string]any{"kid": "spire-1"}, h.svidClaims())), want: invalidClient(check.ReasonAlgorithm)},
		{name: "HS256 JWT-SVID keyed with the bundle", req: assertionReq(sign("HS256", publicPEM(&k.spire.PublicKey), map[string]any{"kid": "spire-1"}, h.svidClaims())), want: invalidClient(check.ReasonAlgorithm)},
	}
	for _, alg := range []any{"rs256", "Rs256", "RS256 ", " RS256", "RS256\x00", "RS256\u200b", "RS1", "RS224", "ES256K", "Ed448", "Ed25519", "HS1", "PS256+", "RSA-OAEP", "dir", ""} {
		attacks = append(attacks, attack{name: fmt.Sprintf("alg %q", alg), req: assertionReq(rawAlg(alg, "rsa-1", h.rsaClaims())), want: invalidClient(check.ReasonAlgorithm)})
	}
	for _, alg := range []any{nil, 256, true, []any{"RS256"}, map[string]any{"alg": "RS256"}} {
		attacks = append(attacks, attack{name: fmt.Sprintf("alg of type %T", alg), req: assertionReq(rawAlg(alg, "rsa-1", h.rsaClaims())), want: invalidClient(check.ReasonAlgorithm)})
	}
	attacks = append(attacks, attack{name: "no alg", req: assertionReq(compact(`{"kid":"rsa-1"}`, js(h.rsaClaims()), randomBytes(256))), want: invalidClient(check.ReasonAlgorithm)})
	h.run(t, attacks)
}

// es256 signs c with the ec issuer's key and returns the token's signing
// input and r, s.
func es256(c claims) (input string, r, s *big.Int) {
	tok := signEC(c)
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		panic(err)
	}
	return tok[:i], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

func withSig(input string, sig []byte) string { return input + "." + b64.EncodeToString(sig) }

func rs(r, s *big.Int, n int) []byte {
	b := make([]byte, 2*n)
	r.FillBytes(b[:n])
	s.FillBytes(b[n:])
	return b
}

// TestECDSASignatureForms: ES256 signatures that are all zero, zero or
// out-of-range r and s, DER-encoded, or of the wrong length (including a
// genuine r||s padded to another curve's width) are refused; only the
// 64-byte r||s of RFC 7518 verifies. The kid is known: nothing is fetched.
func TestECDSASignatureForms(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := elliptic.P256().Params().N
	input, r, s := es256(h.ecClaims())
	h.mustAllow(t, assertionReq(withSig(input, rs(r, s, 32))))

	fresh := func() (string, *big.Int, *big.Int) { return es256(h.ecClaims()) }
	der := func() string {
		in, r, s := fresh()
		b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return withSig(in, b)
	}
	sigWith := func(f func(r, s *big.Int) []byte) string {
		in, r, s := fresh()
		return withSig(in, f(r, s))
	}
	zero := new(big.Int)
	attacks := []attack{
		{name: "all zero", req: assertionReq(sigWith(func(_, _ *big.Int) []byte { return make([]byte, 64) })), want: invalidClient(check.ReasonSignature)},
		{name: "r zero", req: assertionReq(sigWith(func(_, s *big.Int) []byte { return rs(zero, s, 32) })), want: invalidClient(check.ReasonSignature)},
		{name: "s zero", req: assertionReq(sigWith(func(r, _ *big.Int) []byte { return rs(r, zero, 32) })), want: invalidClient(check.ReasonSignature)},
		{name: "r = s = n", req: assertionReq(sigWith(func(_, _ *big.Int) []byte { return rs(n, n, 32) })), want: invalidClient(check.ReasonSignature)},
		{name: "r + n", req: assertionReq(sigWith(func(r, s *big.Int) []byte {
			// r+n does not fit 32 bytes for most r; 0xff…ff does and is ≥ n.
			return rs(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)), s, 32)
		})), want: invalidClient(check.ReasonSignature)},
		{name: "DER", req: assertionReq(der()), want: invalidClient(check.ReasonSignature)},
		{name: "63 bytes", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return rs(r, s, 32)[1:] })), want: invalidClient(check.ReasonSignature)},
		{name: "65 bytes", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return append(rs(r, s, 32), 0) })), want: invalidClient(check.ReasonSignature)},
		{name: "65 bytes, leading zero", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return append([]byte{0}, rs(r, s, 32)...) })), want: invalidClient(check.ReasonSignature)},
		{name: "r||s at P-384 width", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return rs(r, s, 48) })), want: invalidClient(check.ReasonSignature)},
		{name: "r||s at P-521 width", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return rs(r, s, 66) })), want: invalidClient(check.ReasonSignature)},
		{name: "r only", req: assertionReq(sigWith(func(r, _ *big.Int) []byte { return rs(r, zero, 32)[:32] })), want: invalidClient(check.ReasonSignature)},
		{name: "one byte", req: assertionReq(sigWith(func(_, _ *big.Int) []byte { return []byte{0} })), want: invalidClient(check.ReasonSignature)},
		{name: "empty", req: assertionReq(sigWith(func(_, _ *big.Int) []byte { return nil })), want: invalidClient(check.ReasonMalformedToken)},
		{name: "swapped r and s", req: assertionReq(sigWith(func(r, s *big.Int) []byte { return rs(s, r, 32) })), want: invalidClient(check.ReasonSignature)},
	}
	h.run(t, attacks)
}

// TestECDSAMalleability: (r, n-s) is a second valid signature of the same
// claims. extauthz accepts it, which is why single use is keyed on the
// issuer and jti, never on the token's bytes: the twin of a used assertion
// is a replay, in either order.
func TestECDSAMalleability(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := elliptic.P256().Params().N
	for _, order := range []string{"original first", "twin first"} {
		t.Run(order, func(t *testing.T) {
			input, r, s := es256(h.ecClaims())
			orig := withSig(input, rs(r, s, 32))
			twin := withSig(input, rs(r, new(big.Int).Sub(n, s), 32))
			if orig == twin {
				t.Fatal("twin equals the original")
			}
			first, second := orig, twin
			if order == "twin first" {
				first, second = twin, orig
			}
			before := h.fetches()
			assertAllow(t, h.check(t, assertionReq(first)), map[string]string{"x-client-id": "ec-client", "x-is-agent": "false"}, removeAllBut(map[string]string{"x-client-id": "", "x-is-agent": ""}))
			assertDeny(t, h.check(t, assertionReq(second)), invalidClient(check.ReasonReplayed))
			if h.fetches() != before {
				t.Errorf("fetched keys for a known kid")
			}
		})
	}
}

// TestJWSJSONSerialization: the flattened and general JWS JSON
// serialisations, a general one with two signatures (the first genuine),
// and compact forms with two signatures. Only the compact serialisation is
// accepted; a JSON one in an Authorization header fails RFC 6750's
// b64token grammar (400), in a form body the token parser (401).
func TestJWSJSONSerialization(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	seg := func(tok string) (string, string, string) {
		p := strings.Split(tok, ".")
		return p[0], p[1], p[2]
	}
	hd, pl, sg := seg(signEC(h.ecClaims()))
	_, _, evilSig := seg(sign("ES256", k.evilEC, map[string]any{"kid": "ec-1"}, h.ecClaims()))
	flattened := js(map[string]any{"protected": hd, "payload": pl, "signature": sg})
	flattenedUnprotected := js(map[string]any{"protected": hd, "header": map[string]any{"alg": "none"}, "payload": pl, "signature": sg})
	general := js(map[string]any{"payload": pl, "signatures": []any{map[string]any{"protected": hd, "signature": sg}}})
	multi := js(map[string]any{"payload": pl, "signatures": []any{
		map[string]any{"protected": hd, "signature": sg},
		map[string]any{"protected": b64.EncodeToString([]byte(`{"alg":"ES256","kid":"ec-1"}`)), "signature": evilSig},
	}})
	lhd, lpl, lsg := seg(signLogin(h.loginClaims()))
	bearerFlat := js(map[string]any{"protected": lhd, "payload": lpl, "signature": lsg})

	attacks := []attack{
		{name: "flattened", req: assertionReq(flattened), want: invalidClient(check.ReasonMalformedToken)},
		{name: "flattened with unprotected header", req: assertionReq(flattenedUnprotected), want: invalidClient(check.ReasonMalformedToken)},
		{name: "general", req: assertionReq(general), want: invalidClient(check.ReasonMalformedToken)},
		{name: "general, two signatures", req: assertionReq(multi), want: invalidClient(check.ReasonMalformedToken)},
		{name: "flattened, base64url as one segment", req: assertionReq(b64.EncodeToString([]byte(flattened))), want: invalidClient(check.ReasonMalformedToken)},
		{name: "flattened, leading space", req: assertionReq(" " + flattened), want: invalidClient(check.ReasonMalformedToken)},
		{name: "compact, two signatures", req: assertionReq(hd + "." + pl + "." + sg + "." + evilSig), want: invalidClient(check.ReasonMalformedToken)},
		{name: "compact, attacker's signature first", req: assertionReq(hd + "." + pl + "." + evilSig + "." + sg), want: invalidClient(check.ReasonMalformedToken)},
		{name: "compact, signatures joined", req: assertionReq(hd + "." + pl + "." + sg + evilSig), want: invalidClient(check.ReasonSignature)},
		{name: "bearer flattened", req: apiReq("Bearer " + bearerFlat), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "bearer general", req: apiReq("Bearer " + js(map[string]any{"payload": lpl, "signatures": []any{map[string]any{"protected": lhd, "signature": lsg}}})), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "bearer, two signatures", req: apiReq("Bearer " + lhd + "." + lpl + "." + lsg + "." + lsg), want: invalidToken(check.ReasonMalformedToken)},
	}
	h.run(t, attacks)
}

// TestJWE: 5-part JWE tokens (and a 3-part token with enc) are refused by
// their shape, before anything could be decrypted or a key looked up.
func TestJWE(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	jwe := func(hdr map[string]any) string {
		parts := []string{b64.EncodeToString([]byte(js(hdr)))}
		for _, n := range []int{256, 12, 200, 16} {
			parts = append(parts, b64.EncodeToString(randomBytes(n)))
		}
		return strings.Join(parts, ".")
	}
	var attacks []attack
	for _, hdr := range []map[string]any{
		{"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa-1"},
		{"alg": "RSA-OAEP", "enc": "A128CBC-HS256", "kid": "rsa-1", "cty": "JWT"},
		{"alg": "dir", "enc": "A256GCM"},
		{"alg": "ECDH-ES", "enc": "A256GCM", "kid": "ec-1", "epk": jose.PublicJWK("", "", &testKeys().evilEC.PublicKey)},
		{"alg": "RS256", "enc": "A256GCM", "kid": "rsa-1"},
		{"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", "p2c": 1 << 30, "p2s": "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		tok := jwe(hdr)
		name := fmt.Sprintf("%v+%v", hdr["alg"], hdr["enc"])
		attacks = append(attacks,
			attack{name: "assertion/" + name, req: assertionReq(tok), want: invalidClient(check.ReasonMalformedToken)},
			attack{name: "bearer/" + name, req: apiReq("Bearer " + tok), want: invalidToken(check.ReasonMalformedToken)},
		)
	}
	attacks = append(attacks,
		attack{name: "3 parts with enc", req: assertionReq(sign("RS256", testKeys().rsa, map[string]any{"kid": "rsa-1", "enc": "A256GCM"}, h.rsaClaims())), want: invalidClient(check.ReasonMalformedToken)},
		attack{name: "4 parts", req: assertionReq(strings.Join(strings.Split(jwe(map[string]any{"alg": "dir", "enc": "A256GCM"}), ".")[:4], ".")), want: invalidClient(check.ReasonMalformedToken)},
	)
	h.run(t, attacks)
}

// TestHMACSecretFileRefusesPublicKey: the one way to put HS* on an
// allow-list is an hmac_secret_file issuer, and its file may not be a public
// key (PEM, DER, JWK or JWK Set) or certificate, nor a short secret: the
// key-confusion attack cannot be configured by accident.
//
// The DER and preamble cases FAIL today: see the report of issue #8
// (keys/file.go parseHMACSecret refuses only files that start with PEM or
// are JSON).
func TestHMACSecretFileRefusesPublicKey(t *testing.T) {
	t.Parallel()
	k := testKeys()
	jwk := jose.PublicJWK("rsa-1", "RS256", &k.rsa.PublicKey)
	for name, secret := range map[string][]byte{
		"PEM public key":     publicPEM(&k.rsa.PublicKey),
		"PEM, leading space": append([]byte("  "), publicPEM(&k.ec.PublicKey)...),
		"JWK":                []byte(js(jwk)),
		"JWK Set":            jose.JWKS(jwk),
		"31 bytes":           randomBytes(31),
		"DER public key":     derPublic(t, &k.rsa.PublicKey),
		"DER EC public key":  derPublic(t, &k.ec.PublicKey),
		"DER certificate":    evilCertDER(),
		"PEM certificate after openssl's preamble": append([]byte("subject=CN = ec-client\nissuer=CN = ec-client\n"), evilCertPEM()...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			doc := "version: v1\nissuers:\n  - {name: h, issuer: h, hmac_secret_file: s, algorithms: [HS256]}\n"
			if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "s"), secret, 0o600); err != nil {
				t.Fatal(err)
			}
			plane, err := keys.NewPlane(keys.Config{Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			defer plane.Close()
			if _, err := policy.Load([]string{filepath.Join(dir, "p.yaml")}, policy.Options{Keys: plane}); err == nil {
				t.Fatal("the policy loaded")
			} else {
				t.Log(err)
			}
		})
	}
}

func derPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
