package suite

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/extauthz/extauthz/internal/jws"
	"github.com/extauthz/extauthz/internal/keys"
)

// signer is a test key: a private key (JWK or PEM) or an HMAC secret.
type signer struct {
	key any // as jws.Signature takes it
	pub crypto.PublicKey
	kid string
	alg string // the key's own alg, or the usual one for its type
	// jwkAlg is the JWK's own alg member, "" when it has none.
	jwkAlg string
	// rawSecret says the file's bytes are the secret (not a JWK).
	rawSecret bool
}

// readSigner reads a private JWK, a PEM private key, or (anything else) the
// bytes of an HMAC secret, exactly as hmac_secret_file reads them.
func readSigner(name string) (*signer, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	isJWK := bytes.HasPrefix(trimmed, []byte("{"))
	if !isJWK && !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return &signer{key: data, alg: "HS256", rawSecret: true}, nil
	}
	k, err := jwk.ParseKey(data, jwk.WithPEM(!isJWK))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if private, err := jwk.IsPrivateKey(k); err == nil && !private {
		return nil, fmt.Errorf("%s: a public key cannot sign; give the private key", name)
	}
	s := &signer{}
	s.kid, _ = k.KeyID()
	if err := jwk.Export(k, &s.key); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cs, ok := s.key.(crypto.Signer); ok {
		s.pub = cs.Public()
	}
	if a, ok := k.Algorithm(); ok {
		s.alg, s.jwkAlg = a.String(), a.String()
	} else if ek, ok := k.(jwk.ECDSAPrivateKey); ok {
		crv, _ := ek.Crv()
		s.alg = map[string]string{"P-384": "ES384", "P-521": "ES512"}[crv.String()]
	}
	if s.alg == "" {
		s.alg = map[jwa.KeyType]string{jwa.RSA(): "RS256", jwa.OKP(): "EdDSA", jwa.OctetSeq(): "HS256", jwa.EC(): "ES256"}[k.KeyType()]
	}
	return s, nil
}

// keySpec is the key source an issuer_keys entry stands for: the public
// halves of the named keys as an inline JWK Set, each with the kid and alg
// its file gives, or one HMAC secret read as hmac_secret_file reads it.
// Either way the keys are checked as the policy's own would be.
func keySpec(signers map[string]*signer, files map[string]string, dir string, names []string) (keys.Spec, error) {
	if len(names) == 0 {
		return keys.Spec{}, errors.New("name at least one key of keys")
	}
	set := make([]map[string]any, 0, len(names))
	for _, name := range names {
		s := signers[name]
		switch {
		case s == nil:
			return keys.Spec{}, fmt.Errorf("no key named %q in the file's keys", name)
		case s.pub == nil && len(names) > 1:
			return keys.Spec{}, fmt.Errorf("key %q is a shared secret: an issuer verifies with one secret or with public keys, not both", name)
		case s.pub == nil && !s.rawSecret:
			return keys.Spec{}, fmt.Errorf("key %q is an oct JWK; give the secret as a file of its bytes, as hmac_secret_file reads it", name)
		case s.pub == nil:
			return keys.Spec{HMACSecretFile: rel(dir, files[name])}, nil
		}
		var m map[string]any
		k, err := jwk.Import(s.pub)
		if err == nil {
			var raw []byte
			if raw, err = json.Marshal(k); err == nil {
				err = json.Unmarshal(raw, &m)
			}
		}
		if err != nil {
			return keys.Spec{}, fmt.Errorf("key %q: %w", name, err)
		}
		if s.kid != "" {
			m["kid"] = s.kid
		}
		if s.jwkAlg != "" {
			m["alg"] = s.jwkAlg
		}
		set = append(set, m)
	}
	doc, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		return keys.Spec{}, err
	}
	return keys.Spec{JWKS: doc}, nil
}

// signer finds a key of the file's keys by name.
func (b *build) signer(name string) (*signer, error) {
	s := b.signers[name]
	if s == nil {
		return nil, fmt.Errorf("no key named %q in the file's keys", name)
	}
	return s, nil
}

// publicJWK is a key's public half as a JWK: only the members RFC 7517
// requires (kty and the key's parameters), no kid or alg.
func (b *build) publicJWK(name string) (jwk.Key, error) {
	s, err := b.signer(name)
	if err != nil {
		return nil, err
	}
	if s.pub == nil {
		return nil, fmt.Errorf("key %q is a shared secret; it has no public key", name)
	}
	return jwk.Import(s.pub)
}

// token signs the token a test describes ("" when it has none).
func (b *build) token(t *testToken) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.Literal != "" {
		if t.Key != "" || t.Claims != nil || t.Payload != nil || t.Header != nil {
			return "", errors.New("literal excludes key, header, claims and payload")
		}
		return t.Literal, nil
	}
	s, err := b.signer(t.Key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	header := map[string]any{}
	if s.kid != "" {
		header["kid"] = s.kid
	}
	var payload []byte
	switch {
	case t.Payload != nil && t.Claims != nil:
		return "", errors.New("give claims or payload, not both")
	case t.Payload != nil:
		payload = []byte(*t.Payload)
	default:
		claims, err := b.claims(t.Claims, nil)
		if err != nil {
			return "", err
		}
		if payload, err = json.Marshal(claims); err != nil {
			return "", fmt.Errorf("claims: %w", err)
		}
	}
	return b.sign(t.Key, s, cmp.Or(t.Alg, s.alg), header, t.Header, payload)
}

// proof signs a DPoP proof for a request to htu by method: typ dpop+jwt,
// the key's alg and public jwk, a random jti, htm, htu, iat now, and ath
// when an access token is sent in the DPoP scheme; p's header and claims
// override these.
func (b *build) proof(p *testProof, method, htu, accessToken string) (string, error) {
	s, err := b.signer(p.Key)
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	header := map[string]any{"typ": "dpop+jwt"}
	if _, given := p.Header["jwk"]; !given {
		if header["jwk"], err = b.publicJWK(p.Key); err != nil {
			return "", fmt.Errorf("key: %w", err)
		}
	}
	defaults := map[string]any{"jti": "random", "htm": method, "htu": htu, "iat": b.now.Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		defaults["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	claims, err := b.claims(p.Claims, defaults)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("claims: %w", err)
	}
	return b.sign(p.Key, s, cmp.Or(p.Alg, s.alg), header, p.Header, payload)
}

// sign makes a compact JWS of payload: header is the runner's, overrides
// the test's (a null member deletes one), alg is what it is signed with
// and, unless overridden, its alg member.
func (b *build) sign(name string, s *signer, alg string, header, overrides map[string]any, payload []byte) (string, error) {
	header["alg"] = alg
	for k, v := range overrides {
		if v == nil {
			delete(header, k)
			continue
		}
		x, err := b.expand(v)
		if err != nil {
			return "", fmt.Errorf("header.%s: %w", k, err)
		}
		header[k] = x
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	sig, err := jws.Signature(alg, s.key, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign with key %q as %s: %w", name, alg, err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}
