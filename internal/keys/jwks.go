package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxJWKSKeys bounds the work one JWKS document can cause. Real issuers
// publish a handful of keys; a thousand is already absurd.
const maxJWKSKeys = 1000

// minRSABits is the smallest RSA modulus accepted, from any source.
const minRSABits = 2048

// Reasons a key is skipped. They are metric label values: keep them stable.
const (
	skipMalformed = "malformed"
	skipUse       = "use"
	skipSymmetric = "symmetric"
	skipPrivate   = "private"
	skipWeakRSA   = "weak_rsa"
	skipCurve     = "curve"
	skipKeyType   = "key_type"
	skipAlg       = "alg"
	skipKeyOps    = "key_ops"
	skipValidity  = "validity"     // a PEM certificate outside its validity period
	skipShort     = "short_secret" // an HMAC secret under 32 bytes
)

// keyRules is what a source accepts from a JWK Set. It is a parameter, not a
// constant, because a SPIFFE bundle marks its JWT keys use "jwt-svid" where
// an OAuth JWKS says "sig".
type keyRules struct {
	// uses are the accepted values of "use"; a key without "use" is always
	// accepted, because SPIRE and many issuers omit it.
	uses []string
}

var sigRules = keyRules{uses: []string{"sig"}}

// skippedKey records one JWK (or PEM block, or HMAC secret) that was left
// out of a set, and why.
type skippedKey struct {
	Index int    `json:"index"`
	KID   string `json:"kid,omitempty"`
	// Block is the 1-based PEM block number, 0 for a JWK.
	Block  int    `json:"block,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// use is the JWK's "use" when Reason is skipUse.
	use string
}

// subject names the key in a sentence: by kid, or by its place in the set.
func (s skippedKey) subject() string {
	if s.KID != "" {
		return fmt.Sprintf("key %q", s.KID)
	}
	return fmt.Sprintf("key %d", s.Index)
}

func (s skippedKey) String() string {
	if s.Block > 0 {
		return fmt.Sprintf("block %d: %s", s.Block, s.Detail)
	}
	if s.KID != "" {
		return fmt.Sprintf("key %d (kid %q): %s", s.Index, s.KID, s.Detail)
	}
	return fmt.Sprintf("key %d: %s", s.Index, s.Detail)
}

// jwkFields are the members looked at before jwx parses a key, so that the
// reason for skipping it is ours to name, not a library error string.
type jwkFields struct {
	Kty    string   `json:"kty"`
	Use    *string  `json:"use"`
	Alg    *string  `json:"alg"`
	Kid    *string  `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
	P      string   `json:"p"`
	Q      string   `json:"q"`
	KeyOps []string `json:"key_ops"`
}

// parseJWKS reads a JWK Set. A document that is not a JWK Set is an error;
// a key that fails a rule is skipped and reported, and the rest of the set
// still works, so one bad key at an issuer cannot take its other keys down.
// Errors carry no "keys:" prefix: callers say where the document came from.
func parseJWKS(data []byte, rules keyRules) (*Set, []skippedKey, error) {
	var doc struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var raws []json.RawMessage
	if len(doc.Keys) == 0 || bytes.Equal(doc.Keys, []byte("null")) {
		return nil, nil, errors.New(`not a JWK Set: no "keys" array`)
	}
	if err := json.Unmarshal(doc.Keys, &raws); err != nil {
		return nil, nil, fmt.Errorf(`not a JWK Set: "keys": %w`, err)
	}
	if len(raws) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("JWK Set has %d keys, more than %d", len(raws), maxJWKSKeys)
	}
	ks := make([]*Key, 0, len(raws))
	var skipped []skippedKey
	for i, raw := range raws {
		k, sk := parseJWK(raw, rules)
		if k == nil {
			sk.Index = i
			skipped = append(skipped, sk)
			continue
		}
		ks = append(ks, k)
	}
	return NewSet(ks), skipped, nil
}

// parseJWK returns the key, or nil and why it was skipped.
func parseJWK(raw json.RawMessage, rules keyRules) (*Key, skippedKey) {
	var f jwkFields
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, skippedKey{Reason: skipMalformed, Detail: err.Error()}
	}
	kid := ""
	if f.Kid != nil {
		kid = *f.Kid
	}
	skip := func(reason, format string, args ...any) (*Key, skippedKey) {
		return nil, skippedKey{KID: kid, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if f.Use != nil && !slices.Contains(rules.uses, *f.Use) {
		if *f.Use == useJWTSVID || *f.Use == useX509SVID {
			// The mirror image of the SPIFFE "sig" trap: a bundle given
			// as a JWK Set.
			return skip(skipUse, "use %q is not for signatures: it marks a key of a SPIFFE bundle, which a spiffe issuer reads from bundle_file", *f.Use)
		}
		return skip(skipUse, "use %q is not for signatures", *f.Use)
	}
	switch f.Kty {
	case "oct":
		// A symmetric key in a published set would let anyone who can read
		// the set forge HS256 tokens.
		return skip(skipSymmetric, "symmetric (oct) key in a public key set")
	case "RSA", "EC", "OKP":
	default:
		return skip(skipKeyType, "unsupported key type %q", f.Kty)
	}
	if f.D != "" || f.P != "" || f.Q != "" {
		return skip(skipPrivate, "contains a private key")
	}
	if f.KeyOps != nil && !slices.Contains(f.KeyOps, "verify") {
		return skip(skipKeyOps, "key_ops %q does not allow verify", f.KeyOps)
	}
	switch f.Kty {
	case "RSA":
		if n, err := b64(f.N); err == nil {
			if bits := new(big.Int).SetBytes(n).BitLen(); bits < minRSABits {
				return skip(skipWeakRSA, "RSA key of %d bits, at least %d required", bits, minRSABits)
			}
		}
	case "EC":
		if err := checkECPoint(f.Crv, f.X, f.Y); err != nil {
			return skip(skipCurve, "%v", err)
		}
	case "OKP":
		if f.Crv != "Ed25519" {
			return skip(skipKeyType, "OKP curve %q cannot verify signatures", f.Crv)
		}
	}
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		return skip(skipMalformed, "%v", err)
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		return skip(skipMalformed, "%v", err)
	}
	if err := checkPublic(pub); err != nil {
		return skip(reasonOf(err), "%v", err)
	}
	k := &Key{ID: kid, Public: pub}
	if f.Alg != nil {
		probe := Key{Public: pub}
		if !probe.Fits(*f.Alg) {
			return skip(skipAlg, "alg %q does not fit a %s key", *f.Alg, keyKind(pub))
		}
		k.Alg = *f.Alg
	}
	return k, skippedKey{}
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// checkECPoint rejects unsupported curves and points off their curve before
// any library sees them: an off-curve point is the classic invalid-curve
// attack on ECDH, and is never a legitimate verification key.
func checkECPoint(crv, x, y string) error {
	var c ecdh.Curve
	var size int
	switch crv {
	case "P-256":
		c, size = ecdh.P256(), 32
	case "P-384":
		c, size = ecdh.P384(), 48
	case "P-521":
		c, size = ecdh.P521(), 66
	default:
		return fmt.Errorf("unsupported EC curve %q", crv)
	}
	xb, errX := b64(x)
	yb, errY := b64(y)
	if errX != nil || errY != nil || len(xb) != size || len(yb) != size {
		return fmt.Errorf("EC %s point has malformed coordinates", crv)
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), xb...), yb...)
	if _, err := c.NewPublicKey(pt); err != nil {
		return fmt.Errorf("EC point is not on curve %s", crv)
	}
	return nil
}

// keyError carries a skip reason through checks shared by JWKS and PEM.
type keyError struct {
	reason string
	msg    string
}

func (e *keyError) Error() string { return e.msg }

func reasonOf(err error) string {
	if ke, ok := errors.AsType[*keyError](err); ok {
		return ke.reason
	}
	return skipMalformed
}

// checkPublic applies the hygiene rules every public key must pass, whatever
// its source.
func checkPublic(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return &keyError{skipWeakRSA, fmt.Sprintf("RSA key of %d bits, at least %d required", bits, minRSABits)}
		}
		if k.E < 3 || k.E%2 == 0 {
			return &keyError{skipMalformed, fmt.Sprintf("RSA public exponent %d is invalid", k.E)}
		}
	case *ecdsa.PublicKey:
		// ECDH() re-validates the point on the three curves it knows and
		// fails for every other curve.
		if _, err := k.ECDH(); err != nil {
			return &keyError{skipCurve, fmt.Sprintf("EC key unusable: %v", err)}
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return &keyError{skipMalformed, fmt.Sprintf("Ed25519 key of %d bytes", len(k))}
		}
	default:
		return &keyError{skipKeyType, fmt.Sprintf("unsupported key type %T", pub)}
	}
	return nil
}

func keyKind(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case []byte:
		return "HMAC"
	}
	return fmt.Sprintf("%T", pub)
}
