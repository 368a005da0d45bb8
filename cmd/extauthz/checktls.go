package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// dialTLS holds check's flags for reaching a server whose gRPC listener
// serves TLS (serve --grpc-tls-cert) or mTLS (--grpc-client-ca). None of
// them: plaintext. There is deliberately no way to skip verification.
type dialTLS struct {
	on                bool
	caFile            string
	certFile, keyFile string
	serverName        string
	// certAsked records that a server asked for a client certificate
	// during a handshake, which says why a connection without one ended.
	certAsked atomic.Bool
}

func (d *dialTLS) flags(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "tls", false, "with --addr: connect over TLS, verifying the server against the system's roots")
	fs.StringVar(&d.caFile, "tls-ca", "", "with --addr: verify the server against the PEM CA certificates of `FILE` instead of the system's roots (implies --tls)")
	fs.StringVar(&d.certFile, "tls-cert", "", "with --addr: present the PEM client certificate chain of `FILE` (mTLS; with --tls-key; implies --tls)")
	fs.StringVar(&d.keyFile, "tls-key", "", "with --addr: PEM private key `FILE` of --tls-cert")
	fs.StringVar(&d.serverName, "tls-server-name", "", "with --addr: the `NAME` sent as SNI and that the server's certificate must hold (default: the host of --addr, localhost for unix://; implies --tls)")
}

// enabled reports whether check connects over TLS: --tls, or any flag
// that only means something over TLS.
func (d *dialTLS) enabled() bool {
	return d.on || d.caFile != "" || d.certFile != "" || d.keyFile != "" || d.serverName != ""
}

// check rejects flag combinations that do not say one thing.
func (d *dialTLS) check(addr string) error {
	switch {
	case d.enabled() && addr == "":
		return errors.New("--tls, --tls-ca, --tls-cert, --tls-key and --tls-server-name go with --addr: offline (--policy) nothing is dialled")
	case (d.certFile == "") != (d.keyFile == ""):
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// credentials are the transport credentials of the flags: plaintext, or
// TLS 1.2 or later with the roots, client certificate and name they give.
// A file that cannot be read or parsed is an error naming the flag.
func (d *dialTLS) credentials() (credentials.TransportCredentials, error) {
	if !d.enabled() {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: d.serverName}
	if d.caFile != "" {
		pem, err := os.ReadFile(d.caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM CERTIFICATE", d.caFile)
		}
		cfg.RootCAs = pool
	}
	cert := &tls.Certificate{} // none: an empty Certificate message
	if d.certFile != "" {
		pair, err := tls.LoadX509KeyPair(d.certFile, d.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", d.certFile, d.keyFile, err)
		}
		cert = &pair
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		d.certAsked.Store(true)
		return cert, nil
	}
	return credentials.NewTLS(cfg), nil
}

// explain adds to a failed Check what the TLS flags may have to do with
// it. gRPC reports a failed connection as Unavailable with the error's
// text (the crypto/tls and x509 types do not survive), so the text is
// what is read.
func (d *dialTLS) explain(err error) error {
	if status.Code(err) != codes.Unavailable {
		return err
	}
	msg := err.Error()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	// How a connection the other end gave up on reads.
	closed := []string{"server preface", "EOF", "broken pipe", "connection reset"}
	var hint string
	switch {
	case has("connection refused", "no such file or directory", "no such host"):
		// Nobody listens there; TLS is not the question.
	case !d.enabled() && has(closed...):
		// A TLS listener drops a plaintext client's HTTP/2 preface
		// without a word: the connection ends before the server's.
		hint = "is the listener TLS (serve --grpc-tls-cert)? then give --tls, or --tls-ca FILE for a private CA, and --tls-cert/--tls-key for mTLS"
	case has("first record does not look like a TLS handshake"):
		hint = "the listener speaks plaintext: drop --tls, --tls-ca, --tls-cert, --tls-key and --tls-server-name"
	case has("certificate signed by unknown authority", "failed to load system roots"):
		hint = "the server's certificate is not issued by a CA this client trusts: give --tls-ca FILE with the CA that issued it"
	case has("x509: certificate is valid for", "x509: certificate is not valid for any names", "doesn't contain any IP SANs"):
		hint = "the server's certificate does not hold the name dialled: give --tls-server-name NAME with a name it holds"
	case d.certAsked.Load() && d.certFile == "":
		// Under TLS 1.3 the server refuses the missing certificate after
		// the client's handshake is done, so the error is only a closed
		// connection; the server's request for one is the tell.
		hint = "the listener asks for a client certificate (mTLS, serve --grpc-client-ca): give --tls-cert and --tls-key"
	case d.certFile != "" && (d.certAsked.Load() && has(closed...) || has("unknown certificate authority", "bad certificate", "certificate required")):
		hint = "the server did not accept the client certificate of --tls-cert: is it issued by a CA of the server's --grpc-client-ca?"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w\n(%s)", err, hint)
}
