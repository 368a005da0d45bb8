package introspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// assertionLifetime is how long our client assertion is good for: it is
// made for one request, and a short life bounds what a captured one is
// worth.
const assertionLifetime = 60 * time.Second

// signer signs our RFC 7523 client assertions with the private_key_jwt key.
type signer struct {
	key crypto.Signer
	alg string
	kid string
}

// newSigner parses a PEM private key (PKCS #8, SEC 1 EC or PKCS #1 RSA) and
// checks that alg fits it; "" picks the key's usual algorithm.
func newSigner(pemBytes []byte, alg, kid string) (*signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s := &signer{kid: kid}
	var fits []string
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			fits = []string{"ES256"}
		case elliptic.P384():
			fits = []string{"ES384"}
		case elliptic.P521():
			fits = []string{"ES512"}
		default:
			return nil, errors.New("EC key on an unsupported curve")
		}
		s.key = k
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		fits = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		s.key = k
	case ed25519.PrivateKey:
		fits = []string{"EdDSA"}
		s.key = k
	default:
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	switch {
	case alg == "":
		s.alg = fits[0]
	case !slices.Contains(fits, alg):
		return nil, fmt.Errorf("algorithm %q does not fit the key (one of %v)", alg, fits)
	default:
		s.alg = alg
	}
	return s, nil
}

// assertion signs iss = sub = clientID, aud = the endpoint it is sent to
// (RFC 7523 §3 asks for a value identifying the authorization server; the
// URL of the endpoint receiving it is one servers accept), a random jti,
// iat now and a short exp.
func (s *signer) assertion(clientID, aud string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	header := map[string]string{"alg": s.alg, "typ": "JWT"}
	if s.kid != "" {
		header["kid"] = s.kid
	}
	claims := map[string]any{
		"iss": clientID, "sub": clientID, "aud": aud, "jti": hex.EncodeToString(jti),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(c)
	sig, err := s.sign([]byte(input))
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return input + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *signer) sign(input []byte) ([]byte, error) {
	if s.alg == "EdDSA" {
		return s.key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	var h crypto.Hash
	switch s.alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(input)
	digest := d.Sum(nil)
	switch s.alg[0] {
	case 'R':
		return s.key.Sign(rand.Reader, digest, h)
	case 'P':
		return s.key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	}
	// JWS wants ES signatures as r||s, each the curve's size (RFC 7518
	// §3.4), not the ASN.1 of crypto.Signer.
	k := s.key.(*ecdsa.PrivateKey)
	r, sv, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		return nil, err
	}
	size := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	sv.FillBytes(out[size:])
	return out, nil
}
