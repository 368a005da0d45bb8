package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"
)

func TestParseSPIFFEBundle(t *testing.T) {
	a, b, c := ecKey(), newEC(t), newEC(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := newSVIDCA(t, "spiffe://example.org")
	doc := svidBundle(t, 300,
		svidKey(t, a, "a"),                                 // kept
		jwkOf(t, b, "b", nil),                              // no use: kept (Workload API JWKS)
		jwkOf(t, c, "c", map[string]any{"use": "sig"}),     // another use: skipped
		x509Authority(ca),                                  // X.509 authority, kept apart
		jwkOf(t, c, "", map[string]any{"use": "jwt-svid"}), // no kid: skipped
		map[string]any{"kty": "RSA", "kid": "weak", "use": "jwt-svid", "e": "AQAB", // hygiene rules still apply
			"n": base64.RawURLEncoding.EncodeToString(weak.N.Bytes())},
		map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "use": "jwt-svid"},
	)
	got, err := parseSPIFFEBundle(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got.set.Len() != 2 || got.set.Lookup("a") == nil || got.set.Lookup("b") == nil {
		t.Fatalf("keys %v, want a and b", describeKeys(got.set))
	}
	checkSigns(t, got.set.Lookup("a")[0], a, "ES256")
	if len(got.roots) != 1 || !got.roots[0].Equal(ca) {
		t.Fatalf("X.509 authorities %v", got.roots)
	}
	if got.refreshHint != 300*time.Second {
		t.Fatalf("refresh hint %s", got.refreshHint)
	}
	reasons := map[string]string{}
	for _, sk := range got.skipped {
		reasons[sk.KID] = sk.Reason
	}
	want := map[string]string{"c": skipUse, "": skipMalformed, "weak": skipWeakRSA, "hmac": skipSymmetric}
	if len(reasons) != len(want) {
		t.Fatalf("skipped %v, want %v", got.skipped, want)
	}
	for kid, r := range want {
		if reasons[kid] != r {
			t.Fatalf("key %q skipped for %q, want %q (%v)", kid, reasons[kid], r, got.skipped)
		}
	}

	// A bundle with an empty keys array is a bundle without keys; one
	// without the array is not a bundle.
	empty, err := parseSPIFFEBundle([]byte(`{"keys":[]}`))
	if err != nil || empty.set.Len() != 0 {
		t.Fatalf("empty bundle: %v, %v", empty, err)
	}
	for _, bad := range []string{`{}`, `{"keys":null}`, `[]`, `{"keys":{}}`, ``, `{"keys":[`} {
		if _, err := parseSPIFFEBundle([]byte(bad)); err == nil {
			t.Errorf("%q parsed as a bundle", bad)
		}
	}
}

// newSVIDCA is a SPIFFE X.509 CA of the trust domain id.
func newSVIDCA(t testing.TB, id string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs: []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
