package check

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/envoytest"
)

// peerFuzzEncode percent-encodes a PEM text the way Envoy forwards
// source.certificate: every character of PEM that is not unreserved.
var peerFuzzEncode = envoytest.Encode

func peerFuzzPEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// peerFuzzCert is a self-signed P-256 certificate with an X.509-SVID's URI
// SAN, and its key's PKCS #8 DER.
func peerFuzzCert(f *testing.F) (cert, key []byte) {
	f.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	id, err := url.Parse("spiffe://example.org/ns/apps/sa/worker")
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "worker"},
		NotBefore:    time.Unix(1_900_000_000, 0),
		NotAfter:     time.Unix(1_900_086_400, 0),
		URIs:         []*url.URL{id},
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		f.Fatal(err)
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	return cert, key
}

// FuzzParsePeerCertificate: whatever Envoy's source.certificate holds,
// parsePeerCertificate does not panic, returns a certificate or an error,
// and a certificate it returns survives Envoy's encoding: its DER as PEM,
// percent-encoded, parses back to the same DER.
func FuzzParsePeerCertificate(f *testing.F) {
	der, key := peerFuzzCert(f)
	certPEM := peerFuzzPEM("CERTIFICATE", der)
	enc := peerFuzzEncode(certPEM)
	for _, s := range []string{
		enc,
		certPEM, // not encoded at all
		strings.NewReplacer("\n", "%0A", " ", "%20").Replace(certPEM), // + / = left alone
		strings.ToLower(enc[:12]) + enc[12:],                          // lower-case hex
		enc + enc,                                                     // a chain: the leaf first
		"junk" + enc,
		enc[:40] + "%ZZ" + enc[40:],
		enc + "%",
		enc + "%0",
		strings.ReplaceAll(enc, "%0A", "%250A"), // encoded twice
		enc[:len(enc)/2],
		peerFuzzEncode(peerFuzzPEM("PRIVATE KEY", key)),
		peerFuzzEncode(peerFuzzPEM("PRIVATE KEY", key)) + enc,
		peerFuzzEncode(peerFuzzPEM("CERTIFICATE", key)),
		peerFuzzEncode(peerFuzzPEM("CERTIFICATE", append(der[:len(der):len(der)], 0))),
		peerFuzzEncode(peerFuzzPEM("CERTIFICATE", nil)),
		peerFuzzEncode(peerFuzzPEM("X509 CERTIFICATE", der)),
		"-----BEGIN CERTIFICATE-----%0A-----END CERTIFICATE-----%0A",
		"", "%", "garbage", "\x00",
		enc + strings.Repeat("A", maxPeerCertBytes),
		strings.Repeat("%41", maxPeerCertBytes/3+1),
	} {
		f.Add(s)
	}
	for _, s := range []string{enc, certPEM, enc + enc} {
		if c, err := parsePeerCertificate(s); err != nil || !bytes.Equal(c.Raw, der) {
			f.Fatalf("seed %.40q… refused: %v", s, err)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		cert, err := parsePeerCertificate(s)
		if (cert == nil) == (err == nil) {
			t.Fatalf("parsePeerCertificate = %v, %v: want exactly one of a certificate and an error", cert, err)
		}
		if err != nil {
			return
		}
		if len(s) > maxPeerCertBytes {
			t.Fatalf("accepted %d bytes, over the %d-byte bound", len(s), maxPeerCertBytes)
		}
		reenc := peerFuzzEncode(peerFuzzPEM("CERTIFICATE", cert.Raw))
		if len(reenc) > maxPeerCertBytes {
			// Envoy's encoding of a large certificate sent unencoded here
			// is over the bound: refused, as any over-long input is.
			return
		}
		again, err := parsePeerCertificate(reenc)
		if err != nil {
			t.Fatalf("the accepted certificate, re-encoded, does not parse: %v", err)
		}
		if !bytes.Equal(again.Raw, cert.Raw) {
			t.Fatalf("re-encoded certificate parses to other DER")
		}
	})
}
