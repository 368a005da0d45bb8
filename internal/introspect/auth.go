package introspect

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"os"
	"time"
)

// authenticator adds extauthz's client authentication to a request.
type authenticator interface {
	apply(req *http.Request, form url.Values, endpoint string, now time.Time) error
}

// basicAuth is client_secret_basic. RFC 6749 §2.3.1 form-encodes the id
// and the secret before they are joined and base64-encoded, so a secret
// with ':' or '%' in it survives.
type basicAuth string

func newBasicAuth(id, secret string) basicAuth {
	return basicAuth("Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
}

func (b basicAuth) apply(req *http.Request, _ url.Values, _ string, _ time.Time) error {
	req.Header.Set("Authorization", string(b))
	return nil
}

// formClientID is tls_client_auth: the certificate authenticates, and
// client_id names the client it is registered to (RFC 8705 §2).
type formClientID string

func (f formClientID) apply(_ *http.Request, form url.Values, _ string, _ time.Time) error {
	form.Set("client_id", string(f))
	return nil
}

// assertionAuth is private_key_jwt: a fresh RFC 7523 assertion per request.
type assertionAuth struct {
	clientID string
	signer   *signer
}

func (a *assertionAuth) apply(_ *http.Request, form url.Values, endpoint string, now time.Time) error {
	jwt, err := a.signer.assertion(a.clientID, endpoint, now)
	if err != nil {
		return err
	}
	form.Set("client_id", a.clientID)
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", jwt)
	return nil
}

// newAuth reads the files of spec's client authentication and returns it;
// a client certificate goes on tlsConf. What it reads is written to h, so
// a changed secret makes a new client.
func newAuth(spec Spec, tlsConf *tls.Config, h hash.Hash) (authenticator, error) {
	switch spec.Method {
	case ClientSecretBasic:
		if spec.PrivateKeyFile != "" || spec.CertFile != "" || spec.KeyFile != "" || spec.Algorithm != "" || spec.KeyID != "" {
			return nil, errors.New("client_secret_basic takes client_secret_file only")
		}
		secret, err := readSecret(spec.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("client.client_secret_file: %w", err)
		}
		h.Write([]byte(secret))
		return newBasicAuth(spec.ClientID, secret), nil
	case PrivateKeyJWT:
		if spec.ClientSecretFile != "" || spec.CertFile != "" || spec.KeyFile != "" {
			return nil, errors.New("private_key_jwt takes private_key_file, algorithm and key_id only")
		}
		pem, err := os.ReadFile(spec.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("client.private_key_file: %w", err)
		}
		s, err := newSigner(pem, spec.Algorithm, spec.KeyID)
		if err != nil {
			return nil, fmt.Errorf("client.private_key_file: %w", err)
		}
		h.Write(pem)
		return &assertionAuth{clientID: spec.ClientID, signer: s}, nil
	case TLSClientAuth:
		if spec.ClientSecretFile != "" || spec.PrivateKeyFile != "" || spec.Algorithm != "" || spec.KeyID != "" {
			return nil, errors.New("tls_client_auth takes cert_file and key_file only")
		}
		if spec.CertFile == "" || spec.KeyFile == "" {
			return nil, errors.New("tls_client_auth needs client.cert_file and client.key_file")
		}
		certPEM, err := os.ReadFile(spec.CertFile)
		if err != nil {
			return nil, fmt.Errorf("client.cert_file: %w", err)
		}
		keyPEM, err := os.ReadFile(spec.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client.key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
		h.Write(certPEM)
		h.Write(keyPEM)
		return formClientID(spec.ClientID), nil
	case "":
		return nil, fmt.Errorf("client.method is required: %s, %s or %s", ClientSecretBasic, PrivateKeyJWT, TLSClientAuth)
	default:
		return nil, fmt.Errorf("client.method %q is not one of %s, %s, %s", spec.Method, ClientSecretBasic, PrivateKeyJWT, TLSClientAuth)
	}

}
