package keys

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// logRecorder is a slog handler that keeps every record, so tests can
// assert what an operator would see.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // "LEVEL msg k=v k=v"
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler    { return &recordWith{l, as} }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	return l.add(nil, r)
}

func (l *logRecorder) add(with []slog.Attr, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range with {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

// recordWith is a logRecorder with attributes from Logger.With.
type recordWith struct {
	l    *logRecorder
	with []slog.Attr
}

func (r *recordWith) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordWith{r.l, append(append([]slog.Attr{}, r.with...), as...)}
}
func (r *recordWith) WithGroup(string) slog.Handler { return r }
func (r *recordWith) Handle(_ context.Context, rec slog.Record) error {
	return r.l.add(r.with, rec)
}

// count is the number of records at level whose text contains every part.
func (l *logRecorder) count(level slog.Level, parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, r := range l.recs {
		if !strings.HasPrefix(r, level.String()+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

// revokePlane is a test plane whose logs are recorded.
func revokePlane(t *testing.T) (*Plane, *fakeClock, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	p, clk, _ := testPlane(t, Config{Logger: slog.New(rec)})
	return p, clk, rec
}

// wantRevoked asserts that src refuses every kid as revoked: 401
// (ErrUnknownKID), never 503.
func wantRevoked(t *testing.T, src Source, kids ...string) {
	t.Helper()
	for _, kid := range append(kids, "") {
		ks, err := src.Keys(t.Context(), kid)
		if len(ks) != 0 {
			t.Fatalf("Keys(%q) = %d keys after revocation", kid, len(ks))
		}
		wantErr(t, err, ErrUnknownKID)
		wantErrContains(t, err, "every key is revoked")
	}
}

const revokedLog = "every key of the issuer is revoked"

// TestJWKSFileRevocation: a jwks_file emptied or left with only unusable
// keys revokes every key at the next poll, logged once per change; a file
// that cannot be used at all (gone, not JSON, cut short, a private key)
// keeps the last keys; a restored file serves again.
func TestJWKSFileRevocation(t *testing.T) {
	p, clk, logs := revokePlane(t)
	a := newEC(t)
	good := jwksJSON(t, jwkOf(t, a, "a", nil))
	path := writeFile(t, t.TempDir(), "jwks.json", good)
	src := mustSource(t, p, Spec{Name: "files", JWKSFile: path})
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	poll := func(data []byte) {
		t.Helper()
		replaceFile(t, path, data)
		clk.Add(DefaultFilePollInterval)
	}

	// Emptied: revoked from the next lookup after the poll.
	replaceFile(t, path, jwksJSON(t))
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256") // not polled yet
	clk.Add(DefaultFilePollInterval)
	wantRevoked(t, src, "a")
	if n := logs.count(slog.LevelError, revokedLog, "issuer=files", "path="+path, "holds no keys"); n != 1 {
		t.Fatalf("revocation logged %d times, want once:\n%s", n, logs)
	}
	// Later polls of the same file neither log again nor un-revoke.
	for range 3 {
		clk.Add(DefaultFilePollInterval)
		wantRevoked(t, src, "a")
	}
	if n := logs.count(slog.LevelError, revokedLog); n != 1 {
		t.Fatalf("revocation logged %d times over unchanged polls, want once:\n%s", n, logs)
	}

	poll(good)
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// Every key unusable: a 1024-bit RSA key, an oct key, an enc key.
	unusable := jwksJSON(t, fixtureJWK(t, "jwk/weak_rsa.json"), fixtureJWK(t, "jwk/oct.json"), fixtureJWK(t, "jwk/use_enc.json"))
	poll(unusable)
	wantRevoked(t, src, "a", "weak", "oct", "enc")
	if n := logs.count(slog.LevelError, revokedLog, "issuer=files", "no key is usable", "1024 bits", "symmetric", "not for signatures"); n != 1 {
		t.Fatalf("unusable-key revocation not logged once with its reasons:\n%s", logs)
	}

	// From a revoked state, files that cannot be used change nothing.
	for _, data := range [][]byte{nil, []byte(`{"keys":[{"kty":"EC",`)} {
		poll(data)
		wantRevoked(t, src, "a")
	}

	poll(good)
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// Files that cannot be used at all keep the last good keys: caught
	// mid-write (empty, cut short), not JSON, a private key, gone.
	for name, data := range map[string][]byte{
		"empty file":  {},
		"cut short":   good[:len(good)/2],
		"not json":    []byte("<html>"),
		"private key": jwksJSON(t, fixtureJWK(t, "jwk/private.json")),
	} {
		poll(data)
		if ks, err := src.Keys(t.Context(), "a"); err != nil || len(ks) != 1 {
			t.Fatalf("%s: the last good keys were dropped: %v", name, err)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.Add(DefaultFilePollInterval)
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	if n := logs.count(slog.LevelError, revokedLog); n != 2 {
		t.Fatalf("revocations logged %d times, want 2:\n%s", n, logs)
	}
}

// TestKeyFileEmptyAtLoad: a key file emptied on purpose loads as a revoked
// issuer, so that a revocation does not also fail restarts and policy
// reloads; keys written to it later are served. A file of only unusable
// keys is still a load error.
func TestKeyFileEmptyAtLoad(t *testing.T) {
	p, clk, logs := revokePlane(t)
	dir := t.TempDir()
	a := newEC(t)
	for _, tc := range []struct {
		name string
		spec func(path string) Spec
		data []byte
		good []byte
	}{
		{"jwks", func(path string) Spec { return Spec{Name: "jwks", JWKSFile: path} }, jwksJSON(t), jwksJSON(t, jwkOf(t, a, "a", nil))},
		{"pem", func(path string) Spec { return Spec{Name: "pem", PEMFile: path} }, []byte("\n  \n"), publicKeyPEM(t, &a.PublicKey)},
		{"hmac", func(path string) Spec { return Spec{Name: "hmac", HMACSecretFile: path} }, nil, randomSecret(t, 32)},
	} {
		path := writeFile(t, dir, tc.name, tc.data)
		src := mustSource(t, p, tc.spec(path))
		wantRevoked(t, src, "a")
		if n := logs.count(slog.LevelWarn, "holds no keys", "issuer="+tc.name, "path="+path); n != 1 {
			t.Fatalf("%s: empty file at load not warned about:\n%s", tc.name, logs)
		}
		replaceFile(t, path, tc.good)
		clk.Add(DefaultFilePollInterval)
		if got := mustKeys(t, src, "a"); len(got) != 1 {
			t.Fatalf("%s: got %d keys after the file was written", tc.name, len(got))
		}
	}

	path := writeFile(t, dir, "unusable.json", jwksJSON(t, fixtureJWK(t, "jwk/oct.json")))
	_, err := p.Source(Spec{Name: "unusable", JWKSFile: path})
	wantErrContains(t, err, "keys: issuer unusable: jwks_file", "no usable keys", "symmetric")
	_, err = p.Source(Spec{Name: "inline", JWKS: jwksJSON(t)})
	wantErrContains(t, err, "keys: issuer inline: jwks: no usable keys (the set is empty)")
}

// TestPEMFileRevocation: a pem_file emptied, or left with only blocks that
// cannot verify, revokes; a file caught mid-write keeps the keys; a rewrite
// with some unusable blocks serves the usable ones only.
func TestPEMFileRevocation(t *testing.T) {
	p, clk, logs := revokePlane(t)
	a, b := newEC(t), newEC(t)
	good := publicKeyPEM(t, &a.PublicKey)
	path := writeFile(t, t.TempDir(), "keys.pem", good)
	src := mustSource(t, p, Spec{Name: "pem", PEMFile: path})
	checkSigns(t, mustKeys(t, src, "")[0], a, "ES256")
	poll := func(data []byte) {
		t.Helper()
		replaceFile(t, path, data)
		clk.Add(DefaultFilePollInterval)
	}
	wantA := func(what string) {
		t.Helper()
		ks, err := src.Keys(t.Context(), "")
		if err != nil || len(ks) != 1 {
			t.Fatalf("%s: got %d keys, %v; want the last good key", what, len(ks), err)
		}
		checkSigns(t, ks[0], a, "ES256")
	}

	// Mid-write: a block cut short, or only the text before a block.
	poll(good[:len(good)-10])
	wantA("cut short")
	poll([]byte("Subject: CN=issuer\n"))
	wantA("text before the block")
	poll(append(append([]byte{}, good...), good[:30]...))
	wantA("second block cut short")

	poll(nil)
	wantRevoked(t, src, "any-kid")
	if n := logs.count(slog.LevelError, revokedLog, "issuer=pem", "path="+path); n != 1 {
		t.Fatalf("emptied pem_file not logged once:\n%s", logs)
	}

	poll(good)
	wantA("restored")

	// Only a 1024-bit RSA key and a certificate request.
	unusable := append(readFixture(t, "pem/weak_rsa.pem"), readFixture(t, "pem/unsupported_block.pem")...)
	poll(unusable)
	wantRevoked(t, src)
	if n := logs.count(slog.LevelError, revokedLog, "issuer=pem", "block 1: RSA key of 1024 bits", "block 2: unsupported PEM block"); n != 1 {
		t.Fatalf("unusable pem_file not logged once with its reasons:\n%s", logs)
	}

	// A usable key beside an unusable block: the usable one only, the
	// other logged, and a (the key the file no longer holds) gone.
	poll(append(publicKeyPEM(t, &b.PublicKey), readFixture(t, "pem/weak_rsa.pem")...))
	ks := mustKeys(t, src, "")
	if len(ks) != 1 {
		t.Fatalf("got %d keys, want the usable one", len(ks))
	}
	checkSigns(t, ks[0], b, "ES256")
	if n := logs.count(slog.LevelWarn, "key skipped", "issuer=pem", "block 2: RSA key of 1024 bits"); n != 1 {
		t.Fatalf("skipped block not logged:\n%s", logs)
	}

	// A private key is never used: the keys stay as they were.
	poll(readFixture(t, "pem/private_key.pem"))
	if ks := mustKeys(t, src, ""); len(ks) != 1 {
		t.Fatalf("a private-key file changed the keys: got %d", len(ks))
	} else {
		checkSigns(t, ks[0], b, "ES256")
	}
}

// TestHMACSecretFileRevocation: an emptied or unusable secret file revokes
// the secret; a shorter secret stops verifying the algorithms it is too
// short for.
func TestHMACSecretFileRevocation(t *testing.T) {
	p, clk, logs := revokePlane(t)
	long := randomSecret(t, 64)
	path := writeFile(t, t.TempDir(), "secret", long)
	src := mustSource(t, p, Spec{Name: "hmac", HMACSecretFile: path})
	sizer, ok := src.(SecretSizer)
	if !ok {
		t.Fatalf("an hmac_secret_file source (%T) does not tell its secret's length", src)
	}
	if n := sizer.SecretLen(); n != 64 {
		t.Fatalf("SecretLen = %d, want 64", n)
	}
	k := mustKeys(t, src, "")[0]
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		if !k.Fits(alg) {
			t.Fatalf("a 64-byte secret does not fit %s", alg)
		}
	}
	poll := func(data []byte) {
		t.Helper()
		replaceFile(t, path, data)
		clk.Add(DefaultFilePollInterval)
	}

	short := randomSecret(t, 32)
	poll(short)
	k = mustKeys(t, src, "")[0]
	checkSigns(t, k, short, "HS256")
	if k.Fits("HS384") || k.Fits("HS512") {
		t.Fatal("a 32-byte secret fits HS384 or HS512")
	}
	if n := sizer.SecretLen(); n != 32 {
		t.Fatalf("SecretLen = %d after the rewrite, want 32", n)
	}

	for name, data := range map[string][]byte{
		"empty":      {},
		"too short":  randomSecret(t, 31),
		"public key": publicKeyPEM(t, &newEC(t).PublicKey),
	} {
		poll(long)
		mustKeys(t, src, "")
		poll(data)
		wantRevoked(t, src)
		if n := sizer.SecretLen(); n != 0 {
			t.Fatalf("%s: SecretLen = %d while revoked", name, n)
		}
	}
	if n := logs.count(slog.LevelError, revokedLog, "issuer=hmac", "path="+path); n != 3 {
		t.Fatalf("revocations logged %d times, want 3:\n%s", n, logs)
	}
	if logs.count(slog.LevelError, "key 0") > 0 {
		t.Fatalf("an HMAC secret is logged as a numbered key:\n%s", logs)
	}
	if strings.Contains(logs.String(), string(long)) {
		t.Fatal("the secret was logged")
	}
}

// TestSPIFFEBundleFileUnusableKeys: a bundle file whose JWT keys are all
// unusable revokes like an empty one (a bundle file is the operator's, as
// any key file), and an empty bundle file loads as revoked.
func TestSPIFFEBundleFileUnusableKeys(t *testing.T) {
	p, clk, logs := revokePlane(t)
	a := newEC(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "bundle.json", svidBundle(t, 0, svidKey(t, a, "a")))
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	replaceFile(t, path, svidBundle(t, 0, fixtureJWK(t, "jwk/weak_rsa.json"), fixtureJWK(t, "jwk/oct.json"), fixtureJWK(t, "jwk/use_enc.json")))
	clk.Add(DefaultFilePollInterval)
	wantRevoked(t, src, "a", "weak")
	if n := logs.count(slog.LevelWarn, "no JWT-SVID keys", "issuer=mesh", "location="+path); n != 1 {
		t.Fatalf("bundle revocation not logged once:\n%s", logs)
	}

	empty := writeFile(t, dir, "empty.json", svidBundle(t, 0))
	src = newSPIFFE(t, p, Spec{Name: "mesh2"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: empty})
	wantRevoked(t, src, "a")
}

// TestFitsHMACSecretLength: RFC 7518 section 3.2 — an HMAC key at least as
// long as the hash output.
func TestFitsHMACSecretLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		fits []string
	}{
		{0, nil},
		{31, nil},
		{32, []string{"HS256"}},
		{47, []string{"HS256"}},
		{48, []string{"HS256", "HS384"}},
		{63, []string{"HS256", "HS384"}},
		{64, []string{"HS256", "HS384", "HS512"}},
		{128, []string{"HS256", "HS384", "HS512"}},
	} {
		k := &Key{Public: make([]byte, tc.n)}
		for _, alg := range []string{"HS256", "HS384", "HS512", "RS256", "none", ""} {
			want := false
			for _, f := range tc.fits {
				want = want || f == alg
			}
			if got := k.Fits(alg); got != want {
				t.Errorf("%d-byte secret Fits(%q) = %v, want %v", tc.n, alg, got, want)
			}
		}
	}
	for alg, n := range map[string]int{"HS256": 32, "HS384": 48, "HS512": 64, "RS256": 0, "hs256": 0} {
		if got := MinHMACSecretLen(alg); got != n {
			t.Errorf("MinHMACSecretLen(%q) = %d, want %d", alg, got, n)
		}
	}
	// A key's own alg still restricts it.
	if (&Key{Alg: "HS256", Public: make([]byte, 64)}).Fits("HS512") {
		t.Error("a secret pinned to HS256 fits HS512")
	}
}

func publicKeyPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func randomSecret(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// A secret ending in a newline draws a warning; keep the logs to what
	// the tests look for.
	if n > 0 && b[n-1] == '\n' {
		b[n-1] = 'x'
	}
	return b
}
