package introspect

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/extauthz/extauthz/internal/jws"
	"github.com/extauthz/extauthz/internal/keys"
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
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		s.key = k
	case crypto.Signer:
		s.key = k
	default:
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	// The algorithms the key fits, by the key table, in its preference order.
	pub := &keys.Key{Public: s.key.Public()}
	var fits []string
	for _, a := range keys.AlgorithmNames(false, false) {
		if pub.Fits(a) {
			fits = append(fits, a)
		}
	}
	if len(fits) == 0 {
		return nil, fmt.Errorf("a %T signs no supported algorithm", key)
	}
	switch {
	case alg == "" && slices.Contains(fits, "RS256"):
		// What every authorization server takes for an RSA key.
		s.alg = "RS256"
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
	tok, err := jws.CompactRaw(s.alg, s.key, h, c)
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return tok, nil
}
