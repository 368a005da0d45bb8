package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

// TestDigestParseVerifies holds a token parsed through its Digest, whose
// signing input is not hashed again, to Verify's verdicts for a token parsed
// from scratch: every algorithm verifies, and a token whose payload or
// signature changed fails as ErrSignature, the changed one with a digest of
// its own bytes.
func TestDigestParseVerifies(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			raw := signed(alg, goodClaims)
			parts := strings.Split(raw, ".")
			other := parts[0] + "." + enc(strings.Replace(goodClaims, "spiffe://example.org/w", "spiffe://example.org/x", 1)) + "." + parts[2]
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[len(sig)/2] ^= 1
			flipped := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
			candidates := []*keys.Key{pubFor(alg)}
			d := DigestOf(raw)
			tok, err := d.Parse(Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tok.Verify(candidates); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for name, raw := range map[string]string{"payload": other, "signature": flipped} {
				d := DigestOf(raw)
				tok, err := d.Parse(Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if err := tok.Verify(candidates); !errors.Is(err, ErrSignature) {
					t.Errorf("%s changed: Verify = %v, want ErrSignature", name, err)
				}
			}
		})
	}
}

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
