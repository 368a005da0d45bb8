package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

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
