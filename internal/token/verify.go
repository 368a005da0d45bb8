package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

// minRSABits repeats the keys package's floor so that a weak key that slipped
// through there still verifies nothing here.
const minRSABits = 2048

// algorithm is a JWS alg of the keys package's table, bound to one key type
// and one hash, so the header can choose among verifiers but never
// reinterpret a key.
type algorithm struct {
	*keys.Algorithm
	ecBytes int // size of r and of s in an ECDSA signature
}

// lookup is the algorithm allow-list: the keys package's table.
func lookup(alg string) (algorithm, bool) {
	a, ok := keys.LookupAlgorithm(alg)
	if !ok {
		return algorithm{}, false
	}
	out := algorithm{Algorithm: a}
	if a.Curve != nil {
		out.ecBytes = (a.Curve.Params().BitSize + 7) / 8
	}
	return out, true
}

func allowedAlg(alg string) bool {
	_, ok := lookup(alg)
	return ok
}

// pssOptions is shared because VerifyPSS only reads it. RFC 7518 fixes the
// salt length to the hash size; auto-detection would accept other encodings.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// Verify checks the signature with the first candidate key that fits the
// token's alg (per keys.Key.Fits, and the key checks of this package) and
// verifies it. It returns an error wrapping ErrNoKey when no candidate fits
// and ErrSignature when some fit but none verifies.
func (t *Token) Verify(candidates []*keys.Key) error {
	_, err := t.VerifiedBy(candidates)
	return err
}

// VerifiedBy is Verify that also returns the key that verified the token, so
// a cache of verified tokens can forget one whose key leaves the key set.
func (t *Token) VerifiedBy(candidates []*keys.Key) (*keys.Key, error) {
	alg := t.Header.Alg
	a, ok := lookup(alg)
	if !ok {
		return nil, fmt.Errorf("%w: alg %.32q is not supported", ErrAlgorithm, alg)
	}
	var (
		sum    [sha512.Size]byte
		digest []byte
		fit    int
	)
	for _, k := range candidates {
		if k == nil || !k.Fits(alg) {
			continue
		}
		switch {
		case digest != nil || a.Hash == 0 || a.Kind == keys.KindHMAC:
		case a.Hash == crypto.SHA256 && t.hasSigningSHA256:
			digest = append(sum[:0], t.signingSHA256[:]...)
		default:
			digest = sum64(a.Hash, t.signingInput, &sum)
		}
		fits, ok := a.verify(k.Public, t.signingInput, digest, t.signature)
		if !fits {
			continue
		}
		if ok {
			return k, nil
		}
		fit++
	}
	if fit == 0 {
		return nil, fmt.Errorf("%w: none of %d candidate keys fits %s", ErrNoKey, len(candidates), alg)
	}
	return nil, fmt.Errorf("%w: %s, tried %d keys", ErrSignature, alg, fit)
}

// DropSignature releases the signed bytes and the signature once the token
// is verified, so a cached token holds only its claims.
func (t *Token) DropSignature() {
	t.signingInput, t.signature = nil, nil
}

// sum64 hashes without allocating a hash.Hash.
func sum64(h crypto.Hash, msg []byte, out *[sha512.Size]byte) []byte {
	switch h {
	case crypto.SHA256:
		s := sha256.Sum256(msg)
		return append(out[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(msg)
		return append(out[:0], s[:]...)
	}
	s := sha512.Sum512(msg)
	return append(out[:0], s[:]...)
}

// verify reports whether pub is a usable key of a's type (fits) and, if so,
// whether sig is its signature over msg (whose hash is digest).
func (a algorithm) verify(pub any, msg, digest, sig []byte) (fits, ok bool) {
	switch a.Kind {
	case keys.KindRSA, keys.KindRSAPSS:
		k, _ := pub.(*rsa.PublicKey)
		if k == nil || k.N == nil || k.N.BitLen() < minRSABits {
			return false, false
		}
		if a.Kind == keys.KindRSA {
			return true, rsa.VerifyPKCS1v15(k, a.Hash, digest, sig) == nil
		}
		return true, rsa.VerifyPSS(k, a.Hash, digest, sig, pssOptions) == nil
	case keys.KindECDSA:
		k, _ := pub.(*ecdsa.PublicKey)
		//lint:ignore SA1019 X and Y are only read, to refuse a key without a point, on which VerifyASN1 panics.
		if k == nil || k.Curve != a.Curve || k.X == nil || k.Y == nil {
			return false, false
		}
		return true, verifyECDSA(k, digest, sig, a.ecBytes)
	case keys.KindEdDSA:
		// ed25519.Verify panics on a key of the wrong length.
		k, _ := pub.(ed25519.PublicKey)
		if len(k) != ed25519.PublicKeySize {
			return false, false
		}
		return true, len(sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, sig)
	case keys.KindHMAC:
		// An empty secret would let anyone sign.
		k, _ := pub.([]byte)
		if len(k) == 0 {
			return false, false
		}
		mac := hmac.New(a.Hash.New, k)
		mac.Write(msg)
		var sum [sha512.Size]byte
		return true, hmac.Equal(mac.Sum(sum[:0]), sig)
	}
	return false, false
}

// verifyECDSA checks a JWS ECDSA signature, which RFC 7518 fixes as r||s of
// exactly 2*n bytes. A DER signature, whatever its length, is refused rather
// than accepted as a second encoding of the same signature.
func verifyECDSA(k *ecdsa.PublicKey, digest, sig []byte, n int) bool {
	if len(sig) != 2*n || allZero(sig) {
		return false
	}
	var der [2 + 2*(3+66)]byte
	return ecdsa.VerifyASN1(k, digest, appendDERSig(der[:0], sig[:n], sig[n:]))
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// appendDERSig encodes r and s as the SEQUENCE of two INTEGERs that
// ecdsa.VerifyASN1 takes; it saves the big.Int round trip of ecdsa.Verify.
func appendDERSig(b, r, s []byte) []byte {
	r, s = minimal(r), minimal(s)
	body := derIntLen(r) + derIntLen(s)
	b = append(b, 0x30)
	if body >= 0x80 {
		b = append(b, 0x81) // body is at most 2*(3+66) bytes
	}
	b = append(b, byte(body))
	b = appendDERInt(b, r)
	return appendDERInt(b, s)
}

// minimal strips leading zeros, keeping one byte for zero.
func minimal(x []byte) []byte {
	for len(x) > 1 && x[0] == 0 {
		x = x[1:]
	}
	return x
}

// derIntLen is the encoded size of a non-negative INTEGER with content x:
// a leading 0x00 keeps a high first bit from reading as negative.
func derIntLen(x []byte) int {
	n := len(x)
	if x[0]&0x80 != 0 {
		n++
	}
	return 2 + n
}

func appendDERInt(b, x []byte) []byte {
	b = append(b, 0x02, byte(derIntLen(x)-2))
	if x[0]&0x80 != 0 {
		b = append(b, 0)
	}
	return append(b, x...)
}

// ValidateTime checks the time claims against now, allowing skew either way
// for clock drift between issuer and us: exp (required when requireExp) must
// be after now-skew, nbf at or before now+skew, and iat at or before
// now+skew. A negative skew counts as zero.
func (t *Token) ValidateTime(now time.Time, skew time.Duration, requireExp bool) error {
	skew = max(skew, 0)
	// Comparing the exact instants, not whole seconds, keeps a fraction of a
	// second, in now or in the claims, from being rounded in the token's
	// favour: the floor of nbf or iat would be too early.
	switch {
	case t.HasExpiry && !now.Before(t.ExpiryTime().Add(skew)):
		return fmt.Errorf("%w: exp is past (skew %s)", ErrExpired, skew)
	case !t.HasExpiry && requireExp:
		return fmt.Errorf("%w: exp is required", ErrMissingExpiry)
	case t.HasNotBefore && now.Before(t.NotBeforeTime().Add(-skew)):
		return fmt.Errorf("%w: nbf is ahead (skew %s)", ErrNotYetValid, skew)
	case t.HasIssuedAt && t.IssuedAtTime().After(now.Add(skew)):
		return fmt.Errorf("%w: iat is ahead (skew %s)", ErrIssuedInFuture, skew)
	}
	return nil
}
