package token

import (
	"errors"
	"slices"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

// TestAlgorithmTable walks the keys package's algorithm table for every key
// type: a key verifies exactly the algorithms of its kind (and curve), Fits
// agrees with what verification does, and the table is the list this
// package's tests sign with.
func TestAlgorithmTable(t *testing.T) {
	k := theKeys()
	pubs := map[string]*keys.Key{
		"RSA":     {Public: &k.rsa.PublicKey},
		"P-256":   {Public: &k.p256.PublicKey},
		"P-384":   {Public: &k.p384.PublicKey},
		"P-521":   {Public: &k.p521.PublicKey},
		"Ed25519": {Public: k.ed.Public()},
		"HMAC":    {Public: k.hs},
	}
	// owner is the one key type each algorithm kind verifies with.
	owner := func(a keys.Algorithm) string {
		switch a.Kind {
		case keys.KindRSA, keys.KindRSAPSS:
			return "RSA"
		case keys.KindECDSA:
			return a.Curve.Params().Name
		case keys.KindEdDSA:
			return "Ed25519"
		}
		return "HMAC"
	}
	var names []string
	for _, a := range keys.Algorithms() {
		names = append(names, a.Name)
		tok := mustParse(t, signed(a.Name, goodClaims))
		for kind, pub := range pubs {
			want := kind == owner(a)
			if got := pub.Fits(a.Name); got != want {
				t.Errorf("%s key Fits(%s) = %v, want %v", kind, a.Name, got, want)
			}
			err := tok.Verify([]*keys.Key{pub})
			switch {
			case want && err != nil:
				t.Errorf("%s with its %s key: %v", a.Name, kind, err)
			case !want && !errors.Is(err, ErrNoKey):
				t.Errorf("%s with a %s key: %v, want ErrNoKey", a.Name, kind, err)
			}
		}
		if a.Symmetric() != (a.Kind == keys.KindHMAC) || (a.MinSecretLen() > 0) != a.Symmetric() {
			t.Errorf("%s: symmetric %v, min secret %d", a.Name, a.Symmetric(), a.MinSecretLen())
		}
	}
	slices.Sort(names)
	want := slices.Clone(allAlgs)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("table %v, tests sign %v", names, want)
	}
	for _, bad := range []string{"none", "None", "es256", "HS1", "RSA-OAEP", ""} {
		if _, ok := keys.LookupAlgorithm(bad); ok {
			t.Errorf("LookupAlgorithm(%q) found", bad)
		}
	}
}
