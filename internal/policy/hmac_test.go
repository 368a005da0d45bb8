package policy

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hmacPolicy writes a policy whose issuers[1] is an hmac_secret_file issuer
// with a secret of n bytes and the given algorithms line ("" for none), and
// returns the policy's path.
func hmacPolicy(t *testing.T, n int, algorithms string) string {
	t.Helper()
	secret := make([]byte, n)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	for i := range secret {
		if secret[i] == '\n' { // a trailing newline is warned about
			secret[i] = 'x'
		}
	}
	yaml := "version: v1\nissuers:\n" +
		"  - {name: other, issuer: https://a.example, jwks_uri: https://a.example/jwks}\n" +
		"  - name: jobs\n    issuer: jobs\n    hmac_secret_file: jobs.secret\n"
	if algorithms != "" {
		yaml += "    algorithms: " + algorithms + "\n"
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"p.yaml": []byte(yaml), "jobs.secret": secret} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "p.yaml")
}

// TestHMACAlgorithmsFitTheSecret: RFC 7518 section 3.2 wants an HMAC key at
// least as long as the hash. Without `algorithms` the default is what the
// secret is long enough for; a listed algorithm it is too short for is a
// load error naming the field.
func TestHMACAlgorithmsFitTheSecret(t *testing.T) {
	for _, tc := range []struct {
		secret     int
		algorithms string
		want       []string
	}{
		{32, "", []string{"HS256"}},
		{47, "", []string{"HS256"}},
		{48, "", []string{"HS256", "HS384"}},
		{64, "", []string{"HS256", "HS384", "HS512"}},
		{32, "[HS256]", []string{"HS256"}},
		{48, "[HS384, HS256]", []string{"HS384", "HS256"}},
		{64, "[HS512]", []string{"HS512"}},
	} {
		snap, err := Load([]string{hmacPolicy(t, tc.secret, tc.algorithms)}, Options{Keys: offlinePlane(t)})
		if err != nil {
			t.Fatalf("%d-byte secret, algorithms %q: %v", tc.secret, tc.algorithms, err)
		}
		if got := snap.Issuers["jobs"].Algorithms; !slices.Equal(got, tc.want) {
			t.Errorf("%d-byte secret, algorithms %q: got %v, want %v", tc.secret, tc.algorithms, got, tc.want)
		}
	}
}

func TestHMACAlgorithmTooLongForTheSecret(t *testing.T) {
	for _, tc := range []struct {
		secret     int
		algorithms string
		want       []string
	}{
		{32, "[HS256, HS512]", []string{
			"p.yaml:7:25: issuers[1].algorithms[1]: HS512 needs a secret of at least 64 bytes; hmac_secret_file has 32",
		}},
		{32, "[HS384, HS256, HS512]", []string{
			"p.yaml:7:18: issuers[1].algorithms[0]: HS384 needs a secret of at least 48 bytes; hmac_secret_file has 32",
			"p.yaml:7:32: issuers[1].algorithms[2]: HS512 needs a secret of at least 64 bytes; hmac_secret_file has 32",
		}},
		{63, "[HS512]", []string{
			"p.yaml:7:18: issuers[1].algorithms[0]: HS512 needs a secret of at least 64 bytes; hmac_secret_file has 63",
		}},
	} {
		_, err := Load([]string{hmacPolicy(t, tc.secret, tc.algorithms)}, Options{Keys: offlinePlane(t)})
		var le *LoadError
		if !errors.As(err, &le) {
			t.Fatalf("%d-byte secret, algorithms %s: err = %v, want a *LoadError", tc.secret, tc.algorithms, err)
		}
		if len(le.Errors) != len(tc.want) {
			t.Errorf("%d-byte secret, algorithms %s: %d errors, want %d:\n%v", tc.secret, tc.algorithms, len(le.Errors), len(tc.want), err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
			}
		}
	}
}

// An emptied secret file (a revoked issuer) has no length to fit the
// algorithms to: the policy loads with what it lists, or every HS
// algorithm, and the keys refuse every token until a secret is written.
func TestHMACAlgorithmsOfAnEmptySecretFile(t *testing.T) {
	for algorithms, want := range map[string][]string{
		"":        {"HS256", "HS384", "HS512"},
		"[HS512]": {"HS512"},
	} {
		snap, err := Load([]string{hmacPolicy(t, 0, algorithms)}, Options{Keys: offlinePlane(t)})
		if err != nil {
			t.Fatalf("algorithms %q: %v", algorithms, err)
		}
		if got := snap.Issuers["jobs"].Algorithms; !slices.Equal(got, want) {
			t.Errorf("algorithms %q: got %v, want %v", algorithms, got, want)
		}
	}
}

// Without a key plane no key file is read, so nothing is known of the
// secret: the default stays every HS algorithm.
func TestHMACAlgorithmsWithoutKeyPlane(t *testing.T) {
	snap, err := Load([]string{hmacPolicy(t, 32, "")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snap.Issuers["jobs"].Algorithms, []string{"HS256", "HS384", "HS512"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
