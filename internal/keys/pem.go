package keys

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// parsePEM reads PEM public keys and X.509 certificates. Unlike a JWKS, a PEM
// file is written by the operator for us, so every block must be usable: a
// block we would skip is a mistake to report, not noise to tolerate.
//
// Certificates that sign another certificate in the file are its chain, not
// verification keys: only leaves contribute keys. The returned time is when
// the first of the file's certificates expires (zero without certificates).
func parsePEM(data []byte, now time.Time) (*Set, time.Time, error) {
	var (
		ks      []*Key
		certs   []*x509.Certificate
		expires time.Time
		n       int
	)
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, time.Time{}, fmt.Errorf("block %d: contains a private key (%s); give the public key or certificate only", n, b.Type)
		case b.Type == "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("block %d: %w", n, err)
			}
			if err := checkPublic(pub); err != nil {
				return nil, time.Time{}, fmt.Errorf("block %d: %w", n, err)
			}
			ks = append(ks, &Key{Public: pub})
		case b.Type == "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("block %d: %w", n, err)
			}
			if err := checkPublic(pub); err != nil {
				return nil, time.Time{}, fmt.Errorf("block %d: %w", n, err)
			}
			ks = append(ks, &Key{Public: (*rsa.PublicKey)(pub)})
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("block %d: %w", n, err)
			}
			if now.After(c.NotAfter) {
				return nil, time.Time{}, fmt.Errorf("block %d: certificate %q expired at %s", n, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
			}
			if now.Before(c.NotBefore) {
				return nil, time.Time{}, fmt.Errorf("block %d: certificate %q is not valid before %s", n, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
			}
			if expires.IsZero() || c.NotAfter.Before(expires) {
				expires = c.NotAfter
			}
			certs = append(certs, c)
		default:
			return nil, time.Time{}, fmt.Errorf("block %d: unsupported PEM block %q", n, b.Type)
		}
	}
	if n == 0 {
		return nil, time.Time{}, errors.New("no PEM blocks found")
	}
	if len(bytes.TrimSpace(rest)) > 0 && bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, time.Time{}, fmt.Errorf("block %d: malformed PEM block", n+1)
	}
	for _, c := range certs {
		if signsAnother(c, certs) {
			continue
		}
		if err := checkPublic(c.PublicKey); err != nil {
			return nil, time.Time{}, fmt.Errorf("certificate %q: %w", c.Subject, err)
		}
		ks = append(ks, &Key{Public: c.PublicKey})
	}
	return NewSet(ks), expires, nil
}

// signsAnother reports whether c is the issuer of another certificate in
// certs, i.e. an intermediate or root of a chain rather than a leaf.
func signsAnother(c *x509.Certificate, certs []*x509.Certificate) bool {
	for _, o := range certs {
		if o == c {
			continue
		}
		if bytes.Equal(o.RawIssuer, c.RawSubject) && o.CheckSignatureFrom(c) == nil {
			return true
		}
	}
	return false
}
