package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// DefaultNonceLifetime is how long one nonce window lasts. A nonce is
// accepted in its own window and the next, so between one and two of them.
const DefaultNonceLifetime = 5 * time.Minute

// minSecretBytes is the smallest nonce secret: an HMAC-SHA256 key.
const minSecretBytes = 32

// Nonces issues and checks server nonces (RFC 9449 §8) without state: a
// nonce is a time window and an HMAC of it under a secret, so any replica
// holding the same secret accepts what another issued.
type Nonces struct {
	key      []byte
	lifetime time.Duration
	now      func() time.Time
}

// NewNonces returns a nonce issuer. An empty secret makes a random one,
// which suits a single replica; replicas behind one load balancer must
// share a secret of at least 32 bytes. lifetime ≤ 0 means
// DefaultNonceLifetime; now nil means time.Now.
func NewNonces(secret []byte, lifetime time.Duration, now func() time.Time) (*Nonces, error) {
	switch {
	case len(secret) == 0:
		secret = make([]byte, minSecretBytes)
		rand.Read(secret)
	case len(secret) < minSecretBytes:
		return nil, fmt.Errorf("dpop: nonce secret of %d bytes; at least %d are needed", len(secret), minSecretBytes)
	}
	if lifetime <= 0 {
		lifetime = DefaultNonceLifetime
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{key: append([]byte(nil), secret...), lifetime: lifetime, now: now}, nil
}

// nonceBytes is the window (8 bytes) and a 128-bit MAC.
const nonceBytes = 8 + 16

func (n *Nonces) window() uint64 {
	return uint64(n.now().UnixNano() / int64(n.lifetime))
}

func (n *Nonces) mac(w uint64, out []byte) {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], w)
	m.Write([]byte("extauthz dpop nonce\x00"))
	m.Write(b[:])
	var sum [sha256.Size]byte
	copy(out, m.Sum(sum[:0]))
}

// Current is the nonce to send in DPoP-Nonce now.
func (n *Nonces) Current() string {
	var b [nonceBytes]byte
	w := n.window()
	binary.BigEndian.PutUint64(b[:8], w)
	n.mac(w, b[8:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Valid reports whether s is a nonce of the current or the previous window.
func (n *Nonces) Valid(s string) bool {
	var b [nonceBytes]byte
	if len(s) != base64.RawURLEncoding.EncodedLen(nonceBytes) {
		return false
	}
	if k, err := b64.Decode(b[:], []byte(s)); err != nil || k != nonceBytes {
		return false
	}
	w := binary.BigEndian.Uint64(b[:8])
	if cur := n.window(); w != cur && w+1 != cur {
		return false
	}
	var want [16]byte
	n.mac(w, want[:])
	return hmac.Equal(want[:], b[8:])
}
