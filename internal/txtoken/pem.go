package txtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/extauthz/extauthz/internal/jws"
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
	jwk map[string]any
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
		return newKey(k, AlgES256)
	case ed25519.PrivateKey:
		return newKey(k, AlgEdDSA)
	}
	return nil, fmt.Errorf("%T keys do not sign internal tokens; use P-256 or Ed25519", priv)
}

// newKey fills in the public JWK and its RFC 7638 thumbprint, the kid.
func newKey(s crypto.Signer, alg string) (*Key, error) {
	jwk, err := jws.PublicJWK(s.Public())
	if err != nil {
		return nil, err
	}
	kid, err := jws.Thumbprint(s.Public())
	if err != nil {
		return nil, err
	}
	jwk["kid"], jwk["alg"], jwk["use"] = kid, alg, "sig"
	return &Key{KID: kid, Alg: alg, signer: s, jwk: jwk}, nil
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }
