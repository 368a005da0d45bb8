package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

var benchAlgs = []string{"RS256", "PS256", "ES256", "EdDSA", "HS256"}

// BenchmarkParseVerify is the per-request cost of a new token.
func BenchmarkParseVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			raw := signed(alg, goodClaims)
			candidates := []*keys.Key{pubFor(alg)}
			b.ReportAllocs()
			for b.Loop() {
				t, err := Parse(raw, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if err := t.Verify(candidates); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is the parse alone, the overhead this package adds.
func BenchmarkParse(b *testing.B) {
	raw := signed("HS256", goodClaims)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawVerify is the baseline: hashing plus the stdlib verify, with
// the signature already decoded (and, for ECDSA, already DER).
func BenchmarkRawVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			raw := signed(alg, goodClaims)
			dot := strings.LastIndexByte(raw, '.')
			msg := []byte(raw[:dot])
			sig, _ := base64.RawURLEncoding.DecodeString(raw[dot+1:])
			pub := pubFor(alg).Public
			verify := func() bool {
				switch alg {
				case "RS256":
					d := sha256.Sum256(msg)
					return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
				case "PS256":
					d := sha256.Sum256(msg)
					return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig, pssOptions) == nil
				case "EdDSA":
					return ed25519.Verify(pub.(ed25519.PublicKey), msg, sig)
				case "HS256":
					mac := hmac.New(sha256.New, pub.([]byte))
					mac.Write(msg)
					return hmac.Equal(mac.Sum(nil), sig)
				}
				return false
			}
			if alg == "ES256" {
				der := must(asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])}))
				verify = func() bool {
					d := sha256.Sum256(msg)
					return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], der)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if !verify() {
					b.Fatal("does not verify")
				}
			}
		})
	}
}
