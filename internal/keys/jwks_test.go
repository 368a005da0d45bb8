package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
)

// Each rejected kind of key is skipped with its own reason, and the good key
// next to it still works.
func TestParseJWKSSkipsBadKeys(t *testing.T) {
	good := ecKey()
	for _, tc := range []struct {
		fixture, reason string
	}{
		{"jwk/weak_rsa.json", skipWeakRSA},
		{"jwk/off_curve.json", skipCurve},
		{"jwk/unsupported_curve.json", skipCurve},
		{"jwk/private.json", skipPrivate},
		{"jwk/oct.json", skipSymmetric},
		{"jwk/use_enc.json", skipUse},
		{"jwk/alg_mismatch.json", skipAlg},
		{"jwk/key_ops.json", skipKeyOps},
		{"jwk/x25519.json", skipKeyType},
		{"jwk/unknown_kty.json", skipKeyType},
		{"jwk/malformed.json", skipMalformed},
		{"jwk/wrong_type.json", skipMalformed},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			doc := jwksJSON(t, fixtureJWK(t, tc.fixture), jwkOf(t, good, "good", nil))
			set, skipped, err := parseJWKS(doc, sigRules)
			if err != nil {
				t.Fatal(err)
			}
			if len(skipped) != 1 || skipped[0].Reason != tc.reason || skipped[0].Index != 0 {
				t.Fatalf("skipped = %+v, want one with reason %s", skipped, tc.reason)
			}
			if set.Len() != 1 {
				t.Fatalf("set has %d keys, want the good one", set.Len())
			}
			checkSigns(t, set.Lookup("good")[0], good, "ES256")
		})
	}
}

func TestParseJWKSAcceptsGoodKeys(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk := rsaKeys()[0]
	ec := ecKey()
	doc := jwksJSON(t,
		jwkOf(t, rk, "rsa", map[string]any{"use": "sig", "alg": "PS256"}),
		jwkOf(t, ec, "ec", map[string]any{"key_ops": []string{"verify"}}),
		jwkOf(t, ed, "ed", map[string]any{"alg": "EdDSA"}),
		jwkOf(t, ec, "", nil), // no kid: tried for any kid
	)
	set, skipped, err := parseJWKS(doc, sigRules)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("err %v, skipped %+v", err, skipped)
	}
	r := set.Lookup("rsa")[0]
	if r.Alg != "PS256" || r.Fits("RS256") || !r.Fits("PS256") {
		t.Fatalf("RSA key alg %q: the JWK's alg must bind it", r.Alg)
	}
	checkSigns(t, set.Lookup("ec")[0], ec, "ES256")
	checkSigns(t, set.Lookup("ed")[0], ed, "EdDSA")
	if got := lookup(set, "unknown"); len(got) != 1 || got[0].ID != "" {
		t.Fatalf("lookup of an unknown kid = %v, want the kid-less key", got)
	}
	if set.Lookup("ec")[0].Fits("ES384") {
		t.Fatal("a P-256 key must not fit ES384")
	}
}

// The future SPIFFE source accepts use "jwt-svid"; an OAuth JWKS does not.
func TestParseJWKSUseRule(t *testing.T) {
	doc := jwksJSON(t, jwkOf(t, ecKey(), "svid", map[string]any{"use": "jwt-svid"}))
	if set, _, _ := parseJWKS(doc, sigRules); set.Len() != 0 {
		t.Fatal("use jwt-svid accepted by the sig rules")
	}
	if set, _, _ := parseJWKS(doc, keyRules{uses: []string{"jwt-svid"}}); set.Len() != 1 {
		t.Fatal("use jwt-svid refused by the jwt-svid rules")
	}
}

func TestParseJWKSDocumentErrors(t *testing.T) {
	for _, doc := range []string{
		``, `null`, `[]`, `"keys"`, `{}`, `{"keys":null}`, `{"keys":{}}`, `{"keys":[1,2]`,
		`<html><body>502 Bad Gateway</body></html>`,
		`{"keys":[` + strings.Repeat(`{},`, maxJWKSKeys) + `{}]}`,
	} {
		if _, _, err := parseJWKS([]byte(doc), sigRules); err == nil {
			t.Errorf("parseJWKS(%.40q) accepted", doc)
		}
	}
	set, skipped, err := parseJWKS([]byte(`{"keys":[]}`), sigRules)
	if err != nil || set.Len() != 0 || len(skipped) != 0 {
		t.Fatalf("empty set: %v %v %v", set, skipped, err)
	}
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add(jwksJSON(f, jwkOf(f, ecKey(), "ec", map[string]any{"alg": "ES256"})))
	for _, name := range []string{"weak_rsa", "off_curve", "private", "oct", "alg_mismatch", "x25519", "malformed"} {
		b := must(readFixtureFS("testdata/jwk/" + name + ".json"))
		f.Add([]byte(`{"keys":[` + string(b) + `]}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, skipped, err := parseJWKS(data, sigRules)
		if err != nil {
			return
		}
		for _, k := range set.All() {
			if err := checkPublic(k.Public); err != nil {
				t.Fatalf("accepted key fails hygiene: %v", err)
			}
			if k.Alg != "" && !k.Fits(k.Alg) {
				t.Fatalf("accepted key does not fit its own alg %q", k.Alg)
			}
		}
		for _, s := range skipped {
			if s.Reason == "" {
				t.Fatal("skipped key without a reason")
			}
		}
		if _, err := json.Marshal(skipped); err != nil {
			t.Fatal(err)
		}
	})
}
