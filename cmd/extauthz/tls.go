package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// grpcTLS holds the flags of the gRPC listener's transport security: TLS
// from certificate files (mTLS with --grpc-client-ca), or mTLS with the
// X.509-SVID and trust bundles of a SPIFFE Workload API. Neither: plaintext.
type grpcTLS struct {
	certFile, keyFile, clientCAFile string
	reloadInterval                  time.Duration
	spiffeSocket                    string
	spiffeIDs                       stringList
	spiffeTrustDomains              stringList
	// spiffeWait bounds how long start-up waits for the first X.509-SVID.
	spiffeWait time.Duration
}

// defaultSPIFFEWait is how long serve waits for the Workload API's first
// X.509-SVID: an agent attests a new pod within seconds once it has a
// registration entry, and never without one.
const defaultSPIFFEWait = time.Minute

func (c *grpcTLS) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.certFile, "grpc-tls-cert", "", "PEM certificate chain the gRPC listener serves TLS with (with --grpc-tls-key)")
	fs.StringVar(&c.keyFile, "grpc-tls-key", "", "PEM private key of --grpc-tls-cert")
	fs.StringVar(&c.clientCAFile, "grpc-client-ca", "", "PEM CA certificates: require and verify a client certificate issued by one of them (mTLS)")
	fs.DurationVar(&c.reloadInterval, "grpc-tls-reload-interval", time.Minute, "how often the TLS files are re-read (SIGHUP re-reads at once); a changed set that fails to load keeps the old one")
	fs.StringVar(&c.spiffeSocket, "grpc-spiffe-socket", "", "SPIFFE Workload API address (unix:///path or tcp://host:port): serve mTLS with this workload's X.509-SVID and verify clients' X.509-SVIDs")
	fs.Var(&c.spiffeIDs, "grpc-spiffe-authorized-id", "with --grpc-spiffe-socket: a SPIFFE ID that may call (repeatable)")
	fs.Var(&c.spiffeTrustDomains, "grpc-spiffe-trust-domain", "with --grpc-spiffe-socket: every SPIFFE ID of this trust domain may call (repeatable)")
	c.spiffeWait = defaultSPIFFEWait
}

// mode says what the listener serves: plaintext, tls, mtls or spiffe.
func (c *grpcTLS) mode() string {
	switch {
	case c.spiffeSocket != "":
		return "spiffe"
	case c.clientCAFile != "":
		return "mtls"
	case c.certFile != "":
		return "tls"
	}
	return "plaintext"
}

// check rejects flag combinations that do not say one thing.
func (c *grpcTLS) check() error {
	files := c.certFile != "" || c.keyFile != "" || c.clientCAFile != ""
	switch {
	case files && c.spiffeSocket != "":
		return errors.New("--grpc-spiffe-socket and --grpc-tls-cert, --grpc-tls-key, --grpc-client-ca exclude each other: the SVID is the server certificate and the trust bundle the client CA")
	case (c.certFile == "") != (c.keyFile == ""):
		return errors.New("--grpc-tls-cert and --grpc-tls-key go together")
	case c.clientCAFile != "" && c.certFile == "":
		return errors.New("--grpc-client-ca needs --grpc-tls-cert and --grpc-tls-key: client certificates are only asked for over TLS")
	case c.spiffeSocket == "" && len(c.spiffeIDs)+len(c.spiffeTrustDomains) > 0:
		return errors.New("--grpc-spiffe-authorized-id and --grpc-spiffe-trust-domain need --grpc-spiffe-socket")
	case c.spiffeSocket != "" && len(c.spiffeIDs)+len(c.spiffeTrustDomains) == 0:
		return errors.New("--grpc-spiffe-socket needs --grpc-spiffe-authorized-id or --grpc-spiffe-trust-domain: which clients may call")
	case c.spiffeSocket != "" && !strings.HasPrefix(c.spiffeSocket, "unix://") && !strings.HasPrefix(c.spiffeSocket, "tcp://"):
		return fmt.Errorf("--grpc-spiffe-socket %q: want unix:///path or tcp://host:port", c.spiffeSocket)
	case files && c.reloadInterval <= 0:
		return fmt.Errorf("--grpc-tls-reload-interval must be positive, got %s", c.reloadInterval)
	}
	_, err := c.authorizer()
	return err
}

// authorizer admits a client X.509-SVID whose ID is one of
// --grpc-spiffe-authorized-id or in one of --grpc-spiffe-trust-domain.
func (c *grpcTLS) authorizer() (tlsconfig.Authorizer, error) {
	var ids []spiffeid.ID
	var tds []spiffeid.TrustDomain
	for _, s := range c.spiffeIDs {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return nil, fmt.Errorf("--grpc-spiffe-authorized-id %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	for _, s := range c.spiffeTrustDomains {
		td, err := spiffeid.TrustDomainFromString(s)
		if err != nil {
			return nil, fmt.Errorf("--grpc-spiffe-trust-domain %q: %w", s, err)
		}
		tds = append(tds, td)
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if slices.Contains(ids, id) || slices.ContainsFunc(tds, id.MemberOf) {
			return nil
		}
		return fmt.Errorf("extauthz: grpc tls: client %s is not authorized (--grpc-spiffe-authorized-id, --grpc-spiffe-trust-domain)", id)
	}, nil
}

// listenerTLS is the gRPC listener's transport security once set up.
type listenerTLS struct {
	mode   string
	creds  credentials.TransportCredentials // nil: plaintext
	files  *certFiles                       // file mode
	source *workloadapi.X509Source          // SPIFFE mode
}

// openGRPCTLS loads the certificate files, or connects to the Workload API
// and waits for the first X.509-SVID, and registers the TLS metrics.
func openGRPCTLS(ctx context.Context, c grpcTLS, log *slog.Logger, reg prometheus.Registerer) (*listenerTLS, error) {
	l := &listenerTLS{mode: c.mode()}
	var leaf func() *x509.Certificate
	switch l.mode {
	case "plaintext":
		return l, nil
	case "spiffe":
		auth, err := c.authorizer()
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, c.spiffeWait)
		defer cancel()
		src, err := workloadapi.NewX509Source(wctx, workloadapi.WithClientOptions(workloadapi.WithAddr(c.spiffeSocket)))
		if err != nil {
			return nil, fmt.Errorf("extauthz: grpc tls: no X.509-SVID from the Workload API at %s within %s (does this workload have a registration entry?): %w", c.spiffeSocket, c.spiffeWait, err)
		}
		l.source = src
		l.creds = credentials.NewTLS(tlsconfig.MTLSServerConfig(src, src, auth))
		leaf = func() *x509.Certificate {
			svid, err := src.GetX509SVID()
			if err != nil || len(svid.Certificates) == 0 {
				return nil
			}
			return svid.Certificates[0]
		}
		if svid, err := src.GetX509SVID(); err == nil {
			log.Info("grpc tls: serving mTLS with the X.509-SVID of the Workload API", "spiffe_id", svid.ID.String(),
				"not_after", svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339),
				"authorized_ids", []string(c.spiffeIDs), "authorized_trust_domains", []string(c.spiffeTrustDomains))
		}
	default:
		f := &certFiles{cert: c.certFile, key: c.keyFile, clientCA: c.clientCAFile, log: log}
		if _, err := f.load(); err != nil {
			return nil, err
		}
		f.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_grpc_tls_reload_total",
			Help: "Re-reads of the gRPC listener's TLS files that found a change, by result (a failure keeps the old certificate).",
		}, []string{"result"})
		reg.MustRegister(f.reloads)
		l.files = f
		l.creds = credentials.NewTLS(f.tlsConfig())
		leaf = func() *x509.Certificate { return f.state.Load().leaf }
		st := f.state.Load()
		log.Info("grpc tls: serving "+l.mode, "cert", c.certFile, "subject", st.leaf.Subject.String(),
			"not_after", st.leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca", c.clientCAFile)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "extauthz_grpc_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate the gRPC listener serves expires (Unix time).",
	}, func() float64 {
		if c := leaf(); c != nil {
			return float64(c.NotAfter.Unix())
		}
		return 0
	}))
	return l, nil
}

// serverOptions are the grpc.Server options of the listener's security.
func (l *listenerTLS) serverOptions() []grpc.ServerOption {
	if l.creds == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(l.creds)}
}

// run re-reads the TLS files every interval and on each trigger until ctx
// ends. The Workload API pushes SVID rotations by itself.
func (l *listenerTLS) run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) {
	if l.files == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-trigger:
		}
		l.files.reload()
	}
}

// Close ends the Workload API connection.
func (l *listenerTLS) Close() error {
	if l.source != nil {
		return l.source.Close()
	}
	return nil
}

// certFiles serves the certificate, key and client CAs of files, and swaps
// in a new set when they change and load.
type certFiles struct {
	cert, key, clientCA string
	log                 *slog.Logger
	reloads             *prometheus.CounterVec
	state               atomic.Pointer[certState]
	// failed is the digest of the last set that failed to load, reported
	// once rather than at every interval.
	failed [sha256.Size]byte
}

// certState is one loaded set of files.
type certState struct {
	sum    [sha256.Size]byte
	config *tls.Config
	leaf   *x509.Certificate
}

// tlsConfig answers each handshake with the current set, so a reload
// applies to new connections without a restart; open connections keep
// what they negotiated.
func (f *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.state.Load().config, nil
		},
	}
}

// load reads the files and, when they differ from the current set and
// from the last set that failed, publishes them. It reports whether it did.
func (f *certFiles) load() (bool, error) {
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		return false, fmt.Errorf("extauthz: grpc tls: %w", err)
	}
	keyPEM, err := os.ReadFile(f.key)
	if err != nil {
		return false, fmt.Errorf("extauthz: grpc tls: %w", err)
	}
	var caPEM []byte
	if f.clientCA != "" {
		if caPEM, err = os.ReadFile(f.clientCA); err != nil {
			return false, fmt.Errorf("extauthz: grpc tls: %w", err)
		}
	}
	sum := sha256.Sum256(bytes.Join([][]byte{certPEM, keyPEM, caPEM}, []byte{0}))
	if cur := f.state.Load(); (cur != nil && cur.sum == sum) || sum == f.failed {
		return false, nil
	}
	cfg, leaf, err := f.parse(certPEM, keyPEM, caPEM)
	if err != nil {
		f.failed = sum
		return false, err
	}
	f.state.Store(&certState{sum: sum, config: cfg, leaf: leaf})
	return true, nil
}

func (f *certFiles) parse(certPEM, keyPEM, caPEM []byte) (*tls.Config, *x509.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("extauthz: grpc tls: %s, %s: %w", f.cert, f.key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
		NextProtos:   []string{"h2"},
	}
	if f.clientCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, nil, fmt.Errorf("extauthz: grpc tls: %s: no PEM CERTIFICATE", f.clientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, pair.Leaf, nil
}

// reload loads the files; a set that fails to load is logged and counted,
// and the current one keeps serving.
func (f *certFiles) reload() {
	changed, err := f.load()
	switch {
	case err != nil:
		f.reloads.WithLabelValues("failure").Inc()
		f.log.Error("grpc tls: reload failed; serving the previous certificate", "error", err)
	case changed:
		f.reloads.WithLabelValues("success").Inc()
		leaf := f.state.Load().leaf
		f.log.Info("grpc tls: reloaded", "cert", f.cert, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}
