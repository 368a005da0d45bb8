package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/extauthz/extauthz/internal/jws"
)

// Thumbprint returns the RFC 7638 JWK SHA-256 thumbprint of pub (a key
// PublicJWK takes), base64url without padding: the digest of the JSON object
// of its required members in lexicographic order, without whitespace —
// crv, kty, x, y for EC (fixed-size coordinates); crv, kty, x for Ed25519;
// e, kty, n for RSA.
func Thumbprint(pub crypto.PublicKey) string {
	jkt, err := jws.Thumbprint(pub)
	if err != nil {
		panic(err)
	}
	return jkt
}

// ATH returns the ath claim of a DPoP proof for accessToken (RFC 9449
// §4.2): base64url of its SHA-256, without padding.
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64.EncodeToString(sum[:])
}

// DPoPProof makes a DPoP proof (RFC 9449) in Go: a JWS of claims whose
// protected header is {"typ": "dpop+jwt", "alg": alg, "jwk": the public JWK
// of pub, without "use"}, with the members of header added or replacing
// those; a nil header value removes the member, so a test can drop typ, jwk
// or even alg. key signs as alg says, as for Sign, so hostile proofs can be
// made: HS* with a []byte secret, "none" with a nil key. pub may be nil when
// key is a crypto.Signer (its Public() is used) or when header sets jwk.
// claims go as given: the caller chooses jti, htm, htu, iat, nonce, and ath
// (use ATH).
func DPoPProof(alg string, key any, pub crypto.PublicKey, header, claims map[string]any) (string, error) {
	h := map[string]any{"typ": "dpop+jwt", "alg": alg}
	if _, set := header["jwk"]; !set {
		if pub == nil {
			signer, ok := key.(crypto.Signer)
			if !ok {
				return "", fmt.Errorf("jose: DPoP proof: no public key for the jwk member: pass pub, or a header jwk (nil for none)")
			}
			pub = signer.Public()
		}
		switch pub.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey, *rsa.PublicKey:
		default:
			return "", fmt.Errorf("jose: DPoP proof: unsupported public key %T", pub)
		}
		jwk := PublicJWK("", "", pub)
		delete(jwk, "use")
		h["jwk"] = jwk
	}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return sign(alg, key, h, claims)
}

// MustDPoPProof is DPoPProof for tests: it fails t on error.
func MustDPoPProof(t testing.TB, alg string, key any, pub crypto.PublicKey, header, claims map[string]any) string {
	t.Helper()
	p, err := DPoPProof(alg, key, pub, header, claims)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
