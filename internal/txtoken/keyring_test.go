package txtoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extauthz/extauthz/test/jose"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func p256PEM(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func ed25519PEM(t testing.TB) (ed25519.PrivateKey, []byte) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// k8sMount lays out a directory as the kubelet does for a Secret volume:
// each visible name is a symlink to ..data/name, ..data a symlink to a
// timestamped directory. swap replaces the whole content at once.
type k8sMount struct {
	t   testing.TB
	dir string
	gen int
}

func newK8sMount(t testing.TB, files map[string][]byte) *k8sMount {
	m := &k8sMount{t: t, dir: t.TempDir()}
	m.swap(files)
	return m
}

func (m *k8sMount) swap(files map[string][]byte) {
	t := m.t
	t.Helper()
	m.gen++
	gen := filepath.Join(m.dir, "..2030_01_02_03_04_05."+strings.Repeat("x", m.gen))
	if err := os.Mkdir(gen, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		write(t, filepath.Join(gen, name), data)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	// Visible names: added for new files, removed for gone ones.
	entries, _ := os.ReadDir(m.dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			if _, ok := files[e.Name()]; !ok {
				os.Remove(filepath.Join(m.dir, e.Name()))
			}
		}
	}
	for name := range files {
		link := filepath.Join(m.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenFileES256AndThumbprint(t *testing.T) {
	k, data := p256PEM(t)
	path := filepath.Join(t.TempDir(), "key.pem")
	write(t, path, data)
	r, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Signer(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg != AlgES256 || s.KID != jose.Thumbprint(&k.PublicKey) {
		t.Fatalf("signer = %s %s, want ES256 %s", s.Alg, s.KID, jose.Thumbprint(&k.PublicKey))
	}
}

func TestOpenDirectoryEd25519SkipsDotfiles(t *testing.T) {
	dir := t.TempDir()
	k, data := ed25519PEM(t)
	write(t, filepath.Join(dir, "a.pem"), data)
	write(t, filepath.Join(dir, ".hidden"), []byte("not a key"))
	r, err := Open(Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Signer(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.Alg != AlgEdDSA || s.KID != jose.Thumbprint(k.Public()) {
		t.Fatalf("signer = %s %s", s.Alg, s.KID)
	}
}

func TestOpenRefusesOtherKeys(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rk)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	pubDER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for name, tc := range map[string]struct {
		data, want string
	}{
		"rsa":    {string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})), "*rsa.PrivateKey keys do not sign internal tokens"},
		"p384":   {string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})), "EC key on P-384; only P-256 (ES256) signs"},
		"public": {string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), `"PUBLIC KEY" is not a private key`},
		"empty":  {"", "holds no PEM block"},
		"text":   {"hello", "holds data that is not PEM"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			write(t, path, []byte(tc.data))
			_, err := Open(Config{Path: path})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "txtoken: ") {
				t.Fatalf("Open = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := Open(Config{Path: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "holds no signing key") {
		t.Fatalf("empty directory: %v", err)
	}
}

// TestRotationPublishDelay is the rotation an operator does on Kubernetes:
// add the new key beside the old, wait, remove the old.
func TestRotationPublishDelay(t *testing.T) {
	clk := newClock()
	oldKey, oldPEM := p256PEM(t)
	newKey, newPEM := ed25519PEM(t)
	oldKID, newKID := jose.Thumbprint(&oldKey.PublicKey), jose.Thumbprint(newKey.Public())
	m := newK8sMount(t, map[string][]byte{"2030-01.pem": oldPEM})
	const delay = 2 * time.Minute
	r, err := Open(Config{Path: m.dir, PublishDelay: delay, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	signer := func() string {
		t.Helper()
		s, err := r.Signer(clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s.KID
	}
	if got := signer(); got != oldKID {
		t.Fatalf("first start: signer %s, want the only key %s at once", got, oldKID)
	}

	m.swap(map[string][]byte{"2030-01.pem": oldPEM, "2030-02.pem": newPEM})
	r.Refresh()
	if got := r.Published(); !slices.Equal(got, []string{oldKID, newKID}) {
		t.Fatalf("published = %v, want both keys at once", got)
	}
	clk.Add(delay - time.Second)
	if got := signer(); got != oldKID {
		t.Fatalf("within the delay: signer %s, want the old key", got)
	}
	clk.Add(time.Second)
	if got := signer(); got != newKID {
		t.Fatalf("after the delay: signer %s, want the new key", got)
	}

	m.swap(map[string][]byte{"2030-02.pem": newPEM})
	r.Refresh()
	if got := r.Published(); !slices.Equal(got, []string{newKID}) {
		t.Fatalf("after removal: published = %v", got)
	}
	if got := signer(); got != newKID {
		t.Fatalf("after removal: signer %s", got)
	}
}

// TestWithdrawal: a key removed while it signs stops at once; the key
// beside it that is still waiting does not sign early.
func TestWithdrawal(t *testing.T) {
	clk := newClock()
	_, aPEM := p256PEM(t)
	_, bPEM := p256PEM(t)
	m := newK8sMount(t, map[string][]byte{"a.pem": aPEM})
	r, err := Open(Config{Path: m.dir, PublishDelay: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m.swap(map[string][]byte{"b.pem": bPEM})
	r.Refresh()
	if len(r.Published()) != 1 {
		t.Fatalf("published = %v", r.Published())
	}
	if s, err := r.Signer(clk.Now()); err != ErrNoSigner {
		t.Fatalf("signer = %v, %v; want ErrNoSigner until b's delay passes", s, err)
	}
	clk.Add(time.Minute)
	if _, err := r.Signer(clk.Now()); err != nil {
		t.Fatal(err)
	}
	m.swap(map[string][]byte{})
	r.Refresh()
	if _, err := r.Signer(clk.Now()); err != ErrNoSigner || len(r.Published()) != 0 {
		t.Fatalf("empty mount: %v, published %v", err, r.Published())
	}
}

// TestFirstStartTwoKeys: a restart in the middle of a rotation signs with
// the first key by name and lets the other wait.
func TestFirstStartTwoKeys(t *testing.T) {
	clk := newClock()
	aKey, aPEM := p256PEM(t)
	bKey, bPEM := p256PEM(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "1.pem"), aPEM)
	write(t, filepath.Join(dir, "2.pem"), bPEM)
	r, err := Open(Config{Path: dir, PublishDelay: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Signer(clk.Now()); s == nil || s.KID != jose.Thumbprint(&aKey.PublicKey) {
		t.Fatalf("signer = %v, want 1.pem's key", s)
	}
	clk.Add(time.Minute)
	if s, _ := r.Signer(clk.Now()); s == nil || s.KID != jose.Thumbprint(&bKey.PublicKey) {
		t.Fatalf("signer = %v, want 2.pem's key after the delay", s)
	}
}

// TestBadRereadKeepsKeys: a mount caught halfway (a file that does not
// parse) keeps the keys in use.
func TestBadRereadKeepsKeys(t *testing.T) {
	k, data := p256PEM(t)
	path := filepath.Join(t.TempDir(), "key.pem")
	write(t, path, data)
	r, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, data[:len(data)/2])
	r.Refresh()
	if s, err := r.Signer(time.Now()); err != nil || s.KID != jose.Thumbprint(&k.PublicKey) {
		t.Fatalf("signer = %v, %v", s, err)
	}
}

func TestJWKSAndDiscovery(t *testing.T) {
	k, data := p256PEM(t)
	path := filepath.Join(t.TempDir(), "key.pem")
	write(t, path, data)
	r, err := Open(Config{Path: path, PublishDelay: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+JWKSPath, r.JWKSHandler())
	mux.Handle("GET "+DiscoveryPath, r.DiscoveryHandler("https://extauthz.example/"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=30" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range jose.PublicJWK(jose.Thumbprint(&k.PublicKey), "ES256", &k.PublicKey) {
		want[k] = v.(string)
	}
	if len(set.Keys) != 1 || !equalMaps(set.Keys[0], want) {
		t.Fatalf("jwks = %v, want %v", set.Keys, want)
	}

	resp2, err := http.Get(srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp2.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != "https://extauthz.example/" || doc["jwks_uri"] != "https://extauthz.example/.well-known/jwks.json" {
		t.Fatalf("discovery = %v", doc)
	}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Fatalf("algs = %v", doc["id_token_signing_alg_values_supported"])
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func FuzzParseKeys(f *testing.F) {
	_, p := p256PEM(f)
	_, e := ed25519PEM(f)
	f.Add(p)
	f.Add(e)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseKeys("f", data)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			if k.KID == "" || (k.Alg != AlgES256 && k.Alg != AlgEdDSA) {
				t.Fatalf("key %+v", k)
			}
		}
	})
}
