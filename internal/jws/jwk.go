package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"
)

// PublicJWK is pub (*rsa.PublicKey, *ecdsa.PublicKey on P-256/384/521, or
// ed25519.PublicKey) as a bare JWK: the members RFC 7638 requires and
// nothing else, as a DPoP proof's jwk header carries it. Callers add kid,
// alg and use.
func PublicJWK(pub crypto.PublicKey) (map[string]any, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("jws: EC public key: %w", err)
		}
		n := (len(point) - 1) / 2
		return map[string]any{"kty": "EC", "crv": pub.Curve.Params().Name, "x": b64.EncodeToString(point[1 : 1+n]), "y": b64.EncodeToString(point[1+n:])}, nil
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}, nil
	}
	return nil, fmt.Errorf("jws: unsupported public key %T", pub)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url without
// padding: the digest of its required JWK members in lexicographic order,
// without whitespace. It is what cnf.jkt names (RFC 9449 §6.1), and a kid
// that changes whenever the key does.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk, err := PublicJWK(pub)
	if err != nil {
		return "", err
	}
	members := map[any][]string{"EC": {"crv", "kty", "x", "y"}, "OKP": {"crv", "kty", "x"}, "RSA": {"e", "kty", "n"}}[jwk["kty"]]
	// The values are curve names, key types and base64url: nothing to escape.
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%s":"%s"`, m, jwk[m])
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return b64.EncodeToString(sum[:]), nil
}
