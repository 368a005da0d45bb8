// Package mint makes the keys and tokens the benchmarks use: one key per
// algorithm (ES256, RS256, PS256, EdDSA), their JWK Set, and compact JWS
// tokens signed with the standard library. It is independent of the token
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
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"runtime"
	"sync"
)

// Algs are the algorithms every bearer scenario is run with, in report order.
var Algs = []string{"ES256", "RS256", "PS256", "EdDSA"}

var b64 = base64.RawURLEncoding

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
	j := map[string]any{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch pub := k.Signer.Public().(type) {
	case *rsa.PublicKey:
		j["kty"] = "RSA"
		j["n"] = b64.EncodeToString(pub.N.Bytes())
		j["e"] = b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		j["kty"], j["crv"] = "EC", "P-256"
		j["x"] = b64.EncodeToString(point[1:33])
		j["y"] = b64.EncodeToString(point[33:])
	case ed25519.PublicKey:
		j["kty"], j["crv"] = "OKP", "Ed25519"
		j["x"] = b64.EncodeToString(pub)
	}
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

// Sign returns the compact JWS of claims, with header {alg, kid, typ}.
func (k *Key) Sign(typ string, claims map[string]any) (string, error) {
	h := map[string]any{"alg": k.Alg, "kid": k.Kid}
	if typ != "" {
		h["typ"] = typ
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	sig, err := k.signature([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

func (k *Key) signature(input []byte) ([]byte, error) {
	if k.Alg == "EdDSA" {
		return ed25519.Sign(k.Signer.(ed25519.PrivateKey), input), nil
	}
	d := sha256.Sum256(input)
	switch k.Alg {
	case "RS256":
		return rsa.SignPKCS1v15(nil, k.Signer.(*rsa.PrivateKey), crypto.SHA256, d[:])
	case "PS256":
		return rsa.SignPSS(rand.Reader, k.Signer.(*rsa.PrivateKey), crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	r, s, err := ecdsa.Sign(rand.Reader, k.Signer.(*ecdsa.PrivateKey), d[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// SignMany signs n tokens in parallel on every core; claims(i) gives the
// claims of token i.
func (k *Key) SignMany(n int, typ string, claims func(i int) map[string]any) ([]string, error) {
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				tok, err := k.Sign(typ, claims(i))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = tok
			}
		})
	}
	wg.Wait()
	return out, firstErr
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
