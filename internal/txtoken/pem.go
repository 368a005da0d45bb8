package txtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// Signing algorithms, one per key type.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

var b64 = base64.RawURLEncoding

// Key is one signing key of the mount.
type Key struct {
	// KID is the RFC 7638 JWK thumbprint of the public key.
	KID string
	Alg string
	// File is the name of the file it came from, for logs and ordering.
	File   string
	signer crypto.Signer
	// jwk is the public JWK, with kid, alg and use.
	jwk map[string]string
	// published is when the key was first seen.
	published int64 // unix nanoseconds
}

// parseKeys reads every PEM block of data as a private signing key. Any
// block that is not a P-256 or Ed25519 private key, and any text that is
// not PEM, is an error: a mount holding something else is a mistake to
// report, not to skip.
func parseKeys(file string, data []byte) ([]*Key, error) {
	var out []*Key
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k, err := parseBlock(block)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		k.File = file
		out = append(out, k)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("holds data that is not PEM")
	}
	if len(out) == 0 {
		return nil, errors.New("holds no PEM block")
	}
	return out, nil
}

func parseBlock(b *pem.Block) (*Key, error) {
	var priv any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%q is not a private key; give a PKCS#8 or SEC 1 P-256 or Ed25519 private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key on %s; only P-256 (ES256) signs", k.Curve.Params().Name)
		}
		point, err := k.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, err
		}
		jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:])}
		return newKey(k, AlgES256, jwk), nil
	case ed25519.PrivateKey:
		jwk := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(k.Public().(ed25519.PublicKey))}
		return newKey(k, AlgEdDSA, jwk), nil
	}
	return nil, fmt.Errorf("%T keys do not sign internal tokens; use P-256 or Ed25519", priv)
}

// newKey fills in the thumbprint: the SHA-256 of the required members in
// lexical order with no white space (RFC 7638 section 3), which is what
// json.Marshal writes for a map.
func newKey(s crypto.Signer, alg string, jwk map[string]string) *Key {
	req, _ := json.Marshal(jwk)
	sum := sha256.Sum256(req)
	kid := b64.EncodeToString(sum[:])
	jwk["kid"], jwk["alg"], jwk["use"] = kid, alg, "sig"
	return &Key{KID: kid, Alg: alg, signer: s, jwk: jwk}
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }
