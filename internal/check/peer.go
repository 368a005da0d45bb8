package check

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
)

// maxPeerCertBytes bounds the forwarded certificate read: real client
// certificates, SVIDs included, are a few KiB of PEM.
const maxPeerCertBytes = 32 << 10

// peerCertificate is the client certificate of the downstream connection,
// as Envoy forwards it with include_peer_certificate. Envoy validated the
// chain when the TLS handshake completed; we read what it vouches for.
type peerCertificate struct {
	cert *x509.Certificate
	// thumbprint is the base64url SHA-256 of the DER: what RFC 8705 §3.1's
	// cnf.x5t#S256 names.
	thumbprint string
	err        error
}

// parsePeerCertificate reads Envoy's source.certificate: the leaf in PEM,
// percent-encoded. Only the first PEM block counts, and it must be a
// CERTIFICATE that x509 parses.
func parsePeerCertificate(s string) (*x509.Certificate, error) {
	if len(s) > maxPeerCertBytes {
		return nil, fmt.Errorf("check: peer certificate of %d bytes exceeds %d", len(s), maxPeerCertBytes)
	}
	// Path unescaping, not query unescaping: a '+' that Envoy left alone is
	// base64, not a space.
	p, err := url.PathUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("check: peer certificate encoding: %w", err)
	}
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("check: peer certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("check: peer certificate: %w", err)
	}
	return cert, nil
}

// peerVar is CEL's peer: the mTLS identity Envoy reports, so a rule can
// require that the workload on the connection is the one the token names
// (spiffe_id in peer.uri_sans). A certificate that does not parse shows no
// SANs.
func (r *httpRequest) peerVar() map[string]any {
	uris, sum := []string{}, ""
	if pc := r.peerCertificate(); pc != nil && pc.err == nil {
		for _, u := range pc.cert.URIs {
			uris = append(uris, u.String())
		}
		sum = pc.thumbprint
	}
	return map[string]any{"principal": r.principal, "uri_sans": uris, "certificate_sha256": sum}
}

// peerCertificate parses the forwarded certificate once per request; nil
// when there is none, and a value with err set when it does not parse.
func (r *httpRequest) peerCertificate() *peerCertificate {
	if r.peer == nil && r.peerCert != "" {
		r.peer = &peerCertificate{}
		if r.peer.cert, r.peer.err = parsePeerCertificate(r.peerCert); r.peer.err == nil {
			sum := sha256.Sum256(r.peer.cert.Raw)
			r.peer.thumbprint = base64.RawURLEncoding.EncodeToString(sum[:])
		}
	}
	return r.peer
}
