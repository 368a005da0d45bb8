package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"sync"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsa2, rsa1024 *rsa.PrivateKey
	p256, p384, p521   *ecdsa.PrivateKey
	ed                 ed25519.PrivateKey
	hs                 []byte
}

var (
	keysOnce sync.Once
	tk       testKeys
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func theKeys() *testKeys {
	keysOnce.Do(func() {
		tk.rsa = must(rsa.GenerateKey(rand.Reader, 2048))
		tk.rsa2 = must(rsa.GenerateKey(rand.Reader, 2048))
		tk.rsa1024 = must(rsa.GenerateKey(rand.Reader, 1024))
		tk.p256 = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		tk.p384 = must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
		tk.p521 = must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
		_, tk.ed = must2(ed25519.GenerateKey(rand.Reader))
		tk.hs = make([]byte, 64)
		must(rand.Read(tk.hs))
	})
	return &tk
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

var allAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "HS256", "HS384", "HS512",
}

// pubFor is the verification key matching signFor(alg).
func pubFor(alg string) *keys.Key {
	k := theKeys()
	switch alg[:2] {
	case "RS", "PS":
		return &keys.Key{Public: &k.rsa.PublicKey}
	case "ES":
		switch alg {
		case "ES256":
			return &keys.Key{Public: &k.p256.PublicKey}
		case "ES384":
			return &keys.Key{Public: &k.p384.PublicKey}
		}
		return &keys.Key{Public: &k.p521.PublicKey}
	case "Ed":
		return &keys.Key{Public: k.ed.Public()}
	}
	return &keys.Key{Public: k.hs}
}

func hashOf(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

// signFor signs like an issuer would, with stdlib only.
func signFor(alg string) func(msg []byte) []byte {
	k := theKeys()
	return func(msg []byte) []byte {
		h := hashOf(alg)
		var digest []byte
		if alg[:2] != "Ed" {
			hh := h.New()
			hh.Write(msg)
			digest = hh.Sum(nil)
		}
		switch alg[:2] {
		case "RS":
			return must(rsa.SignPKCS1v15(rand.Reader, k.rsa, h, digest))
		case "PS":
			return must(rsa.SignPSS(rand.Reader, k.rsa, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
		case "ES":
			priv := map[string]*ecdsa.PrivateKey{"ES256": k.p256, "ES384": k.p384, "ES512": k.p521}[alg]
			return ecdsaRaw(priv, digest)
		case "Ed":
			return ed25519.Sign(k.ed, msg)
		}
		return hmacSign(h, k.hs, msg)
	}
}

func ecdsaRaw(priv *ecdsa.PrivateKey, digest []byte) []byte {
	r, s := must2(ecdsa.Sign(rand.Reader, priv, digest))
	n := (priv.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*n)
	r.FillBytes(sig[:n])
	s.FillBytes(sig[n:])
	return sig
}

func hmacSign(h crypto.Hash, secret, msg []byte) []byte {
	newHash := map[crypto.Hash]func() hash.Hash{crypto.SHA256: sha256.New, crypto.SHA384: sha512.New384, crypto.SHA512: sha512.New}[h]
	mac := hmac.New(newHash, secret)
	mac.Write(msg)
	return mac.Sum(nil)
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// compact assembles a token from raw header and payload JSON, so tests can
// send JSON no encoder would produce.
func compact(header, payload string, sign func([]byte) []byte) string {
	in := enc(header) + "." + enc(payload)
	if sign == nil {
		return in + ".c2ln"
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

// signed is a token for alg with the given payload, signed with the test key.
func signed(alg, payload string) string {
	return compact(`{"alg":"`+alg+`","typ":"JWT","kid":"k1"}`, payload, signFor(alg))
}

const goodClaims = `{"iss":"https://idp.example","sub":"spiffe://example.org/w","aud":["api","other"],` +
	`"exp":1900000000,"nbf":1700000000,"iat":1700000000,"jti":"3f1c7e2a-9b1d-4c55-8a0e-6f1b2c3d4e5f",` +
	`"scope":"read write","client_id":"c-123","n":1.5,"nested":{"a":[1,true,null]}}`

func mustParse(tb testing.TB, raw string) *Token {
	tb.Helper()
	t, err := Parse(raw, Limits{})
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return t
}
