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

// parsePEM reads PEM public keys and X.509 certificates. The error is for a
// file that is not whole PEM — no block in non-blank text, a block cut short
// (a file caught halfway through a write) — or that holds a private key:
// such a file is never used. A block that is whole but cannot verify (a weak
// or unsupported key, a certificate outside its validity, another block
// type) is returned in skipped, with its block number; the caller decides
// whether that is a load error. A blank file holds no keys.
//
// Certificates that sign another certificate in the file are its chain, not
// verification keys: only leaves contribute keys. The returned time is when
// the first of the file's valid certificates expires (zero without certificates).
func parsePEM(data []byte, now time.Time) (set *Set, expires time.Time, skipped []skippedKey, err error) {
	type cert struct {
		c     *x509.Certificate
		block int
	}
	var (
		ks    []*Key
		certs []cert
		n     int
	)
	skip := func(reason, format string, args ...any) {
		skipped = append(skipped, skippedKey{Index: n - 1, Block: n, Reason: reason, Detail: fmt.Sprintf(format, args...)})
	}
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
			return nil, time.Time{}, nil, fmt.Errorf("block %d: contains a private key (%s); give the public key or certificate only", n, b.Type)
		case b.Type == "PUBLIC KEY":
			pub, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				skip(skipMalformed, "%v", err)
				continue
			}
			if err := checkPublic(pub); err != nil {
				skip(reasonOf(err), "%v", err)
				continue
			}
			ks = append(ks, &Key{Public: pub})
		case b.Type == "RSA PUBLIC KEY":
			pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
			if err != nil {
				skip(skipMalformed, "%v", err)
				continue
			}
			if err := checkPublic(pub); err != nil {
				skip(reasonOf(err), "%v", err)
				continue
			}
			ks = append(ks, &Key{Public: (*rsa.PublicKey)(pub)})
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			switch {
			case err != nil:
				skip(skipMalformed, "%v", err)
			case now.After(c.NotAfter):
				skip(skipValidity, "certificate %q expired at %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
			case now.Before(c.NotBefore):
				skip(skipValidity, "certificate %q is not valid before %s", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
			default:
				certs = append(certs, cert{c, n})
			}
		default:
			skip(skipKeyType, "unsupported PEM block %q", b.Type)
		}
	}
	if n == 0 {
		switch {
		case len(bytes.TrimSpace(data)) == 0:
			return NewSet(nil), time.Time{}, nil, nil
		case bytes.Contains(data, []byte("-----BEGIN")):
			return nil, time.Time{}, nil, errors.New("block 1: malformed PEM block")
		}
		return nil, time.Time{}, nil, errors.New("no PEM blocks found")
	}
	if len(bytes.TrimSpace(rest)) > 0 && bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, time.Time{}, nil, fmt.Errorf("block %d: malformed PEM block", n+1)
	}
	all := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		all[i] = c.c
		if expires.IsZero() || c.c.NotAfter.Before(expires) {
			expires = c.c.NotAfter
		}
	}
	for _, c := range certs {
		if signsAnother(c.c, all) {
			continue
		}
		if err := checkPublic(c.c.PublicKey); err != nil {
			skipped = append(skipped, skippedKey{Index: c.block - 1, Block: c.block, Reason: reasonOf(err),
				Detail: fmt.Sprintf("certificate %q: %v", c.c.Subject, err)})
			continue
		}
		ks = append(ks, &Key{Public: c.c.PublicKey})
	}
	return NewSet(ks), expires, skipped, nil
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
