package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/extauthz/extauthz/internal/token"
)

// b64 is strict: one spelling per key, so one thumbprint per key.
var b64 = base64.RawURLEncoding.Strict()

// privateMembers are the JWK members of private or symmetric keys (RFC 7518
// §6.2.2, §6.3.2, §6.4.1). A proof carrying one has leaked its key.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

const (
	minRSABits = 2048
	// maxRSABits bounds the verify cost a client can ask of us.
	maxRSABits = 8192
)

// PublicKey reads the public JWK a proof carries (raw JSON) for alg and
// returns the key and its RFC 7638 SHA-256 thumbprint. Only public EC
// (P-256/384/521), OKP (Ed25519) and RSA keys in their single canonical
// encoding are accepted: fixed-size EC coordinates, no leading zero octets
// in RSA integers, strict base64url. That way a key has exactly one
// thumbprint, and a token bound to it cannot be matched by a re-spelt key.
func PublicKey(raw, alg string) (crypto.PublicKey, string, error) {
	m, err := token.ParseObject(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrKey, err)
	}
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return nil, "", fmt.Errorf("%w: jwk has the private member %q", ErrKey, name)
		}
	}
	if a, ok := m["alg"]; ok && a != alg {
		return nil, "", fmt.Errorf("%w: jwk alg differs from the proof's", ErrKey)
	}
	str := func(name string) (string, error) {
		s, ok := m[name].(string)
		if !ok || s == "" {
			return "", fmt.Errorf("%w: jwk %s is missing or not a string", ErrKey, name)
		}
		return s, nil
	}
	bytesOf := func(name string) ([]byte, string, error) {
		s, err := str(name)
		if err != nil {
			return nil, "", err
		}
		b, err := b64.DecodeString(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: jwk %s is not canonical base64url", ErrKey, name)
		}
		return b, s, nil
	}
	kty, err := str("kty")
	if err != nil {
		return nil, "", err
	}
	var (
		pub   crypto.PublicKey
		canon string
	)
	switch kty {
	case "EC":
		crv, err := str("crv")
		if err != nil {
			return nil, "", err
		}
		var curve elliptic.Curve
		switch crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, "", fmt.Errorf("%w: unsupported curve %.16q", ErrKey, crv)
		}
		x, xs, err := bytesOf("x")
		if err != nil {
			return nil, "", err
		}
		y, ys, err := bytesOf("y")
		if err != nil {
			return nil, "", err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, "", fmt.Errorf("%w: EC coordinates must be %d bytes", ErrKey, size)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("%w: EC point: %w", ErrKey, err)
		}
		pub = k
		canon = `{"crv":"` + crv + `","kty":"EC","x":"` + xs + `","y":"` + ys + `"}`
	case "OKP":
		crv, err := str("crv")
		if err != nil {
			return nil, "", err
		}
		if crv != "Ed25519" {
			return nil, "", fmt.Errorf("%w: unsupported OKP curve %.16q", ErrKey, crv)
		}
		x, xs, err := bytesOf("x")
		if err != nil {
			return nil, "", err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("%w: Ed25519 key must be %d bytes", ErrKey, ed25519.PublicKeySize)
		}
		pub = ed25519.PublicKey(x)
		canon = `{"crv":"Ed25519","kty":"OKP","x":"` + xs + `"}`
	case "RSA":
		n, ns, err := bytesOf("n")
		if err != nil {
			return nil, "", err
		}
		e, es, err := bytesOf("e")
		if err != nil {
			return nil, "", err
		}
		switch {
		case n[0] == 0 || e[0] == 0:
			return nil, "", fmt.Errorf("%w: RSA integers must not have leading zero octets", ErrKey)
		case len(e) > 4:
			return nil, "", fmt.Errorf("%w: RSA exponent too large", ErrKey)
		}
		nb := new(big.Int).SetBytes(n)
		if bits := nb.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, "", fmt.Errorf("%w: RSA modulus of %d bits, outside %d..%d", ErrKey, bits, minRSABits, maxRSABits)
		}
		ev := 0
		for _, c := range e {
			ev = ev<<8 | int(c)
		}
		if ev < 3 || ev&1 == 0 || ev > 1<<31-1 {
			return nil, "", fmt.Errorf("%w: RSA exponent must be odd and at least 3", ErrKey)
		}
		pub = &rsa.PublicKey{N: nb, E: ev}
		canon = `{"e":"` + es + `","kty":"RSA","n":"` + ns + `"}`
	default:
		return nil, "", fmt.Errorf("%w: kty %.16q is not a public-key type", ErrKey, kty)
	}
	sum := sha256.Sum256([]byte(canon))
	return pub, base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
