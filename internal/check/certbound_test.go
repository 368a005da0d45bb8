package check_test

// Tokens bound to the connection, through the real gRPC server:
// certificate-bound tokens (RFC 8705) and JWT-SVIDs bound to the peer's
// X.509-SVID. The DPoP cases are in dpop_test.go.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/extauthz/extauthz/test/jose"
)

// testCert is a self-signed client certificate, with uri as its URI SAN
// when given.
func testCert(t *testing.T, uri string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	k := jose.P256(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func x5t(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBound: cnf.x5t#S256 (RFC 8705 §3) is compared with the
// client certificate Envoy forwards; with DPoP too, both must hold.
func TestCertificateBound(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	cert, other := testCert(t, ""), testCert(t, "")
	tok := signLogin(t, loginClaims().set("cnf", map[string]any{"x5t#S256": x5t(cert)}))
	plain := func(c []byte) httpReq {
		r := httpReq{method: "GET", host: "api.example.com", path: "/plain/x", headers: [][2]string{{"authorization", "Bearer " + tok}}}
		r.peerCert = c
		return r
	}
	bad := func(reason string) want {
		return challenged("plain-api", reason, `Bearer realm="extauthz", error="invalid_token"`).by("login", "reporting-app", "")
	}
	pub := &clientKey().PublicKey
	both := signLogin(t, loginClaims().set("cnf", map[string]any{"x5t#S256": x5t(cert), "jkt": jose.Thumbprint(pub)}))
	bothReq := func(c []byte) httpReq {
		r := dpopReq("/dpop/q1", both, proof(t, proofClaims("GET", "https://api.example.com/dpop/q1", both)))
		r.peerCert = c
		return r
	}
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"the bound certificate", plain(cert), dpopAllowed("plain-api", map[string]string{"x-client-id": "reporting-app"}).by("login", "reporting-app", "")},
		{"no certificate", plain(nil), bad("peer_certificate_missing")},
		{"another certificate", plain(other), bad("certificate_binding_mismatch")},
		{"a certificate that does not parse", plain([]byte("not DER")), bad("peer_certificate_invalid")},
		{"bound to a key and a certificate, both proven", bothReq(cert), dpopAllowed("dpop-api", map[string]string{"x-client-id": "reporting-app", "x-dpop-jkt": jose.Thumbprint(pub)}).by("login", "reporting-app", "")},
		{"bound to both, the certificate missing", bothReq(nil), challenged("dpop-api", "peer_certificate_missing", `DPoP realm="extauthz", error="invalid_token", algs="`+allAlgs+`"`).by("login", "reporting-app", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestPeerSVID: with peer_svid, a JWT-SVID is taken only over a connection
// whose client certificate is the same workload's X.509-SVID.
func TestPeerSVID(t *testing.T) {
	h := newHarness(t, dpopPolicy)
	svid := signSpire(t, claims{"sub": meshWorkload, "aud": "api.example.com", "iat": unix(0), "exp": unix(5 * time.Minute)})
	req := func(c []byte) httpReq {
		r := httpReq{method: "GET", host: "api.example.com", path: "/svid/x", headers: [][2]string{{"authorization", "Bearer " + svid}}}
		r.peerCert = c
		return r
	}
	bad := func(reason string) want {
		return challenged("svid-api", reason, `Bearer realm="extauthz", error="invalid_token"`).by("mesh", "", meshWorkload)
	}
	assertResponse(t, h.check(t, req(testCert(t, meshWorkload))), dpopAllowed("svid-api", map[string]string{"x-spiffe-id": meshWorkload}).by("mesh", "", meshWorkload))
	assertResponse(t, h.check(t, req(testCert(t, "spiffe://mesh.example/ns/apps/sa/other"))), bad("peer_svid_mismatch"))
	assertResponse(t, h.check(t, req(testCert(t, ""))), bad("peer_svid_mismatch"))
	assertResponse(t, h.check(t, req(nil)), bad("peer_certificate_missing"))

	// The same binding for a JWT-SVID used as a client assertion.
	assertion := signSpire(t, claims{"sub": meshWorkload, "aud": tokenEndpoint, "iat": unix(0), "exp": unix(5 * time.Minute)})
	treq := func(c []byte) httpReq {
		r := tokenReq(form("grant_type", "client_credentials", "client_assertion_type", spiffeURN, "client_assertion", assertion)).onPath("/mesh/token")
		r.peerCert = c
		return r
	}
	assertResponse(t, h.check(t, treq(testCert(t, meshWorkload))), dpopAllowed("svid-token", map[string]string{"x-client-id": meshWorkload}).by("mesh", meshWorkload, meshWorkload))
	assertResponse(t, h.check(t, treq(testCert(t, "spiffe://mesh.example/other"))), invalidClient("peer_svid_mismatch").onRule("svid-token").by("mesh", meshWorkload, meshWorkload))
}
