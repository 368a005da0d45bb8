// Package mint makes the keys and tokens the benchmarks use: one key per
// algorithm (ES256, RS256, PS256, EdDSA), their JWK Set, compact JWS
// tokens and DPoP proofs signed with the standard library, and RFC 7638
// thumbprints. It is independent of the token
// package it helps measure, and fast enough to sign tens of thousands of
// tokens at the start of a run.
package mint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"sync"

	"github.com/extauthz/extauthz/internal/jws"
)

// Algs are the algorithms every bearer scenario is run with, in report order.
var Algs = []string{"ES256", "RS256", "PS256", "EdDSA"}

// Key is a private key with its kid and algorithm.
type Key struct {
	Kid    string
	Alg    string
	Signer crypto.Signer
}

// Keys holds one key per algorithm.
type Keys struct {
	ByAlg map[string]*Key
}

// NewKeys generates a key for each of algs (RSA keys are 2048 bits). kidPrefix
// keeps the kids of two key sets apart.
func NewKeys(kidPrefix string, algs ...string) (*Keys, error) {
	ks := &Keys{ByAlg: make(map[string]*Key, len(algs))}
	for _, alg := range algs {
		var (
			s   crypto.Signer
			err error
		)
		switch alg {
		case "ES256":
			s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case "RS256", "PS256":
			s, err = rsa.GenerateKey(rand.Reader, 2048)
		case "EdDSA":
			_, s, err = ed25519.GenerateKey(rand.Reader)
		default:
			err = fmt.Errorf("mint: unsupported algorithm %q", alg)
		}
		if err != nil {
			return nil, err
		}
		ks.ByAlg[alg] = &Key{Kid: kidPrefix + "-" + alg, Alg: alg, Signer: s}
	}
	return ks, nil
}

// JWK is the public JWK of k, with kid, alg and use.
func (k *Key) JWK() map[string]any {
	j := k.PublicJWK()
	j["kid"], j["alg"], j["use"] = k.Kid, k.Alg, "sig"
	return j
}

// JWKS is the JWK Set of every key, in the order of Algs.
func (ks *Keys) JWKS() []byte {
	var list []map[string]any
	for _, alg := range Algs {
		if k, ok := ks.ByAlg[alg]; ok {
			list = append(list, k.JWK())
		}
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		panic(err)
	}
	return b
}

// PublicJWK is the public key as a bare JWK: the members RFC 7638 requires
// and nothing else (no kid, alg or use), as a DPoP proof's jwk header
// carries it.
func (k *Key) PublicJWK() map[string]any {
	j, err := jws.PublicJWK(k.Signer.Public())
	if err != nil {
		panic(err)
	}
	return j
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public key, base64url
// without padding: what an access token's cnf.jkt names (RFC 9449 §6.1).
func (k *Key) Thumbprint() string {
	jkt, err := jws.Thumbprint(k.Signer.Public())
	if err != nil {
		panic(err)
	}
	return jkt
}

// Sign returns the compact JWS of claims, with header {alg, kid, typ}.
func (k *Key) Sign(typ string, claims map[string]any) (string, error) {
	h := map[string]any{"kid": k.Kid}
	if typ != "" {
		h["typ"] = typ
	}
	return k.SignJWS(h, claims)
}

// SignProof returns a DPoP proof (RFC 9449 §4.2) of claims: header
// {typ: dpop+jwt, alg, jwk: the public key}, no kid.
func (k *Key) SignProof(claims map[string]any) (string, error) {
	return k.SignJWS(map[string]any{"typ": "dpop+jwt", "jwk": k.PublicJWK()}, claims)
}

// SignJWS returns the compact JWS of claims under header, whose alg is set
// to the key's.
func (k *Key) SignJWS(header, claims map[string]any) (string, error) {
	h := maps.Clone(header)
	if h == nil {
		h = map[string]any{}
	}
	h["alg"] = k.Alg
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return jws.Compact(k.Alg, k.Signer, h, cb)
}

// SignMany signs n tokens in parallel on every core; claims(i) gives the
// claims of token i.
func (k *Key) SignMany(n int, typ string, claims func(i int) map[string]any) ([]string, error) {
	out := make([]string, n)
	err := Parallel(n, func(i int) error {
		tok, err := k.Sign(typ, claims(i))
		out[i] = tok
		return err
	})
	return out, err
}

// Parallel calls f(i) for every i in [0, n) on every core and returns the
// first error; a worker stops at its first error.
func Parallel(n int, f func(i int) error) error {
	workers := runtime.GOMAXPROCS(0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := f(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// PKCS8 returns each private key in PKCS #8 DER, by algorithm.
func (ks *Keys) PKCS8() (map[string][]byte, error) {
	out := make(map[string][]byte, len(ks.ByAlg))
	for alg, k := range ks.ByAlg {
		der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
		if err != nil {
			return nil, err
		}
		out[alg] = der
	}
	return out, nil
}

// KeysFromPKCS8 is the inverse of PKCS8, with the same kid prefix NewKeys
// was given.
func KeysFromPKCS8(kidPrefix string, ders map[string][]byte) (*Keys, error) {
	ks := &Keys{ByAlg: make(map[string]*Key, len(ders))}
	for alg, der := range ders {
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("mint: %s key is %T", alg, k)
		}
		ks.ByAlg[alg] = &Key{Kid: kidPrefix + "-" + alg, Alg: alg, Signer: s}
	}
	return ks, nil
}
