package jws

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/extauthz/extauthz/internal/keys"
)

var b64 = base64.RawURLEncoding

// Signature signs input as the JWS algorithm alg says, with key: an
// *rsa.PrivateKey for RS* and PS*, an *ecdsa.PrivateKey for ES* (r||s at
// the key's curve size, RFC 7518 §3.4), an
// ed25519.PrivateKey for EdDSA and Ed25519, the secret's bytes for HS*.
// "none" signs nothing.
func Signature(alg string, key any, input []byte) ([]byte, error) {
	if alg == "none" {
		return nil, nil
	}
	a, ok := keys.LookupAlgorithm(alg)
	if !ok {
		return nil, fmt.Errorf("jws: unsupported alg %q", alg)
	}
	var digest []byte
	if a.Kind != keys.KindEdDSA && a.Kind != keys.KindHMAC {
		h := a.Hash.New()
		h.Write(input)
		digest = h.Sum(nil)
	}
	wrong := func() error { return fmt.Errorf("jws: %s cannot sign with a %T", alg, key) }
	switch a.Kind {
	case keys.KindRSA, keys.KindRSAPSS:
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, wrong()
		}
		if a.Kind == keys.KindRSA {
			return rsa.SignPKCS1v15(nil, k, a.Hash, digest)
		}
		return rsa.SignPSS(rand.Reader, k, a.Hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case keys.KindECDSA:
		k, ok := key.(*ecdsa.PrivateKey)
		// A key on another curve than the algorithm's signs too, at its
		// own size: tests forge exactly that mismatch.
		if !ok {
			return nil, wrong()
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			return nil, fmt.Errorf("jws: %w", err)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*n)
		r.FillBytes(sig[:n])
		s.FillBytes(sig[n:])
		return sig, nil
	case keys.KindEdDSA:
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, wrong()
		}
		return ed25519.Sign(k, input), nil
	}
	k, ok := key.([]byte)
	if !ok {
		return nil, wrong()
	}
	m := hmac.New(a.Hash.New, k)
	m.Write(input)
	return m.Sum(nil), nil
}

// Compact returns the compact serialization of payload under the protected
// header (marshalled as given: its alg need not be alg), signed as alg says.
func Compact(alg string, key any, header map[string]any, payload []byte) (string, error) {
	hb, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("jws: header: %w", err)
	}
	return CompactRaw(alg, key, hb, payload)
}

// CompactRaw is Compact with the header's JSON as given, for headers no
// encoder would write.
func CompactRaw(alg string, key any, header, payload []byte) (string, error) {
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	sig, err := Signature(alg, key, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}
