package keys

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// The words every message about a bundle key's "use" carries.
const (
	wantUseRule = `in a SPIFFE bundle a JWT-SVID key has "use": "jwt-svid" (or no use)`
	wantSigHint = `a JWK Set of "use": "sig" keys, as an OIDC discovery provider serves it, is a jwks_file issuer with spiffe_trust_domain`
)

// TestSPIFFEBundleFileUseAtLoad: a bundle file with a JWT key whose "use"
// is not jwt-svid fails the load (and so `extauthz validate`, an offline
// plane) with the key, its use and the rule, instead of loading as a
// bundle whose keys verify nothing. Keys without use, x509-svid entries
// and jwt-svid keys load.
func TestSPIFFEBundleFileUseAtLoad(t *testing.T) {
	dir := t.TempDir()
	a, b := ecKey(), newEC(t)
	ca, _ := newSVIDCA(t, "spiffe://example.org")
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" loads
	}{
		{"fixture: use sig", readFixture(t, "spiffe/use_sig.json"),
			`key "k1" has "use": "sig"; ` + wantUseRule + "; " + wantSigHint},
		{"one key of two", svidBundle(t, 0, svidKey(t, a, "a"), jwkOf(t, b, "b", map[string]any{"use": "sig"})),
			`: key "b" has "use": "sig"; ` + wantUseRule},
		{"use enc, no kid", svidBundle(t, 0, jwkOf(t, a, "", map[string]any{"use": "enc"})),
			`: key 0 has "use": "enc"; ` + wantUseRule},
		{"two keys", jwksJSON(t, jwkOf(t, a, "a", map[string]any{"use": "sig"}), jwkOf(t, b, "b", map[string]any{"use": "SIG"})),
			`: key "a" has "use": "sig", key "b" has "use": "SIG"; ` + wantUseRule + "; " + wantSigHint},
		{"spiffe-helper file", helperBundleFile(t, map[string][]byte{"example.org": jwksJSON(t, jwkOf(t, a, "k1", map[string]any{"use": "sig"}))}),
			`: key "k1" has "use": "sig"; ` + wantUseRule},
		{"no use", jwksJSON(t, jwkOf(t, a, "a", nil)), ""},
		{"jwt-svid and x509-svid", svidBundle(t, 0, svidKey(t, a, "a"), x509Authority(ca)), ""},
		// Another trust domain's keys are not ours to judge.
		{"other trust domain", helperBundleFile(t, map[string][]byte{
			"example.org": jwksJSON(t, jwkOf(t, a, "a", nil)),
			"other.org":   jwksJSON(t, jwkOf(t, b, "b", map[string]any{"use": "sig"})),
		}), ""},
	} {
		for _, offline := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/offline=%v", tc.name, offline), func(t *testing.T) {
				p, _, _ := testPlane(t, Config{Offline: offline})
				path := writeFile(t, dir, "bundle.json", tc.data)
				_, err := p.Source(Spec{Name: "mesh", SPIFFE: &SPIFFESpec{TrustDomain: "example.org", BundleFile: path}})
				if tc.want == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				wantErrContains(t, err, "keys: issuer mesh: spiffe: bundle_file "+path+": ", tc.want)
				if !strings.Contains(tc.want, "sig") && strings.Contains(err.Error(), wantSigHint) {
					t.Fatalf("the hint for \"sig\" where no key says it: %v", err)
				}
			})
		}
	}
}

// TestSPIFFEBundleUseAtRunTime: a bundle file rewritten with "use": "sig"
// keys while serving is not a load, so its keys are skipped; then the log
// line, /debug/keys and the deny all say which key, which use and the rule.
func TestSPIFFEBundleUseAtRunTime(t *testing.T) {
	p, clk, logs := revokePlane(t)
	a, b := ecKey(), newEC(t)
	path := writeFile(t, t.TempDir(), "bundle.json", svidBundle(t, 0, svidKey(t, a, "a")))
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// Every key says sig: every SVID is refused, and the error says why.
	replaceFile(t, path, readFixture(t, "spiffe/use_sig.json"))
	clk.Add(DefaultFilePollInterval)
	wantRevoked(t, src, "a", "k1")
	_, err := src.Keys(t.Context(), "k1")
	wantErrContains(t, err, `keys: issuer mesh: the bundle of trust domain example.org has no JWT-SVID keys: key "k1" has "use": "sig"; `+wantUseRule+"; "+wantSigHint+": every key is revoked")
	if n := logs.count(slog.LevelWarn, "keys: bundle key skipped", `key "k1" has "use": "sig"; `+wantUseRule, "location="+path); n != 1 {
		t.Fatalf("the skipped key is not logged once with the rule:\n%s", logs)
	}
	if n := logs.count(slog.LevelWarn, "no JWT-SVID keys", `reason=key "k1" has "use": "sig"; `+wantUseRule); n != 1 {
		t.Fatalf("the revocation is not logged once with the rule:\n%s", logs)
	}
	if s := debugKeys(t, p)["mesh"]; len(s.Skipped) != 1 || s.Skipped[0].KID != "k1" || s.Skipped[0].Reason != skipUse ||
		s.Skipped[0].Detail != `has "use": "sig"; `+wantUseRule {
		t.Fatalf("/debug/keys skipped: %+v", s.Skipped)
	}

	// One key of two says sig: the other verifies, and a token of the
	// skipped kid is told why.
	replaceFile(t, path, svidBundle(t, 0, svidKey(t, a, "a"), jwkOf(t, b, "b", map[string]any{"use": "sig"})))
	clk.Add(DefaultFilePollInterval)
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	_, err = src.Keys(t.Context(), "b")
	wantErr(t, err, ErrUnknownKID)
	wantErrContains(t, err, `keys: issuer mesh: key "b" has "use": "sig"; `+wantUseRule)
	// Any other unknown kid is just unknown.
	_, err = src.Keys(t.Context(), "c")
	wantErr(t, err, ErrUnknownKID)
	if strings.Contains(err.Error(), "use") {
		t.Fatalf("an unknown kid blamed on use: %v", err)
	}
}

// The same words reach a bundle the Workload API or an endpoint sends: the
// parser writes them, whatever the source.
func TestParseSPIFFEBundleUseWords(t *testing.T) {
	doc, err := parseSPIFFEBundle(readFixture(t, filepath.Join("spiffe", "use_sig.json")))
	if err != nil {
		t.Fatal(err)
	}
	if doc.set.Len() != 0 || useFaults(doc.skipped) != `key "k1" has "use": "sig"; `+wantUseRule+"; "+wantSigHint {
		t.Fatalf("keys %d, faults %q", doc.set.Len(), useFaults(doc.skipped))
	}
}

// TestJWKSFileOfASPIFFEBundle: the mirror image, a SPIFFE bundle given as
// a jwks_file, is refused at load with where such a bundle goes.
func TestJWKSFileOfASPIFFEBundle(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	path := writeFile(t, t.TempDir(), "jwks.json", svidBundle(t, 0, svidKey(t, ecKey(), "a")))
	_, err := p.Source(Spec{Name: "mesh", JWKSFile: path})
	wantErrContains(t, err, `key 0 (kid "a"): use "jwt-svid" is not for signatures: it marks a key of a SPIFFE bundle, which a spiffe issuer reads from bundle_file`)
}
