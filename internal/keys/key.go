package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
)

// Errors a Source returns. Callers tell them apart with errors.Is: an unknown
// kid is the token's fault (401), unavailable keys are ours (503).
var (
	// ErrUnknownKID means the issuer's current key set has no key for the kid,
	// even after the one refetch the cooldown allows — or has no key at all
	// because a key file or SPIFFE bundle that holds no usable key revoked
	// every one (the error then says "every key is revoked").
	ErrUnknownKID = errors.New("keys: no key for kid")
	// ErrUnavailable means the issuer's keys cannot be had: never fetched,
	// fetch failing, or stale past the limit.
	ErrUnavailable = errors.New("keys: key set unavailable")
)

// Key is one verification key. It is immutable once built.
type Key struct {
	// ID is the JWK's kid, "" when it has none.
	ID string
	// Alg is the JWK's alg, "" when it has none; when set, the key verifies
	// only that algorithm.
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, or
	// []byte (an HMAC secret).
	Public any
}

// Fits reports whether k may verify a signature made with the JWS algorithm
// alg: the algorithm must fit the key's type (and curve, or an HMAC
// secret's length), and the key's own alg, if it has one.
func (k *Key) Fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	a, ok := LookupAlgorithm(alg)
	if !ok {
		return false
	}
	switch pub := k.Public.(type) {
	case *rsa.PublicKey:
		return a.Kind == KindRSA || a.Kind == KindRSAPSS
	case *ecdsa.PublicKey:
		return a.Kind == KindECDSA && pub.Curve == a.Curve
	case ed25519.PublicKey:
		return a.Kind == KindEdDSA
	case []byte:
		// RFC 7518 section 3.2: the key must be at least as long as the
		// hash output, so a secret replaced by a shorter one stops
		// verifying the algorithms it is too short for.
		return a.Kind == KindHMAC && len(pub) >= a.MinSecretLen()
	}
	return false
}

// MinHMACSecretLen is the shortest secret, in bytes, that RFC 7518 section
// 3.2 allows for the HMAC algorithm alg: the size of its hash output. It is 0
// for any other algorithm.
func MinHMACSecretLen(alg string) int {
	if a, ok := LookupAlgorithm(alg); ok {
		return a.MinSecretLen()
	}
	return 0
}

// Set is an immutable set of keys, indexed by kid.
type Set struct {
	all   []*Key
	byKID map[string][]*Key
	// anon are the keys without a kid, tried for a token whose kid names
	// no key.
	anon []*Key
}

// NewSet indexes ks. The slice is kept; callers must not change it.
func NewSet(ks []*Key) *Set {
	s := &Set{all: ks, byKID: make(map[string][]*Key, len(ks))}
	for _, k := range ks {
		if k.ID != "" {
			s.byKID[k.ID] = append(s.byKID[k.ID], k)
		} else {
			s.anon = append(s.anon, k)
		}
	}
	return s
}

// Lookup returns the keys that may verify a token with kid: those with that
// kid, or every key when kid is "". It returns nil when none has the kid.
func (s *Set) Lookup(kid string) []*Key {
	if s == nil {
		return nil
	}
	if kid == "" {
		return s.all
	}
	return s.byKID[kid]
}

// Len is the number of keys in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// All returns every key of the set. Callers must not change the slice.
func (s *Set) All() []*Key {
	if s == nil {
		return nil
	}
	return s.all
}

// Source yields the keys of one issuer. Every key source implements it, so a
// JWKS URI, a file and a SPIFFE bundle are interchangeable to the verifier.
type Source interface {
	// Keys returns the keys that may verify a token with kid ("" for a token
	// without one). A remote source refetches at most once per cooldown for
	// an unknown kid and waits for the network no longer than its fetch-wait
	// bound. Errors wrap ErrUnknownKID or ErrUnavailable.
	Keys(ctx context.Context, kid string) ([]*Key, error)
}

// SecretSizer is implemented by the source of an hmac_secret_file issuer,
// so that the policy can fit the issuer's algorithms to its secret: HS384
// and HS512 need longer secrets than HS256 (MinHMACSecretLen).
type SecretSizer interface {
	// SecretLen is the length in bytes of the secret now in use, 0 while
	// the file holds none.
	SecretLen() int
}
