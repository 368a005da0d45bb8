package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

func TestVerifyGood(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			pinned := *pubFor(alg)
			pinned.Alg = alg
			for _, tok := range parsedBoth(t, signed(alg, goodClaims)) {
				if err := tok.Verify([]*keys.Key{pubFor(alg)}); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := tok.Verify([]*keys.Key{&pinned}); err != nil {
					t.Fatalf("Verify with a key pinned to %s: %v", alg, err)
				}
			}
		})
	}
}

// parsedBoth is raw parsed from scratch and through its Digest, whose
// Verify does not hash the signing input again: both must verify alike.
func parsedBoth(t *testing.T, raw string) []*Token {
	t.Helper()
	d := DigestOf(raw)
	tok, err := d.Parse(Limits{})
	if err != nil {
		t.Fatalf("Digest.Parse: %v", err)
	}
	return []*Token{mustParse(t, raw), tok}
}

func TestVerifyTampered(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			raw := signed(alg, goodClaims)
			parts := strings.Split(raw, ".")
			other := parts[0] + "." + enc(strings.Replace(goodClaims, "spiffe://example.org/w", "spiffe://example.org/x", 1)) + "." + parts[2]
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 1
			flipped := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			truncated := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1])
			for name, raw := range map[string]string{"payload": other, "signature": flipped, "truncated": truncated} {
				for _, tok := range parsedBoth(t, raw) {
					if err := tok.Verify([]*keys.Key{pubFor(alg)}); !errors.Is(err, ErrSignature) {
						t.Errorf("%s changed: Verify = %v, want ErrSignature", name, err)
					}
				}
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := theKeys()
	rsaPub := &keys.Key{Public: &k.rsa.PublicKey}
	ec256 := &keys.Key{Public: &k.p256.PublicKey}
	ec384 := &keys.Key{Public: &k.p384.PublicKey}
	hmacKey := &keys.Key{Public: k.hs}

	pkix := must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	jwkBytes := must(json.Marshal(map[string]string{
		"kty": "RSA",
		"n":   base64.RawURLEncoding.EncodeToString(k.rsa.N.Bytes()),
		"e":   "AQAB",
	}))
	hsWith := func(secret []byte) string {
		return compact(`{"alg":"HS256"}`, goodClaims, func(m []byte) []byte { return hmacSign(hashOf("HS256"), secret, m) })
	}
	es256 := func(sig func(digest []byte) []byte) string {
		return compact(`{"alg":"ES256"}`, goodClaims, func(m []byte) []byte {
			d := sha256.Sum256(m)
			return sig(d[:])
		})
	}
	rs256In := func(header string, opts *rsa.PSSOptions) string {
		return compact(header, goodClaims, func(m []byte) []byte {
			d := sha256.Sum256(m)
			if opts != nil {
				return must(rsa.SignPSS(rand.Reader, k.rsa, hashOf("256"), d[:], opts))
			}
			return must(rsa.SignPKCS1v15(rand.Reader, k.rsa, hashOf("256"), d[:]))
		})
	}
	short := make(ed25519.PublicKey, 31)
	copy(short, k.ed.Public().(ed25519.PublicKey))

	cases := []struct {
		name       string
		raw        string
		candidates []*keys.Key
		want       error
	}{
		{"no candidates", signed("RS256", goodClaims), nil, ErrNoKey},
		{"nil candidate", signed("RS256", goodClaims), []*keys.Key{nil}, ErrNoKey},
		{"RS256 for an EC key", signed("RS256", goodClaims), []*keys.Key{ec256}, ErrNoKey},
		{"ES256 for a P-384 key", signed("ES256", goodClaims), []*keys.Key{ec384}, ErrNoKey},
		{"ES384 for a P-256 key", signed("ES384", goodClaims), []*keys.Key{ec256}, ErrNoKey},
		{"EdDSA for an RSA key", signed("EdDSA", goodClaims), []*keys.Key{rsaPub}, ErrNoKey},
		{"HS256 for an RSA key", signed("HS256", goodClaims), []*keys.Key{rsaPub}, ErrNoKey},
		{"RS256 for an HMAC secret", signed("RS256", goodClaims), []*keys.Key{hmacKey}, ErrNoKey},
		{"key pinned to another alg", signed("RS256", goodClaims), []*keys.Key{{Alg: "PS256", Public: &k.rsa.PublicKey}}, ErrNoKey},
		{"RSA 1024", compact(`{"alg":"RS256"}`, goodClaims, func(m []byte) []byte {
			d := sha256.Sum256(m)
			return must(rsa.SignPKCS1v15(rand.Reader, k.rsa1024, hashOf("256"), d[:]))
		}), []*keys.Key{{Public: &k.rsa1024.PublicKey}}, ErrNoKey},
		{"Ed25519 key of 31 bytes", signed("EdDSA", goodClaims), []*keys.Key{{Public: short}}, ErrNoKey},
		{"empty HMAC secret", hsWith(nil), []*keys.Key{{Public: []byte{}}}, ErrNoKey},
		{"EC key without a curve", signed("ES256", goodClaims), []*keys.Key{{Alg: "ES256", Public: &ecdsa.PublicKey{}}}, ErrNoKey},
		{"EC key without a point", signed("ES256", goodClaims), []*keys.Key{{Public: &ecdsa.PublicKey{Curve: elliptic.P256()}}}, ErrNoKey},
		{"RSA key without a modulus", signed("RS256", goodClaims), []*keys.Key{{Public: &rsa.PublicKey{}}}, ErrNoKey},

		// Key confusion: the RSA public key, as an attacker can get it, used
		// as an HMAC secret. The RSA key must never act as one.
		{"HS256 with the RSA key's PEM", hsWith(pemBytes), []*keys.Key{rsaPub}, ErrNoKey},
		{"HS256 with the RSA key's DER", hsWith(pkix), []*keys.Key{rsaPub}, ErrNoKey},
		{"HS256 with the RSA key's JWK", hsWith(jwkBytes), []*keys.Key{rsaPub}, ErrNoKey},
		{"HS256 with the RSA modulus", hsWith(k.rsa.N.Bytes()), []*keys.Key{rsaPub}, ErrNoKey},

		{"wrong RSA key", signed("RS256", goodClaims), []*keys.Key{{Public: &k.rsa2.PublicKey}}, ErrSignature},
		{"wrong HMAC secret", signed("HS256", goodClaims), []*keys.Key{{Public: []byte("another secret of enough length!")}}, ErrSignature},
		{"PKCS1 signature under PS256", rs256In(`{"alg":"PS256"}`, nil), []*keys.Key{rsaPub}, ErrSignature},
		{"PSS signature under RS256", rs256In(`{"alg":"RS256"}`, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}), []*keys.Key{rsaPub}, ErrSignature},
		{"PSS with maximal salt", rs256In(`{"alg":"PS256"}`, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}), []*keys.Key{rsaPub}, ErrSignature},
		{"PSS with a 20-byte salt", rs256In(`{"alg":"PS256"}`, &rsa.PSSOptions{SaltLength: 20}), []*keys.Key{rsaPub}, ErrSignature},

		{"ES256 all-zero signature", es256(func([]byte) []byte { return make([]byte, 64) }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 DER signature", es256(func(d []byte) []byte { return must(ecdsa.SignASN1(rand.Reader, k.p256, d)) }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 63 bytes", es256(func(d []byte) []byte { return ecdsaRaw(k.p256, d)[1:] }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 65 bytes", es256(func(d []byte) []byte { return append([]byte{0}, ecdsaRaw(k.p256, d)...) }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 with a P-384 length", es256(func(d []byte) []byte { return make([]byte, 96) }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 r and s swapped", es256(func(d []byte) []byte { s := ecdsaRaw(k.p256, d); return append(s[32:], s[:32]...) }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 r = 0", es256(func(d []byte) []byte { s := ecdsaRaw(k.p256, d); clear(s[:32]); return s }), []*keys.Key{ec256}, ErrSignature},
		{"ES256 s = n", es256(func(d []byte) []byte {
			s := ecdsaRaw(k.p256, d)
			elliptic.P256().Params().N.FillBytes(s[32:])
			return s
		}), []*keys.Key{ec256}, ErrSignature},
		{"EdDSA signature of 63 bytes", compact(`{"alg":"EdDSA"}`, goodClaims, func(m []byte) []byte { return ed25519.Sign(k.ed, m)[:63] }), []*keys.Key{pubFor("EdDSA")}, ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustParse(t, tc.raw)
			err := tok.Verify(tc.candidates)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "token: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestVerifyTriesEveryFittingKey covers key rotation: the first key that
// fits may be the old one.
func TestVerifyTriesEveryFittingKey(t *testing.T) {
	k := theKeys()
	tok := mustParse(t, signed("RS256", goodClaims))
	candidates := []*keys.Key{
		nil,
		{Public: &k.p256.PublicKey},
		{Public: &k.rsa2.PublicKey},
		{Public: &k.rsa.PublicKey},
	}
	if err := tok.Verify(candidates); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestVerifyZeroToken: a Token not made by Parse verifies nothing.
func TestVerifyZeroToken(t *testing.T) {
	var tok Token
	if err := tok.Verify([]*keys.Key{pubFor("HS256")}); err == nil {
		t.Fatal("zero Token verified")
	}
	tok.Header.Alg = "HS256"
	if err := tok.Verify([]*keys.Key{pubFor("HS256")}); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify = %v, want ErrSignature", err)
	}
}

// TestECDSAManySignatures exercises the r||s to DER conversion on enough
// signatures to meet leading zero bytes and high bits in r and s.
func TestECDSAManySignatures(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		for i := range n {
			raw := signed(alg, `{"i":`+string(rune('0'+i%10))+`}`)
			if err := mustParse(t, raw).Verify([]*keys.Key{pubFor(alg)}); err != nil {
				t.Fatalf("%s #%d: %v", alg, i, err)
			}
		}
	}
}

func TestAppendDERSig(t *testing.T) {
	vals := [][]byte{
		{0}, {1}, {0x7f}, {0x80}, {0xff}, {0, 0, 0x80}, {0, 0x7f, 0xff},
		bytesOf(32, 0xff), bytesOf(66, 0xff), append([]byte{0x01}, bytesOf(65, 0xff)...),
		append(bytesOf(10, 0), bytesOf(22, 0x80)...),
	}
	for _, r := range vals {
		for _, s := range vals {
			want := must(asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)}))
			if got := appendDERSig(nil, r, s); string(got) != string(want) {
				t.Errorf("appendDERSig(%x, %x) = %x, want %x", r, s, got, want)
			}
		}
	}
}

func bytesOf(n int, b byte) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

func TestValidateTime(t *testing.T) {
	const now = 1_700_000_000
	at := time.Unix(now, 0)
	half := time.Unix(now, 500_000_000)
	exp := func(v int64) *Token { return &Token{Expiry: v, HasExpiry: true} }
	nbf := func(v int64) *Token {
		return &Token{NotBefore: v, HasNotBefore: true, Expiry: now + 60, HasExpiry: true}
	}
	iat := func(v int64) *Token { return &Token{IssuedAt: v, HasIssuedAt: true, Expiry: now + 60, HasExpiry: true} }
	cases := []struct {
		name       string
		tok        *Token
		now        time.Time
		skew       time.Duration
		requireExp bool
		want       error
	}{
		{"exp ahead", exp(now + 1), at, 0, true, nil},
		{"exp now", exp(now), at, 0, true, ErrExpired},
		{"exp past", exp(now - 1), at, 0, true, ErrExpired},
		{"exp past within skew", exp(now - 1), at, 2 * time.Second, true, nil},
		{"exp past by the skew", exp(now - 2), at, 2 * time.Second, true, ErrExpired},
		{"exp this second, half gone", exp(now), half, 0, true, ErrExpired},
		{"exp next second, half gone", exp(now + 1), half, 0, true, nil},
		{"exp 0", exp(0), at, time.Hour, true, ErrExpired},
		{"exp year 9999, huge skew", exp(maxNumericDate), at, time.Duration(1<<63 - 1), true, nil},
		{"negative skew is zero", exp(now + 1), at, -time.Hour, true, nil},
		{"no exp, required", &Token{}, at, 0, true, ErrMissingExpiry},
		{"no exp, optional", &Token{}, at, 0, false, nil},
		{"nbf now", nbf(now), at, 0, true, nil},
		{"nbf ahead", nbf(now + 1), at, 0, true, ErrNotYetValid},
		{"nbf ahead within skew", nbf(now + 5), at, 5 * time.Second, true, nil},
		{"nbf ahead past skew", nbf(now + 6), at, 5 * time.Second, true, ErrNotYetValid},
		{"nbf ahead, negative skew", nbf(now + 1), at, -time.Hour, true, ErrNotYetValid},
		{"iat now", iat(now), at, 0, true, nil},
		{"iat past", iat(now - 3600), at, 0, true, nil},
		{"iat ahead", iat(now + 1), at, 0, true, ErrIssuedInFuture},
		{"iat ahead within skew", iat(now + 5), at, 5 * time.Second, true, nil},
		{"iat ahead past skew", iat(now + 6), at, 5 * time.Second, true, ErrIssuedInFuture},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tok.ValidateTime(tc.now, tc.skew, tc.requireExp)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("ValidateTime = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSentinelsDistinct guards the reason-code mapping: no sentinel may match
// another.
func TestSentinelsDistinct(t *testing.T) {
	all := []error{ErrMalformed, ErrAlgorithm, ErrCritical, ErrClaimType, ErrNoKey, ErrSignature,
		ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrMissingExpiry}
	for i, a := range all {
		if !strings.HasPrefix(a.Error(), "token: ") {
			t.Errorf("%q lacks the package prefix", a)
		}
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}
