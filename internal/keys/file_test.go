package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInlineJWKS(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	ec := ecKey()
	src := mustSource(t, p, Spec{Name: "inline", JWKS: jwksJSON(t, jwkOf(t, ec, "a", nil))})
	checkSigns(t, mustKeys(t, src, "a")[0], ec, "ES256")
	_, err := src.Keys(t.Context(), "b")
	wantErr(t, err, ErrUnknownKID)
}

func TestJWKSFile(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	dir := t.TempDir()
	a, b := ecKey(), newEC(t)
	path := writeFile(t, dir, "jwks.json", jwksJSON(t, jwkOf(t, a, "a", nil)))
	src := mustSource(t, p, Spec{Name: "file", JWKSFile: path})
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// A rotation written to the file is seen after one poll interval.
	replaceFile(t, path, jwksJSON(t, jwkOf(t, b, "b", nil)))
	if _, err := src.Keys(t.Context(), "b"); err == nil {
		t.Fatal("file change seen before the poll interval")
	}
	clk.Add(DefaultFilePollInterval)
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnknownKID)

	// A broken rewrite keeps the last good keys.
	replaceFile(t, path, []byte(`{"keys": [`))
	clk.Add(DefaultFilePollInterval)
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")
	st := p.snapshot(clk.Now())
	if len(st) != 1 || st[0].LastError == "" {
		t.Fatalf("debug status does not show the reload error: %+v", st)
	}
}

// replaceFile swaps the file atomically, as Kubernetes and spiffe-helper do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSFileLoadErrors(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want []string
	}{
		{"private", jwksJSON(t, fixtureJWK(t, "jwk/private.json"), jwkOf(t, ecKey(), "ok", nil)), []string{"jwks_file", "private key"}},
		{"nokeys", jwksJSON(t, fixtureJWK(t, "jwk/weak_rsa.json")), []string{"no usable keys", "2048"}},
		{"notjson", []byte("<html>"), []string{"not a JWK Set"}},
	} {
		path := writeFile(t, dir, tc.name+".json", tc.data)
		_, err := p.Source(Spec{Name: tc.name, JWKSFile: path})
		wantErrContains(t, err, append([]string{"keys: issuer " + tc.name}, tc.want...)...)
	}
	_, err := p.Source(Spec{Name: "missing", JWKSFile: filepath.Join(dir, "nope.json")})
	wantErrContains(t, err, "no such file")
	_, err = p.Source(Spec{Name: "dir", JWKSFile: dir})
	wantErrContains(t, err, "not a regular file")
	_, err = p.Source(Spec{Name: "inline", JWKS: jwksJSON(t, fixtureJWK(t, "jwk/private.json"))})
	wantErrContains(t, err, "keys: issuer inline: jwks:", "private key")
}

func TestHMACSecretFile(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	dir := t.TempDir()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	src := mustSource(t, p, Spec{Name: "hmac", HMACSecretFile: writeFile(t, dir, "secret", secret)})
	k := mustKeys(t, src, "any-kid")[0]
	checkSigns(t, k, secret, "HS256")
	if k.Fits("RS256") || k.Fits("none") {
		t.Fatal("an HMAC secret fits a public-key algorithm")
	}

	for _, tc := range []struct{ fixture, want string }{
		{"hmac/short_secret", "secret is 31 bytes, at least 32 required"},
		{"hmac/public_key.pem", "holds PEM data"},
		{"hmac/jwk.json", "holds JSON"},
	} {
		_, err := p.Source(Spec{Name: "bad", HMACSecretFile: filepath.Join("testdata", tc.fixture)})
		wantErrContains(t, err, "keys: issuer bad: hmac_secret_file", tc.want)
	}
}

func TestPEMFile(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	dir := t.TempDir()
	ec := ecKey()
	rk := rsaKeys()[0]
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	var data []byte
	for _, pub := range []any{&ec.PublicKey, ed.Public()} {
		der := must(x509.MarshalPKIXPublicKey(pub))
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)})...)
	src := mustSource(t, p, Spec{Name: "pem", PEMFile: writeFile(t, dir, "keys.pem", data)})
	ks := mustKeys(t, src, "")
	if len(ks) != 3 {
		t.Fatalf("got %d keys, want 3", len(ks))
	}
	checkSigns(t, ks[0], ec, "ES256")
	checkSigns(t, ks[1], ed, "EdDSA")
	checkSigns(t, ks[2], rk, "RS256")
	// PEM keys have no kid, so they answer for any kid the token names.
	if got := mustKeys(t, src, "whatever"); len(got) != 3 {
		t.Fatalf("kid lookup got %d keys", len(got))
	}
	_ = clk
}

// A certificate chain contributes its leaf's key only, and stops verifying
// when the leaf expires.
func TestPEMCertificateChain(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	now := clk.Now()
	root, rootKey := makeCert(t, nil, nil, "root", now.Add(-time.Hour), now.Add(365*24*time.Hour), true)
	inter, interKey := makeCert(t, root, rootKey, "intermediate", now.Add(-time.Hour), now.Add(300*24*time.Hour), true)
	leaf, leafKey := makeCert(t, inter, interKey, "leaf", now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
	var data []byte
	for _, c := range []*x509.Certificate{leaf, inter, root} {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	src := mustSource(t, p, Spec{Name: "chain", PEMFile: writeFile(t, t.TempDir(), "chain.pem", data)})
	ks := mustKeys(t, src, "")
	if len(ks) != 1 {
		t.Fatalf("got %d keys, want the leaf's only", len(ks))
	}
	checkSigns(t, ks[0], leafKey, "ES256")

	clk.Add(91 * 24 * time.Hour)
	_, err := src.Keys(t.Context(), "")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "certificate expired")
}

func TestPEMLoadErrors(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	for _, tc := range []struct{ fixture, want string }{
		{"pem/private_key.pem", "contains a private key"},
		{"pem/expired_cert.pem", "expired at 2020-01-01T00:00:00Z"},
		{"pem/weak_rsa.pem", "RSA key of 1024 bits, at least 2048 required"},
		{"pem/unsupported_block.pem", `unsupported PEM block "CERTIFICATE REQUEST"`},
		{"pem/not_pem.pem", "no PEM blocks found"},
	} {
		path := filepath.Join("testdata", tc.fixture)
		_, err := p.Source(Spec{Name: "bad", PEMFile: path})
		wantErrContains(t, err, "keys: issuer bad: pem_file "+path+": ", tc.want)
	}
}

func makeCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, from, to time.Time, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newEC(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             from,
		NotAfter:              to,
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey))
	return must(x509.ParseCertificate(der)), key
}

func TestSpecErrors(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "none"}, "keys: issuer none: no key source given"},
		{Spec{Name: "two", JWKSURI: "https://a.example/jwks", PEMFile: "x.pem"}, "exactly one key source allowed, got jwks_uri, pem_file"},
		{Spec{Name: "http", JWKSURI: "http://keys.example.com/jwks"}, "http:// is allowed only for loopback hosts or with allow_insecure_http"},
		{Spec{Name: "ftp", JWKSURI: "ftp://keys.example.com/jwks"}, `scheme "ftp" is not https`},
		{Spec{Name: "rel", JWKSURI: "/jwks"}, "not an absolute URL"},
		{Spec{Name: "cred", JWKSURI: "https://u:secret@keys.example.com/jwks"}, "credentials in the URL"},
		{Spec{Name: "disc", Discovery: true}, "discovery needs the issuer URL"},
		{Spec{Name: "ca", JWKSURI: "https://keys.example.com/jwks", CAFile: "testdata/pem/not_pem.pem"}, "no PEM certificates found"},
		{Spec{Name: "ca2", PEMFile: "testdata/pem/expired_cert.pem", CAFile: "x"}, "ca_file applies only to jwks_uri and discovery"},
	} {
		_, err := p.Source(tc.spec)
		wantErrContains(t, err, tc.want)
	}
	if _, err := p.Source(Spec{Name: "insecure", JWKSURI: "http://keys.example.com/jwks", AllowInsecureHTTP: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Source(Spec{Name: "loop", JWKSURI: "http://127.0.0.1:1/jwks"}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{FetchWait: -1}, {MaxStale: -time.Second}, {MinRefresh: time.Hour, MaxRefresh: time.Minute}, {CacheSize: -1},
	} {
		if _, err := NewPlane(cfg); err == nil {
			t.Errorf("NewPlane(%+v) accepted", cfg)
		}
	}
	// Any positive duration is accepted, however small.
	p, err := NewPlane(Config{MinRefresh: 1, MaxRefresh: 1, RefetchCooldown: 1, MaxStale: 1, FetchWait: 1, FetchTimeout: 1, FilePollInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
}
