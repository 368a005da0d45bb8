package keys

import (
	"crypto"
	"crypto/elliptic"
	"slices"
)

// AlgKind is the key type and signature scheme a JWS algorithm needs.
type AlgKind uint8

const (
	// KindRSA is RSASSA-PKCS1-v1_5 (RS*).
	KindRSA AlgKind = iota + 1
	// KindRSAPSS is RSASSA-PSS (PS*).
	KindRSAPSS
	// KindECDSA is ECDSA on one curve (ES*).
	KindECDSA
	// KindEdDSA is Ed25519 (EdDSA, and its fully specified name Ed25519).
	KindEdDSA
	// KindHMAC is a shared secret (HS*).
	KindHMAC
)

// Algorithm is one JWS algorithm extauthz verifies: the key it needs and the
// hash it signs over. The table below is the one place these facts live; key
// fitting (Key.Fits), signature verification (package token), JWK `alg`
// checks and the policy's allow-lists all read it.
type Algorithm struct {
	Name string
	Kind AlgKind
	// Hash is the digest signed (for HMAC, the MAC's hash); 0 for EdDSA,
	// which signs the message itself.
	Hash crypto.Hash
	// Curve is the ECDSA curve the algorithm requires, nil otherwise.
	Curve elliptic.Curve
	// Default is true when the algorithm is in the default allow-list of
	// its family: public-key issuers take every default asymmetric one,
	// hmac_secret_file issuers every default HMAC one.
	Default bool
}

// Symmetric reports whether the algorithm needs a shared secret.
func (a *Algorithm) Symmetric() bool { return a.Kind == KindHMAC }

// MinSecretLen is the shortest HMAC secret RFC 7518 section 3.2 allows for
// the algorithm (its hash's size), 0 for asymmetric algorithms.
func (a *Algorithm) MinSecretLen() int {
	if a.Kind != KindHMAC {
		return 0
	}
	return a.Hash.Size()
}

// algorithms is in preference order: the order of default allow-lists, of
// DPoP's `algs` challenge parameter and of error messages.
var algorithms = []Algorithm{
	{Name: "ES256", Kind: KindECDSA, Hash: crypto.SHA256, Curve: elliptic.P256(), Default: true},
	{Name: "ES384", Kind: KindECDSA, Hash: crypto.SHA384, Curve: elliptic.P384(), Default: true},
	{Name: "ES512", Kind: KindECDSA, Hash: crypto.SHA512, Curve: elliptic.P521(), Default: true},
	{Name: "PS256", Kind: KindRSAPSS, Hash: crypto.SHA256, Default: true},
	{Name: "PS384", Kind: KindRSAPSS, Hash: crypto.SHA384, Default: true},
	{Name: "PS512", Kind: KindRSAPSS, Hash: crypto.SHA512, Default: true},
	{Name: "RS256", Kind: KindRSA, Hash: crypto.SHA256, Default: true},
	{Name: "RS384", Kind: KindRSA, Hash: crypto.SHA384, Default: true},
	{Name: "RS512", Kind: KindRSA, Hash: crypto.SHA512, Default: true},
	{Name: "EdDSA", Kind: KindEdDSA, Default: true},
	// RFC 9864's fully specified name for EdDSA with Ed25519. Accepted
	// when an allow-list names it; the defaults keep the name every
	// deployed library sends, so one key is not offered twice.
	{Name: "Ed25519", Kind: KindEdDSA},
	{Name: "HS256", Kind: KindHMAC, Hash: crypto.SHA256, Default: true},
	{Name: "HS384", Kind: KindHMAC, Hash: crypto.SHA384, Default: true},
	{Name: "HS512", Kind: KindHMAC, Hash: crypto.SHA512, Default: true},
}

// LookupAlgorithm finds a JWS algorithm by its exact (case-sensitive) name.
// "none" and every name not in the table are not found.
func LookupAlgorithm(name string) (*Algorithm, bool) {
	for i := range algorithms {
		if algorithms[i].Name == name {
			return &algorithms[i], true
		}
	}
	return nil, false
}

// Algorithms returns every supported algorithm, in preference order.
func Algorithms() []Algorithm { return slices.Clone(algorithms) }

// AlgorithmNames lists the names of the algorithms of one family
// (symmetric or not), in preference order; defaults limits it to the
// default allow-list.
func AlgorithmNames(symmetric, defaults bool) []string {
	var out []string
	for i := range algorithms {
		a := &algorithms[i]
		if a.Symmetric() == symmetric && (a.Default || !defaults) {
			out = append(out, a.Name)
		}
	}
	return out
}
