package policy

import (
	"path/filepath"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

// TestAlgorithmTableAllowLists walks the key table: every algorithm is
// accepted in the allow-list of its own family (public-key issuers, HMAC
// issuers, DPoP proofs) and refused in the other's, and each family's
// default list is the table's defaults.
func TestAlgorithmTableAllowLists(t *testing.T) {
	for _, a := range keys.Algorithms() {
		public := loads(t, "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, algorithms: ["+a.Name+"]}\n")
		proof := loads(t, "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j}\nrules:\n  - {name: r, bearer: {issuers: [a], audiences: [api], dpop: {mode: optional, algorithms: ["+a.Name+"]}}}\n")
		_, err := Load([]string{hmacPolicy(t, 64, "["+a.Name+"]")}, Options{Keys: offlinePlane(t)})
		hmac := err == nil
		if public == a.Symmetric() || proof == a.Symmetric() || hmac != a.Symmetric() {
			t.Errorf("%s (symmetric %v): public-key issuer %v, DPoP proof %v, HMAC issuer %v", a.Name, a.Symmetric(), public, proof, hmac)
		}
	}
	snap, err := Load([]string{hmacPolicy(t, 64, "")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{"other": keys.AlgorithmNames(false, true), "jobs": keys.AlgorithmNames(true, true)} {
		is := snap.Issuers[name]
		if is == nil || len(is.Algorithms) != len(want) {
			t.Fatalf("issuer %s: %v, want %v", name, is, want)
		}
		for i := range want {
			if is.Algorithms[i] != want[i] {
				t.Errorf("issuer %s defaults %v, want %v", name, is.Algorithms, want)
			}
		}
	}
}

// loads reports whether body loads as a policy without errors.
func loads(t *testing.T, body string) bool {
	t.Helper()
	dir := writePolicy(t, map[string]string{"p.yaml": body})
	_, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	return err == nil
}
