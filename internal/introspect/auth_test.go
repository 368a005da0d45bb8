package introspect

import (
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
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientSecretBasic: the endpoint sees the RFC 6749 §2.3.1 header
// (id and secret form-encoded, then base64), the token, the hint, and the
// form content type.
func TestClientSecretBasic(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) {
		s.ClientID = "extauthz client"
		s.ClientSecretFile = writeFile(t, "secret", "p@ss:w%rd\n")
	}))
	if _, err := lookup(t, c, "opaque-1", now); err != nil {
		t.Fatal(err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("extauthz+client:p%40ss%3Aw%25rd"))
	r := ep.last
	if got := r.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("request %s, Content-Type %q, Accept %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"))
	}
	f := ep.form()
	if len(f) != 2 || f.Get("token") != "opaque-1" || f.Get("token_type_hint") != "access_token" {
		t.Errorf("form = %v, want token and token_type_hint only", f)
	}
}

// TestNoHint: token_type_hint "none" (compiled to "") sends no hint.
func TestNoHint(t *testing.T) {
	ep := newEndpoint(t, activeAnswer(t, nil))
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) { s.TokenTypeHint = "" }))
	if _, err := lookup(t, c, "opaque-1", now); err != nil {
		t.Fatal(err)
	}
	if f := ep.form(); len(f) != 1 || f.Get("token") != "opaque-1" {
		t.Errorf("form = %v, want the token alone", f)
	}
}

// TestPrivateKeyJWT: the endpoint verifies our RFC 7523 assertion with the
// public key and finds iss = sub = client_id, aud = the endpoint, a jti,
// iat now and a short exp, and the kid configured.
func TestPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "client.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	ep := newEndpoint(t, activeAnswer(t, nil))
	c := newClient(t, testSpec(t, ep.srv.URL, func(s *Spec) {
		s.Method, s.ClientSecretFile, s.PrivateKeyFile, s.KeyID = PrivateKeyJWT, "", keyFile, "client-key-1"
	}))
	jtis := map[string]bool{}
	for _, tok := range []string{"opaque-1", "opaque-2"} {
		if _, err := lookup(t, c, tok, now); err != nil {
			t.Fatal(err)
		}
		f := ep.form()
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Get("client_id") != "extauthz" || f.Get("token") != tok {
			t.Fatalf("form = %v", f)
		}
		if h := ep.last.Header.Get("Authorization"); h != "" {
			t.Errorf("Authorization %q sent beside the assertion", h)
		}
		header, claims := verifyES256(t, f.Get("client_assertion"), &key.PublicKey)
		if header["alg"] != "ES256" || header["kid"] != "client-key-1" || header["typ"] != "JWT" {
			t.Errorf("header = %v", header)
		}
		if claims["iss"] != "extauthz" || claims["sub"] != "extauthz" || claims["aud"] != ep.srv.URL {
			t.Errorf("iss, sub, aud = %v, %v, %v", claims["iss"], claims["sub"], claims["aud"])
		}
		if claims["iat"] != float64(now.Unix()) || claims["exp"] != float64(now.Unix()+60) {
			t.Errorf("iat, exp = %v, %v", claims["iat"], claims["exp"])
		}
		jti, _ := claims["jti"].(string)
		if len(jti) < 16 || jtis[jti] {
			t.Errorf("jti %q is short or repeated", jti)
		}
		jtis[jti] = true
	}
}

// verifyES256 checks a compact ES256 JWS with the standard library alone,
// as an endpoint would, and returns its header and claims.
func verifyES256(t *testing.T, jws string, pub *ecdsa.PublicKey) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature: %v, %d bytes", err, len(sig))
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the assertion's signature does not verify with the client's public key")
	}
	var header, claims map[string]any
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// TestTLSClientAuth: against a TLS endpoint that requires a client
// certificate, the client presents the configured one and names its
// client_id in the form; without a certificate the handshake fails.
func TestTLSClientAuth(t *testing.T) {
	certPEM, keyPEM, cert := selfSigned(t, "extauthz-client")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	var seen []*x509.Certificate
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.TLS.PeerCertificates
		r.ParseForm()
		if r.PostForm.Get("client_id") != "extauthz" || r.PostForm.Get("token") != "opaque-1" || r.Header.Get("Authorization") != "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		activeAnswer(t, nil)(w, r)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	certFile, keyFile := writeFile(t, "client.crt", certPEM), writeFile(t, "client.key", keyPEM)

	c := newClient(t, testSpec(t, srv.URL, func(s *Spec) {
		s.Method, s.ClientSecretFile, s.CertFile, s.KeyFile, s.CAFile = TLSClientAuth, "", certFile, keyFile, caFile
	}))
	if _, err := lookup(t, c, "opaque-1", now); err != nil {
		t.Fatalf("introspect over mTLS: %v", err)
	}
	if len(seen) != 1 || seen[0].Subject.CommonName != "extauthz-client" {
		t.Fatalf("endpoint saw client certificates %v", seen)
	}

	// The same endpoint, reached with a client secret instead: refused in
	// the handshake, a fault (503), not an inactive token.
	other := newClient(t, testSpec(t, srv.URL, func(s *Spec) { s.CAFile = caFile }))
	if _, err := lookup(t, other, "opaque-1", now); !isUnavailable(err) {
		t.Fatalf("without a client certificate: %v, want ErrUnavailable", err)
	}
}

func selfSigned(t *testing.T, cn string) (certPEM, keyPEM string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), cert
}
