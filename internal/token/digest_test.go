package token

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// TestDigestSum: the Sum is the SHA-256 of the signing input's SHA-256 and
// the rest, so it tells apart tokens that differ anywhere, and the same
// bytes split at another dot.
func TestDigestSum(t *testing.T) {
	raw := signed("ES256", goodClaims)
	dot := strings.LastIndexByte(raw, '.')
	inner := sha256.Sum256([]byte(raw[:dot]))
	if want := sha256.Sum256(append(inner[:], raw[dot:]...)); DigestOf(raw).Sum != want {
		t.Fatal("Sum is not SHA-256(SHA-256(signing input) || rest)")
	}
	long := "a.b." + strings.Repeat("c", 4096)
	inner = sha256.Sum256([]byte("a.b"))
	if want := sha256.Sum256(append(inner[:], long[3:]...)); DigestOf(long).Sum != want {
		t.Fatal("a long rest: Sum differs")
	}
	seen := map[[sha256.Size]byte]string{}
	for _, s := range []string{
		raw, raw[:len(raw)-1], raw + "A", raw[:dot], raw[:dot] + ".", raw[:dot] + "..", "", ".", "..", "a", "a.", ".a", "a.b", "ab", long,
	} {
		sum := DigestOf(s).Sum
		if prev, dup := seen[sum]; dup {
			t.Fatalf("%q and %q share a Sum", prev, s)
		}
		seen[sum] = s
		if DigestOf(s).Sum != sum {
			t.Fatalf("%q: Sum differs between calls", s)
		}
	}
}

// TestDigestParseRefuses: a digest does not make a malformed token parse.
func TestDigestParseRefuses(t *testing.T) {
	for _, raw := range []string{"", "a.b", "a.b.c.d", signed("ES256", goodClaims) + "."} {
		d := DigestOf(raw)
		if tok, err := d.Parse(Limits{}); tok != nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, %v; want ErrMalformed", raw, tok, err)
		}
	}
}
