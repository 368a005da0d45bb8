package replay

import (
	"crypto/sha256"
	"errors"
	"strings"
)

// errIssuerNUL guards the injectivity of digest: with no NUL in the issuer,
// the first NUL of issuer\x00jti is the separator, so no two (issuer, jti)
// pairs hash the same input whatever bytes the jti holds.
var errIssuerNUL = errors.New("replay: issuer contains a NUL byte")

// digest hashes (issuer, jti) so that neither memory use nor Redis keys
// depend on attacker-chosen bytes or lengths.
func digest(issuer, jti string) ([sha256.Size]byte, error) {
	if strings.IndexByte(issuer, 0) >= 0 {
		return [sha256.Size]byte{}, errIssuerNUL
	}
	// A stack buffer covers the usual issuer URL plus a UUID-sized jti
	// without a heap allocation per claim.
	var buf [256]byte
	b := buf[:0]
	if n := len(issuer) + 1 + len(jti); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = append(b, issuer...)
	b = append(b, 0)
	b = append(b, jti...)
	return sha256.Sum256(b), nil
}
