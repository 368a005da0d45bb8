package check_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// opaqueAllowedWant is the allow of reports-api for opaqueMembers.
func opaqueAllowedWant() want {
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	return w
}

// TestIntrospectPrivateKeyJWT: with private_key_jwt, the endpoint gets our
// RFC 7523 assertion, verifies it with our public key (iss = sub =
// client_id, aud the endpoint, kid as configured) and the Check is allowed.
func TestIntrospectPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeTemp(t, "client.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	var endpoint string
	authOK := func(r *http.Request) bool {
		f := r.PostForm
		if f.Get("client_id") != "extauthz" || f.Get("client_assertion_type") != assertionURN || r.Header.Get("Authorization") != "" {
			return false
		}
		header, claims, ok := verifyES256(f.Get("client_assertion"), &key.PublicKey)
		return ok && header["kid"] == "gw-1" && claims["iss"] == "extauthz" && claims["sub"] == "extauthz" &&
			claims["aud"] == endpoint && claims["jti"] != nil
	}
	h, as, _ := newIntrospectHarnessWith(t, endpointOpts{
		client: "        method: private_key_jwt\n        private_key_file: " + keyFile + "\n        key_id: gw-1",
		authOK: func(r *http.Request) bool { return authOK(r) },
	})
	endpoint = as.url
	as.issue("opaque-pkjwt", opaqueMembers())
	assertResponse(t, h.check(t, opaqueReq("opaque-pkjwt")), opaqueAllowedWant())
}

// verifyES256 checks a compact ES256 JWS with the standard library, as an
// authorization server would.
func verifyES256(jws string, pub *ecdsa.PublicKey) (header, claims map[string]any, ok bool) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, nil, false
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, nil, false
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			return nil, nil, false
		}
	}
	return header, claims, true
}

// TestIntrospectTLSClientAuth: with tls_client_auth, extauthz presents its
// client certificate to an endpoint that requires one (trusted through the
// issuer's ca_file) and names its client_id in the form.
func TestIntrospectTLSClientAuth(t *testing.T) {
	ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "extauthz-gateway"},
		// The TLS handshake checks validity against the real clock.
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.PublicKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	certFile := writeTemp(t, "client.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile := writeTemp(t, "client.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	h, as, _ := newIntrospectHarnessWith(t, endpointOpts{
		client: "        method: tls_client_auth\n        cert_file: " + certFile + "\n        key_file: " + keyFile,
		tls:    &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool},
		authOK: func(r *http.Request) bool {
			pc := r.TLS.PeerCertificates
			return len(pc) == 1 && pc[0].Subject.CommonName == "extauthz-gateway" &&
				r.PostForm.Get("client_id") == "extauthz" && r.Header.Get("Authorization") == ""
		},
	})
	as.issue("opaque-mtls", opaqueMembers())
	assertResponse(t, h.check(t, opaqueReq("opaque-mtls")), opaqueAllowedWant())
}

// TestIntrospectConcurrencyBound: with max_concurrency 1 and the one slot
// held by a slow endpoint, another Check fails closed with 503 within the
// timeout instead of queueing, and the slow one fails closed too once its
// timeout passes: a slow endpoint cannot hold Checks past the timeout.
func TestIntrospectConcurrencyBound(t *testing.T) {
	hold := make(chan struct{})
	arrived := make(chan struct{}, 4)
	h, as, _ := newIntrospectHarnessWith(t, endpointOpts{
		tuning: "      max_concurrency: 1\n      timeout: 300ms\n",
		hold:   hold, arrived: arrived,
	})
	defer close(hold)
	as.issue("slow-a", opaqueMembers())
	as.issue("slow-b", opaqueMembers())
	unavailable := want{
		code: codes.PermissionDenied, status: 503,
		headers: map[string]string{"retry-after": "5", "content-type": "application/json", "cache-control": "no-store"},
		body:    `{"error":"temporarily_unavailable"}`, rule: "reports-api", reason: "introspection_unavailable", issuer: "as",
	}
	first := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := h.client.Check(ctx, opaqueReq("slow-a").proto())
		switch {
		case err != nil:
			first <- err.Error()
		case resp.GetDeniedResponse().GetStatus().GetCode() != 503:
			first <- "not a 503: " + resp.String()
		default:
			first <- ""
		}
	}()
	<-arrived
	start := time.Now()
	assertResponse(t, h.check(t, opaqueReq("slow-b")), unavailable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the Check over the limit took %s; the timeout is 300ms", d)
	}
	if msg := <-first; msg != "" {
		t.Fatalf("the held Check: %s; want a 503 once its timeout passed", msg)
	}
}
