package token

import (
	"crypto/sha256"
	"strings"
	"unsafe"
)

// Digest names a compact token by its bytes, for the caches that remember
// verified tokens, built so that a token seen for the first time is hashed
// once: Sum is the SHA-256 of the SHA-256 of the signing input (the token
// up to its last dot) followed by the rest of the token, and Parse hands
// that inner SHA-256 to Verify, which an RS256, PS256 or ES256 signature
// would otherwise compute again.
//
// Equal Sums mean equal tokens as surely as equal SHA-256s of the tokens
// would: the rest of the token is hashed as it is, and the signing input
// through a hash that no one can find a collision of.
type Digest struct {
	Sum     [sha256.Size]byte
	raw     string
	signing [sha256.Size]byte
}

// DigestOf hashes raw in place, of any shape: a token that does not parse
// still gets a Sum.
func DigestOf(raw string) Digest {
	d := Digest{raw: raw}
	dot := strings.LastIndexByte(raw, '.')
	if dot < 0 {
		dot = len(raw)
	}
	d.signing = sha256.Sum256(asBytes(raw[:dot]))
	rest := raw[dot:]
	// The rest is a dot and a signature, of 87 bytes for ES256 and 684 for
	// a 4096-bit RSA key: on the stack, the outer hash costs no allocation.
	var buf [sha256.Size + 1024]byte
	if len(rest) <= len(buf)-sha256.Size {
		n := copy(buf[copy(buf[:], d.signing[:]):], rest)
		d.Sum = sha256.Sum256(buf[:sha256.Size+n])
		return d
	}
	h := sha256.New()
	h.Write(d.signing[:])
	h.Write(asBytes(rest))
	h.Sum(d.Sum[:0])
	return d
}

// Parse is Parse of the token d was made from (DigestOf), whose signature
// Verify then checks without hashing the signing input again.
func (d *Digest) Parse(lim Limits) (*Token, error) {
	t, err := Parse(d.raw, lim)
	if err != nil {
		return nil, err
	}
	// Parse stopped at the second dot, the last one: the signing input is
	// the one DigestOf hashed.
	t.signingSHA256, t.hasSigningSHA256 = d.signing, true
	return t, nil
}

// asBytes reads s as bytes without a copy, for the hash functions, which
// only read them.
func asBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
