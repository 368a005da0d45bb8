package keys

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// TestSPIFFEBundleFile: a spiffe-helper bundle file is served, re-read when
// it changes, kept when a rewrite is half done, and an update without keys
// revokes them all at once.
func TestSPIFFEBundleFile(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	ctx := t.Context()
	a, b := ecKey(), newEC(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "bundle.json", svidBundle(t, 0, svidKey(t, a, "a")))
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})

	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	_, err := src.Keys(ctx, "b")
	wantErr(t, err, ErrUnknownKID)

	replace := func(data []byte) {
		t.Helper()
		tmp := filepath.Join(dir, "new")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		clk.Add(DefaultFilePollInterval)
	}

	// A plain JWK Set.
	replace(jwksJSON(t, jwkOf(t, a, "a", nil), jwkOf(t, b, "b", nil)))
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")

	// spiffe-helper's jwt_bundle_file_name: every trust domain the agent
	// knows, each JWK Set base64-encoded. Only ours counts.
	other := newEC(t)
	replace(helperBundleFile(t, map[string][]byte{
		"example.org": jwksJSON(t, jwkOf(t, b, "b", nil)),
		"other.org":   jwksJSON(t, jwkOf(t, other, "other", nil)),
	}))
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")
	for _, kid := range []string{"a", "other"} {
		_, err := src.Keys(ctx, kid)
		wantErr(t, err, ErrUnknownKID)
	}
	// Our trust domain gone from spiffe-helper's file: no keys.
	replace(helperBundleFile(t, map[string][]byte{"other.org": jwksJSON(t, jwkOf(t, b, "b", nil))}))
	_, err = src.Keys(ctx, "b")
	wantErrContains(t, err, "every key is revoked")
	replace(jwksJSON(t, jwkOf(t, a, "a", nil), jwkOf(t, b, "b", nil)))
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// Half a file is no bundle: the keys stay.
	replace([]byte(`{"keys":[{"kty":"EC",`))
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// A bundle without JWT keys (the X.509 authorities do not count)
	// revokes every key, with no stale fallback.
	ca, _ := newSVIDCA(t, "spiffe://example.org")
	replace(svidBundle(t, 0, x509Authority(ca)))
	for _, kid := range []string{"a", "b", ""} {
		_, err := src.Keys(ctx, kid)
		wantErr(t, err, ErrUnknownKID)
		wantErrContains(t, err, "every key is revoked")
	}

	replace(svidBundle(t, 0, svidKey(t, b, "b")))
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")
	_, err = src.Keys(ctx, "a")
	wantErr(t, err, ErrUnknownKID)
}

// helperBundleFile is what spiffe-helper writes for jwt_bundle_file_name.
func helperBundleFile(t *testing.T, bundles map[string][]byte) []byte {
	t.Helper()
	m := map[string]string{}
	for td, jwks := range bundles {
		m[td] = base64.StdEncoding.EncodeToString(jwks)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBundleFileForms(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for _, bad := range []string{`{"not":"a bundle"}`, `{"Not A Domain":"e30="}`, `[1]`, `{"example.org":"e30="}`, `{"example.org":1}`, ``} {
		if _, err := parseBundleFile([]byte(bad), td); err == nil {
			t.Errorf("%q parsed as a bundle file", bad)
		}
	}
	doc, err := parseBundleFile(helperBundleFile(t, map[string][]byte{"example.org": jwksJSON(t, jwkOf(t, ecKey(), "a", nil))}), td)
	if err != nil || doc.set.Len() != 1 {
		t.Fatalf("spiffe-helper file: %v, %v", doc, err)
	}
}

// TestSPIFFEBundleFileNotYetWritten: spiffe-helper may start after
// extauthz; until it writes the file the issuer is unavailable (503), not
// a policy error.
func TestSPIFFEBundleFileNotYetWritten(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	path := filepath.Join(t.TempDir(), "bundle.json")
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "not written yet")

	writeFile(t, filepath.Dir(path), "bundle.json", svidBundle(t, 0, svidKey(t, ecKey(), "a")))
	clk.Add(DefaultFilePollInterval)
	checkSigns(t, mustKeys(t, src, "a")[0], ecKey(), "ES256")
}
