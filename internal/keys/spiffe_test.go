package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/extauthz/extauthz/test/spire"
)

// svidBundle is a SPIFFE bundle document: keys plus optional members.
func svidBundle(t testing.TB, hint int, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	doc := map[string]any{"keys": keys, "spiffe_sequence": 1}
	if hint > 0 {
		doc["spiffe_refresh_hint"] = hint
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// svidKey is a JWT authority entry of a SPIFFE bundle.
func svidKey(t testing.TB, priv *ecdsa.PrivateKey, kid string) map[string]any {
	return jwkOf(t, priv, kid, map[string]any{"use": "jwt-svid"})
}

// x509Authority is an x509-svid entry of a SPIFFE bundle.
func x509Authority(cert *x509.Certificate) map[string]any {
	return map[string]any{"use": "x509-svid", "kty": "EC", "crv": "P-256",
		"x5c": []string{base64.StdEncoding.EncodeToString(cert.Raw)}}
}

// newSPIFFE builds a spiffe source on p, failing t on error.
func newSPIFFE(t *testing.T, p *Plane, spec Spec, s SPIFFESpec) Source {
	t.Helper()
	src, err := p.spiffeSource(spec, s)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

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

func TestSPIFFESpecErrors(t *testing.T) {
	p, _, _ := testPlane(t, Config{})
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.json", []byte(`[{"keys":[]}]`))
	ca := writeFile(t, dir, "ca.pem", []byte("no pem here"))
	for _, tc := range []struct {
		name string
		spec Spec
		s    SPIFFESpec
		want string
	}{
		{"no trust domain", Spec{}, SPIFFESpec{WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"bad trust domain", Spec{}, SPIFFESpec{TrustDomain: "Not A Domain", WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"trust domain as ID", Spec{}, SPIFFESpec{TrustDomain: "spiffe://example.org", WorkloadAPISocket: "unix:///x"}, "trust_domain"},
		{"no source", Spec{}, SPIFFESpec{TrustDomain: "example.org"}, "exactly one"},
		{"two sources", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:///x", BundleFile: "/x"}, "exactly one"},
		{"bad socket", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "http://x"}, "workload_api_socket"},
		{"relative socket", Spec{}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:agent.sock"}, "workload_api_socket"},
		{"id without url", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: "/x", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs bundle_endpoint.url"},
		{"ca_file with socket", Spec{CAFile: ca}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: "unix:///x"}, "ca_file applies only"},
		{"http endpoint", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "http://bundles.example.org/b"}, "http:// is allowed only"},
		{"web ca_file without pem", Spec{CAFile: ca}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org"}, "no PEM"},
		{"spiffe profile over http", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "http://127.0.0.1:1/", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs https"},
		{"spiffe profile bad id", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org", BundleEndpointSPIFFEID: "example.org/s"}, "spiffe_id"},
		{"spiffe profile without roots", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: "https://b.example.org", BundleEndpointSPIFFEID: "spiffe://example.org/s"}, "needs ca_file"},
		{"malformed bundle file", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: bad}, "not a SPIFFE bundle"},
		{"bundle file is a directory", Spec{}, SPIFFESpec{TrustDomain: "example.org", BundleFile: dir}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "mesh"
			_, err := p.spiffeSource(tc.spec, tc.s)
			wantErrContains(t, err, "keys: issuer mesh: spiffe: ", tc.want)
		})
	}
}

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

// fakeWorkloadAPI is a Workload API server on a unix socket that streams
// the JWT bundles a test sets, as a SPIRE agent does.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	path string

	mu      sync.Mutex
	bundles map[string][]byte
	changed chan struct{}
	deny    error // when set, streams fail with it
	srv     *grpc.Server
	streams int
}

func newFakeWorkloadAPI(t *testing.T) *fakeWorkloadAPI {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir can exceed it.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeWorkloadAPI{path: filepath.Join(dir, "agent.sock"), changed: make(chan struct{})}
	f.start(t)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeWorkloadAPI) addr() string { return "unix://" + f.path }

func (f *fakeWorkloadAPI) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop ends the server and every stream, like an agent going down.
func (f *fakeWorkloadAPI) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (f *fakeWorkloadAPI) set(bundles map[string][]byte) {
	f.mu.Lock()
	f.bundles = bundles
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeWorkloadAPI) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	f.mu.Lock()
	f.streams++
	f.mu.Unlock()
	for {
		f.mu.Lock()
		bundles, changed, deny := f.bundles, f.changed, f.deny
		f.mu.Unlock()
		if deny != nil {
			return deny
		}
		if bundles != nil {
			if err := stream.Send(&workload.JWTBundlesResponse{Bundles: bundles}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// realPlane is a plane on the real clock, for sources whose goroutines wait
// on reconnect backoff.
func realPlane(t *testing.T) *Plane {
	t.Helper()
	p, err := NewPlane(Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// eventually polls f until it returns nil, for at most 10s: the Workload API
// pushes asynchronously.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 10s", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantKey(src Source, kid string, priv *ecdsa.PrivateKey) func() error {
	return func() error {
		ks, err := src.Keys(context.Background(), kid)
		if err != nil {
			return err
		}
		if !ks[0].Public.(*ecdsa.PublicKey).Equal(&priv.PublicKey) {
			return errors.New("wrong key")
		}
		return nil
	}
}

func wantLookupErr(src Source, kid string, target error) func() error {
	return func() error {
		_, err := src.Keys(context.Background(), kid)
		if !errors.Is(err, target) {
			return errors.New("got " + errString(err))
		}
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestSPIFFEWorkloadAPI: the bundle streamed by the agent is served; only
// the issuer's trust domain counts; updates apply at once, an update
// without keys revokes them all, and an agent restart is survived.
func TestSPIFFEWorkloadAPI(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	p := realPlane(t)
	a, b, other := ecKey(), newEC(t), newEC(t)

	// Policy load never waits for the agent: before its first bundle the
	// issuer is unavailable.
	api.mu.Lock()
	api.deny = status.Error(codes.PermissionDenied, "no identity issued")
	api.mu.Unlock()
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	// Startup's prefetch returns once the agent has answered, even with a
	// refusal.
	src.(*spiffeSource).prefetch(t.Context())
	eventually(t, "the agent's refusal is reported", func() error {
		_, err := src.Keys(t.Context(), "a")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no identity issued") {
			return errors.New("got " + errString(err))
		}
		return nil
	})

	api.mu.Lock()
	api.deny = nil
	api.mu.Unlock()
	api.set(map[string][]byte{
		"spiffe://example.org": jwksJSON(t, jwkOf(t, a, "a", nil), jwkOf(t, b, "x509", map[string]any{"use": "x509-svid"})),
		// A federated trust domain's key, under a kid ours lacks: it must
		// never verify the issuer's tokens.
		"spiffe://other.org": jwksJSON(t, jwkOf(t, other, "other", nil)),
	})
	eventually(t, "first bundle", wantKey(src, "a", a))
	eventually(t, "other trust domain's key", wantLookupErr(src, "other", ErrUnknownKID))
	eventually(t, "key of another use", wantLookupErr(src, "x509", ErrUnknownKID))

	// Rotation: the agent pushes the new bundle.
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"), svidKey(t, b, "b"))})
	eventually(t, "rotated bundle", wantKey(src, "b", b))

	// An update without keys for the trust domain revokes at once.
	api.set(map[string][]byte{"spiffe://example.org": []byte(`{"keys":[]}`)})
	eventually(t, "empty bundle revokes", wantLookupErr(src, "a", ErrUnknownKID))
	_, err = src.Keys(t.Context(), "b")
	wantErrContains(t, err, "every key is revoked")

	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, b, "b"))})
	eventually(t, "keys return", wantKey(src, "b", b))
	// So does an update that no longer carries the trust domain at all.
	api.set(map[string][]byte{"spiffe://other.org": jwksJSON(t, jwkOf(t, other, "b", nil))})
	eventually(t, "trust domain gone", wantLookupErr(src, "b", ErrUnknownKID))

	// The agent restarts: the last bundle is served meanwhile, and the
	// new agent's bundle is picked up after reconnecting.
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"))})
	eventually(t, "before restart", wantKey(src, "a", a))
	api.stop()
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, b, "b"))})
	api.start(t)
	eventually(t, "after agent restart", wantKey(src, "b", b))

	// A reload with the same spec shares the watcher: no second stream.
	api.mu.Lock()
	before := api.streams
	api.mu.Unlock()
	again := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	if again.(*spiffeSource).r.Load() != src.(*spiffeSource).r.Load() {
		t.Fatal("a reload with the same spec started a second watcher")
	}
	checkSigns(t, mustKeys(t, again, "b")[0], b, "ES256")
	api.mu.Lock()
	after := api.streams
	api.mu.Unlock()
	if after != before {
		t.Fatalf("streams %d -> %d", before, after)
	}

	// Close ends the stream: Close waits for the watcher goroutine.
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the Workload API watcher")
	}
}

// TestSPIFFEWorkloadAPIStaleAfterAgentGone: with the agent gone, the last
// bundle is served for MaxStale, then the issuer is unavailable.
func TestSPIFFEWorkloadAPIStaleAfterAgentGone(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	p, err := NewPlane(Config{MaxStale: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	a := ecKey()
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"))})
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	// Startup's prefetch waits for the first bundle: no Check after it
	// gets 503 for want of one.
	src.(*spiffeSource).prefetch(t.Context())
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	api.stop()
	eventually(t, "stale bundle dropped", wantLookupErr(src, "a", ErrUnavailable))
}

func TestSPIFFEOfflineDoesNotConnect(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, ecKey(), "a"))})
	p, _, _ := testPlane(t, Config{Offline: true})
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "offline")
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.streams != 0 {
		t.Fatal("offline plane opened a Workload API stream")
	}
}

var quietLog = log.New(io.Discard, "", 0)

// bundleServer is a bundle endpoint that counts fetches.
type bundleServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits int
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.body)
}

func (s *bundleServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *bundleServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// TestSPIFFEBundleEndpointWeb: the https_web profile, refreshed per the
// bundle's spiffe_refresh_hint (bounded below), with one refetch per
// cooldown for an unknown kid.
func TestSPIFFEBundleEndpointWeb(t *testing.T) {
	a, b, c := ecKey(), newEC(t), newEC(t)
	bs := &bundleServer{body: svidBundle(t, 60, svidKey(t, a, "a"))}
	bs.Server = httptest.NewUnstartedServer(bs)
	bs.Config.ErrorLog = quietLog // the untrusted client's handshake fails on purpose
	bs.StartTLS()
	t.Cleanup(bs.Close)
	ca := writeFile(t, t.TempDir(), "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bs.Certificate().Raw}))
	p, clk, _ := testPlane(t, Config{})

	src := newSPIFFE(t, p, Spec{Name: "mesh", CAFile: ca}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: bs.URL + "/bundle"})
	p.settle()
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	if n := bs.count(); n != 1 {
		t.Fatalf("%d fetches at start", n)
	}

	// The refresh hint schedules the next fetch.
	bs.set(svidBundle(t, 1, svidKey(t, a, "a"), svidKey(t, b, "b")))
	clk.Add(60 * time.Second)
	p.settle()
	if n := bs.count(); n != 2 {
		t.Fatalf("%d fetches after the refresh hint passed", n)
	}
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")
	// A hint of one second is raised to the floor.
	clk.Add(spiffeMinRefresh / 2)
	p.settle()
	if n := bs.count(); n != 2 {
		t.Fatalf("refetched after %s: the hint floor did not hold", spiffeMinRefresh/2)
	}
	clk.Add(spiffeMinRefresh / 2)
	p.settle()
	if n := bs.count(); n != 3 {
		t.Fatalf("%d fetches, want 3 once the floor passed", n)
	}

	// An unknown kid refetches once per cooldown.
	bs.set(svidBundle(t, 3600, svidKey(t, b, "b"), svidKey(t, c, "c")))
	clk.Add(DefaultRefetchCooldown)
	checkSigns(t, mustKeys(t, src, "c")[0], c, "ES256")
	_, err := src.Keys(t.Context(), "nope")
	wantErr(t, err, ErrUnknownKID)
	if n := bs.count(); n != 5 && n != 4 {
		t.Fatalf("%d fetches", n)
	}
	before := bs.count()
	for range 10 {
		_, err := src.Keys(t.Context(), "nope")
		wantErr(t, err, ErrUnknownKID)
	}
	if n := bs.count(); n != before {
		t.Fatalf("unknown kids within the cooldown fetched %d times", n-before)
	}

	// An update without keys revokes everything at once.
	bs.set(svidBundle(t, 3600))
	clk.Add(time.Hour)
	p.settle()
	_, err = src.Keys(t.Context(), "c")
	wantErr(t, err, ErrUnknownKID)
	wantErrContains(t, err, "every key is revoked")

	// Without the ca_file the endpoint is not trusted.
	untrusted := newSPIFFE(t, p, Spec{Name: "untrusted"}, SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: bs.URL + "/bundle"})
	p.settle()
	_, err = untrusted.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "certificate")
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

// newX509SVID is a server X509-SVID with the SPIFFE ID id, signed by ca.
func newX509SVID(t testing.TB, id string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		URIs:        []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestSPIFFEBundleEndpointSPIFFEAuth: the https_spiffe profile checks the
// endpoint's SPIFFE ID against the trust domain's X.509 authorities, which
// the bundles it serves keep current, so its CA can rotate.
func TestSPIFFEBundleEndpointSPIFFEAuth(t *testing.T) {
	const serverID = "spiffe://example.org/spire/server"
	ca1, ca1Key := newSVIDCA(t, "spiffe://example.org")
	ca2, ca2Key := newSVIDCA(t, "spiffe://example.org")
	a := ecKey()

	var certMu sync.Mutex
	cert := newX509SVID(t, serverID, ca1, ca1Key)
	bs := &bundleServer{body: svidBundle(t, 60, svidKey(t, a, "a"), x509Authority(ca1), x509Authority(ca2))}
	bs.Server = httptest.NewUnstartedServer(bs)
	// GetConfigForClient, because httptest installs its own certificate,
	// which GetCertificate would not override for a client without SNI.
	bs.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		certMu.Lock()
		defer certMu.Unlock()
		return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
	}}
	bs.Config.ErrorLog = quietLog // the wrong-ID client's handshake fails on purpose
	bs.StartTLS()
	t.Cleanup(bs.Close)
	dir := t.TempDir()
	// The bootstrap bundle, as `spire-server bundle show -format spiffe`
	// prints it; PEM would do too.
	boot := writeFile(t, dir, "bootstrap.json", svidBundle(t, 0, x509Authority(ca1)))
	p, clk, _ := testPlane(t, Config{})

	src := newSPIFFE(t, p, Spec{Name: "mesh", CAFile: boot},
		SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: bs.URL, BundleEndpointSPIFFEID: serverID})
	p.settle()
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")

	// The server moves to the second CA, which the last bundle announced.
	certMu.Lock()
	cert = newX509SVID(t, serverID, ca2, ca2Key)
	certMu.Unlock()
	bs.CloseClientConnections()
	b := newEC(t)
	bs.set(svidBundle(t, 60, svidKey(t, b, "b"), x509Authority(ca2)))
	clk.Add(60 * time.Second)
	p.settle()
	checkSigns(t, mustKeys(t, src, "b")[0], b, "ES256")

	// A server with another SPIFFE ID is refused.
	pemCA := writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca2.Raw}))
	wrong := newSPIFFE(t, p, Spec{Name: "wrong", CAFile: pemCA},
		SPIFFESpec{TrustDomain: "example.org", BundleEndpointURL: bs.URL, BundleEndpointSPIFFEID: "spiffe://example.org/not/the/server"})
	p.settle()
	_, err := wrong.Keys(t.Context(), "b")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "unexpected ID")
}

// TestSPIFFESupersededWatcherStops: a reload that gives the issuer another
// source stops its watcher; a policy still holding the old source starts it
// again on its next lookup.
func TestSPIFFESupersededWatcherStops(t *testing.T) {
	p, clk, _ := testPlane(t, Config{})
	a := ecKey()
	dir := t.TempDir()
	path := writeFile(t, dir, "bundle.json", svidBundle(t, 0, svidKey(t, a, "a")))
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: path})
	r := src.(*spiffeSource).r.Load()

	other := writeFile(t, dir, "other.json", svidBundle(t, 0, svidKey(t, a, "a")))
	newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", BundleFile: other})
	clk.Add(spiffeSweep)
	if !r.stopped.Load() {
		t.Fatal("the superseded watcher still runs")
	}
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	if src.(*spiffeSource).r.Load() == r {
		t.Fatal("the old policy's lookup did not restart its watcher")
	}
}

// TestSPIFFEWithRealSPIRE checks the source against a real SPIRE agent and
// its real JWT-SVIDs: through the Workload API and through a bundle file
// written from `spire-server bundle show -format spiffe`, across an agent
// restart and a rotation of SPIRE's JWT signing key. The rotated key can
// reach the Workload API source only through the stream it re-established
// after the restart.
func TestSPIFFEWithRealSPIRE(t *testing.T) {
	s := spire.Start(t)
	p := realPlane(t)
	ctx := t.Context()
	const aud = "api.example.com"
	wl := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: spire.TrustDomain, WorkloadAPISocket: s.WorkloadAPIAddr()})
	bundlePath := filepath.Join(t.TempDir(), "bundle.json")
	writeBundle := func() {
		tmp := bundlePath + ".tmp"
		if err := os.WriteFile(tmp, s.Bundle(t), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, bundlePath); err != nil {
			t.Fatal(err)
		}
	}
	writeBundle()
	file := newSPIFFE(t, p, Spec{Name: "mesh-file"}, SPIFFESpec{TrustDomain: spire.TrustDomain, BundleFile: bundlePath})

	// verify checks token's signature, audience and expiry with the keys
	// src gives for its kid, using go-spiffe's own JWT-SVID validation.
	verify := func(src Source, token string) func() error {
		return func() error {
			kid := spire.KeyID(t, token)
			ks, err := src.Keys(ctx, kid)
			if err != nil {
				return err
			}
			td := spiffeid.RequireTrustDomainFromString(spire.TrustDomain)
			_, err = jwtsvid.ParseAndValidate(token, jwtbundle.FromJWTAuthorities(td, map[string]crypto.PublicKey{kid: ks[0].Public}), []string{aud})
			return err
		}
	}
	svid := s.FetchJWTSVID(t, aud)
	eventually(t, "Workload API source verifies a real JWT-SVID", verify(wl, svid))
	eventually(t, "bundle file source verifies a real JWT-SVID", verify(file, svid))

	s.StopAgent(t)
	if err := verify(wl, svid)(); err != nil {
		t.Fatalf("while the agent is down, the last bundle is not served: %v", err)
	}
	s.StartAgent(t)

	_, newKID := s.RotateJWTKey(t, func(newKID string) {
		eventually(t, "the prepared key reaches the Workload API source", func() error {
			_, err := wl.Keys(ctx, newKID)
			return err
		})
		writeBundle()
	})
	var rotated string
	eventually(t, "an SVID signed by the new key", func() error {
		rotated = s.FetchJWTSVID(t, aud)
		if spire.KeyID(t, rotated) != newKID {
			return errors.New("still signed by the old key")
		}
		return nil
	})
	eventually(t, "Workload API source verifies the rotated SVID", verify(wl, rotated))
	eventually(t, "bundle file source verifies the rotated SVID", verify(file, rotated))
	eventually(t, "the old key still verifies until revoked", verify(wl, svid))
}
