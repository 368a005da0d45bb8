package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

// TestSPIFFEBundleFileUseSig: the SPIFFE "use" trap is caught when the
// policy loads, offline as `extauthz validate` loads it and online as
// serve does: a bundle_file whose key says "use": "sig" is an error at the
// issuer, naming the file, the key and the rule, and pointing at
// jwks_file with spiffe_trust_domain, with which the same file loads and
// serves its key.
func TestSPIFFEBundleFileUseSig(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"bundle.json": `{"keys":[{"kid":"k1","use":"sig",` + p256JWK + `}]}`,
		"policy.yaml": `version: v1
issuers:
  - name: mesh
    spiffe:
      trust_domain: example.org
      bundle_file: bundle.json
`,
	})
	bundle := filepath.Join(dir, "bundle.json")
	online, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { online.Close() })
	for name, plane := range map[string]*keys.Plane{"validate": offlinePlane(t), "serve": online} {
		_, err := Load([]string{filepath.Join(dir, "policy.yaml")}, Options{Keys: plane})
		var le *LoadError
		if !errors.As(err, &le) || len(le.Errors) != 1 {
			t.Fatalf("%s: got %v, want one load error", name, err)
		}
		fe := le.Errors[0]
		want := `keys: issuer mesh: spiffe: bundle_file ` + bundle + `: key "k1" has "use": "sig"; ` +
			`in a SPIFFE bundle a JWT-SVID key has "use": "jwt-svid" (or no use); ` +
			`a JWK Set of "use": "sig" keys, as an OIDC discovery provider serves it, is a jwks_file issuer with spiffe_trust_domain`
		if fe.Path != "issuers[0]" || fe.Msg != want {
			t.Fatalf("%s: got\n  %s: %s\nwant\n  issuers[0]: %s", name, fe.Path, fe.Msg, want)
		}
	}

	// What the message says to do works.
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(`version: v1
issuers:
  - name: mesh
    jwks_file: bundle.json
    spiffe_trust_domain: example.org
`), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := Load([]string{filepath.Join(dir, "policy.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	is := snap.Issuers["mesh"]
	if !is.IssuesSVIDs() || is.TrustDomain != "example.org" {
		t.Fatalf("jwks_file with spiffe_trust_domain is not a JWT-SVID issuer: %+v", is)
	}
	if ks, err := is.Keys.Keys(t.Context(), "k1"); err != nil || len(ks) != 1 {
		t.Fatalf("the jwks_file issuer's keys: %v, %v", ks, err)
	}

	// And a bundle written as the format says loads.
	for _, use := range []string{`"use":"jwt-svid",`, ``} {
		if err := os.WriteFile(bundle, []byte(`{"keys":[{"kid":"k1",`+use+p256JWK+`}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(`version: v1
issuers:
  - name: mesh
    spiffe: {trust_domain: example.org, bundle_file: bundle.json}
`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load([]string{filepath.Join(dir, "policy.yaml")}, Options{Keys: offlinePlane(t)}); err != nil {
			t.Fatalf("bundle with %s: %v", use, err)
		}
	}
}
