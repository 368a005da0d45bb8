package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/logtest"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf is an end-entity certificate and its key.
type leaf struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a leaf for name: a DNS name, or a SPIFFE ID (URI SAN).
func (ca *testCA) issue(t *testing.T, name string) leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if u, err := url.Parse(name); err == nil && u.Scheme == "spiffe" {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.Subject = pkix.Name{CommonName: name}
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf{cert: cert, key: key}
}

func (l leaf) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.cert.Raw})
}

func (l leaf) keyPEM(t *testing.T) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(l.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (l leaf) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.cert.Raw}, PrivateKey: l.key, Leaf: l.cert}
}

// writeTLSFiles writes the server's certificate and key, and the client
// CA when there is one, to dir; it returns the flags that name them.
func writeTLSFiles(t *testing.T, dir string, server leaf, clientCA *testCA) grpcTLS {
	t.Helper()
	c := grpcTLS{certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"), reloadInterval: time.Hour}
	writeAtomically(t, c.certFile, server.certPEM())
	writeAtomically(t, c.keyFile, server.keyPEM(t))
	if clientCA != nil {
		c.clientCAFile = filepath.Join(dir, "ca.crt")
		writeAtomically(t, c.clientCAFile, clientCA.pem())
	}
	return c
}

// writeAtomically replaces a file as Kubernetes updates a Secret volume:
// a new file renamed over the old one.
func writeAtomically(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// tlsServer is a gRPC server with the listener security of a grpcTLS on
// 127.0.0.1:0, serving the health service.
type tlsServer struct {
	addr string
	tls  *listenerTLS
	reg  *prometheus.Registry
}

func startTLSServer(t *testing.T, c grpcTLS) *tlsServer {
	t.Helper()
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	lt, err := openGRPCTLS(t.Context(), c, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lt.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(lt.serverOptions()...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return &tlsServer{addr: lis.Addr().String(), tls: lt, reg: reg}
}

// call makes a new connection with creds and asks the health service;
// the error is the connection's (a refused handshake is Unavailable).
func call(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v", resp.GetStatus())
	}
	return err
}

func wantRefused(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: the server accepted the connection", what)
	} else if status.Code(err) != codes.Unavailable {
		t.Errorf("%s: %v, want the handshake refused (Unavailable)", what, err)
	}
}

const serverName = "extauthz.extauthz.svc.cluster.local"

func clientTLS(roots *x509.CertPool, certs ...tls.Certificate) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: serverName, Certificates: certs})
}

func TestGRPCTLSAcceptsClient(t *testing.T) {
	ca := newTestCA(t, "server CA")
	s := startTLSServer(t, writeTLSFiles(t, t.TempDir(), ca.issue(t, serverName), nil))
	if s.tls.mode != "tls" {
		t.Errorf("mode %s, want tls", s.tls.mode)
	}
	if err := call(t, s.addr, clientTLS(ca.pool())); err != nil {
		t.Fatalf("a TLS client that trusts the CA: %v", err)
	}
	// A client certificate is not asked for, so one of any CA is fine.
	if err := call(t, s.addr, clientTLS(ca.pool(), newTestCA(t, "other").issue(t, "client").tlsCert())); err != nil {
		t.Errorf("a client with a certificate nobody asked for: %v", err)
	}
	wantRefused(t, call(t, s.addr, clientTLS(newTestCA(t, "other").pool())), "a client that does not trust the server's CA")
	wantRefused(t, call(t, s.addr, insecure.NewCredentials()), "a plaintext client")
	exp := metricValue(t, s.reg, "extauthz_grpc_tls_certificate_expiry_timestamp_seconds", "")
	if want := float64(ca.issue(t, serverName).cert.NotAfter.Unix()); exp < want-60 || exp > want+60 {
		t.Errorf("certificate expiry metric %v, want about %v", exp, want)
	}
}

func TestGRPCMTLSRefusesClients(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	s := startTLSServer(t, writeTLSFiles(t, t.TempDir(), serverCA.issue(t, serverName), clientCA))
	if s.tls.mode != "mtls" {
		t.Errorf("mode %s, want mtls", s.tls.mode)
	}
	if err := call(t, s.addr, clientTLS(serverCA.pool(), clientCA.issue(t, "envoy").tlsCert())); err != nil {
		t.Fatalf("a client with a certificate of the client CA: %v", err)
	}
	wantRefused(t, call(t, s.addr, clientTLS(serverCA.pool())), "a client without a certificate")
	wantRefused(t, call(t, s.addr, clientTLS(serverCA.pool(), otherCA.issue(t, "envoy").tlsCert())), "a client with a certificate of another CA")
	// The server's own CA is not the client CA.
	wantRefused(t, call(t, s.addr, clientTLS(serverCA.pool(), serverCA.issue(t, "envoy").tlsCert())), "a client with a certificate of the server's CA")
}

// TestGRPCTLSReload replaces the files under a running listener: new
// connections get the new certificate and client CA; a set that does not
// load is counted once and the old one keeps serving.
func TestGRPCTLSReload(t *testing.T) {
	ca1, ca2 := newTestCA(t, "CA 1"), newTestCA(t, "CA 2")
	dir := t.TempDir()
	c := writeTLSFiles(t, dir, ca1.issue(t, serverName), ca1)
	s := startTLSServer(t, c)
	trigger := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.tls.run(ctx, time.Hour, trigger); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	reload := func() {
		trigger <- struct{}{}
		trigger <- struct{}{} // the first reload has finished once the second is taken
	}
	old := clientTLS(ca1.pool(), ca1.issue(t, "envoy").tlsCert())
	if err := call(t, s.addr, old); err != nil {
		t.Fatal(err)
	}

	writeTLSFiles(t, dir, ca2.issue(t, serverName), ca2)
	reload()
	if err := call(t, s.addr, clientTLS(ca2.pool(), ca2.issue(t, "envoy").tlsCert())); err != nil {
		t.Fatalf("after the reload, a client of the new CAs: %v", err)
	}
	wantRefused(t, call(t, s.addr, old), "after the reload, a client of the old CAs")
	reloads := func(result string) float64 { return metricValue(t, s.reg, "extauthz_grpc_tls_reload_total", result) }
	if n := reloads("success"); n != 1 {
		t.Errorf("reload_total{success} = %v, want 1", n)
	}

	writeAtomically(t, c.keyFile, []byte("not a key"))
	reload()
	reload() // the same broken set again: not another failure
	if err := call(t, s.addr, clientTLS(ca2.pool(), ca2.issue(t, "envoy").tlsCert())); err != nil {
		t.Errorf("a broken key file must keep the loaded certificate: %v", err)
	}
	if n := reloads("failure"); n != 1 {
		t.Errorf("reload_total{failure} = %v, want 1", n)
	}
	if n := reloads("success"); n != 1 {
		t.Errorf("reload_total{success} = %v after a failure, want 1", n)
	}
}

// metricValue gathers reg and returns the value of the metric name whose
// labels include labelValue (any, when empty); 0 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := labelValue == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == labelValue
			}
			if match {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestGRPCTLSFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--grpc-tls-cert", "c.pem"}, "go together"},
		{[]string{"--grpc-tls-key", "k.pem"}, "go together"},
		{[]string{"--grpc-client-ca", "ca.pem"}, "--grpc-client-ca needs --grpc-tls-cert"},
		{[]string{"--grpc-tls-cert", "c.pem", "--grpc-tls-key", "k.pem", "--grpc-spiffe-socket", "unix:///s"}, "exclude each other"},
		{[]string{"--grpc-spiffe-socket", "unix:///s"}, "needs --grpc-spiffe-authorized-id or --grpc-spiffe-trust-domain"},
		{[]string{"--grpc-spiffe-authorized-id", "spiffe://example.org/envoy"}, "need --grpc-spiffe-socket"},
		{[]string{"--grpc-spiffe-socket", "/run/agent.sock", "--grpc-spiffe-trust-domain", "example.org"}, "want unix:///path"},
		{[]string{"--grpc-spiffe-socket", "unix:///s", "--grpc-spiffe-authorized-id", "https://example.org/envoy"}, `--grpc-spiffe-authorized-id "https://example.org/envoy"`},
		{[]string{"--grpc-spiffe-socket", "unix:///s", "--grpc-spiffe-trust-domain", "Example.org"}, `--grpc-spiffe-trust-domain "Example.org"`},
		{[]string{"--grpc-tls-cert", "c.pem", "--grpc-tls-key", "k.pem", "--grpc-tls-reload-interval", "0s"}, "must be positive"},
	} {
		var cfg serveConfig
		fs := newFlagSet("serve", io.Discard)
		cfg.flags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := cfg.grpcTLS.check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
	}
	// Through serve: a usage error, exit 2, before anything starts.
	var stderr bytes.Buffer
	if code := serve(t.Context(), []string{"--policy", "x.yaml", "--grpc-client-ca", "ca.pem"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--grpc-client-ca needs") {
		t.Errorf("serve: exit %d, %q; want 2 and the flag error", code, stderr.String())
	}
}

// fakeWorkloadAPI serves one X.509-SVID and its trust bundle on a unix
// socket, as a SPIRE agent does for a registered workload.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

func (f *fakeWorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	if err := stream.Send(f.resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// startWorkloadAPI serves svid, issued by ca, for the trust domain of its
// ID, and returns the socket address.
func startWorkloadAPI(t *testing.T, ca *testCA, svid leaf) string {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir can exceed it.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "agent.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(svid.key)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(gs, &fakeWorkloadAPI{resp: &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId:    svid.cert.URIs[0].String(),
		X509Svid:    svid.cert.Raw,
		X509SvidKey: key,
		Bundle:      ca.cert.Raw,
	}}}})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return "unix://" + path
}

// spiffeClient is a client that presents svid (none when zero) and
// accepts the server's SVID only for serverID, from ca's trust domain.
func spiffeClient(t *testing.T, ca *testCA, td spiffeid.TrustDomain, serverID spiffeid.ID, svid leaf) credentials.TransportCredentials {
	t.Helper()
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{ca.cert})
	if svid.cert == nil {
		return credentials.NewTLS(tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(serverID)))
	}
	key, err := x509.MarshalPKCS8PrivateKey(svid.key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := x509svid.ParseRaw(svid.cert.Raw, key)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(tlsconfig.MTLSClientConfig(s, bundle, tlsconfig.AuthorizeID(serverID)))
}

// TestGRPCSPIFFE serves mTLS with the X.509-SVID of a (fake) Workload API
// and checks which clients' SVIDs are let in.
func TestGRPCSPIFFE(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	serverID := spiffeid.RequireFromPath(td, "/ns/extauthz/sa/extauthz")
	ca, otherCA := newTestCA(t, "example.org"), newTestCA(t, "example.org, forged")
	socket := startWorkloadAPI(t, ca, ca.issue(t, serverID.String()))
	envoy := ca.issue(t, "spiffe://example.org/ns/istio-system/sa/istio-ingressgateway")
	other := ca.issue(t, "spiffe://example.org/ns/apps/sa/reports")

	byID := startTLSServer(t, grpcTLS{spiffeSocket: socket, spiffeIDs: stringList{envoy.cert.URIs[0].String()}, spiffeWait: 10 * time.Second})
	if byID.tls.mode != "spiffe" {
		t.Errorf("mode %s, want spiffe", byID.tls.mode)
	}
	if err := call(t, byID.addr, spiffeClient(t, ca, td, serverID, envoy)); err != nil {
		t.Fatalf("the authorized SVID: %v", err)
	}
	wantRefused(t, call(t, byID.addr, spiffeClient(t, ca, td, serverID, other)), "an SVID of the trust domain that is not authorized")
	wantRefused(t, call(t, byID.addr, spiffeClient(t, ca, td, serverID, leaf{})), "a client without an SVID")
	wantRefused(t, call(t, byID.addr, spiffeClient(t, ca, td, serverID, otherCA.issue(t, envoy.cert.URIs[0].String()))), "the authorized ID, signed by another CA")
	// The client checks the server's SVID too: a client expecting another
	// server ID gives up.
	if err := call(t, byID.addr, spiffeClient(t, ca, td, spiffeid.RequireFromPath(td, "/other"), envoy)); err == nil {
		t.Error("a client that expects another server ID connected")
	}

	byTD := startTLSServer(t, grpcTLS{spiffeSocket: socket, spiffeTrustDomains: stringList{"example.org"}, spiffeWait: 10 * time.Second})
	for _, c := range []leaf{envoy, other} {
		if err := call(t, byTD.addr, spiffeClient(t, ca, td, serverID, c)); err != nil {
			t.Errorf("trust-domain-wide, %s: %v", c.cert.URIs[0], err)
		}
	}
	wantRefused(t, call(t, byTD.addr, spiffeClient(t, ca, td, serverID, ca.issue(t, "spiffe://other.org/envoy"))), "an SVID of another trust domain")
}

func TestGRPCSPIFFENoSVID(t *testing.T) {
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c := grpcTLS{spiffeSocket: "unix://" + filepath.Join(dir, "none.sock"), spiffeTrustDomains: stringList{"example.org"}, spiffeWait: 300 * time.Millisecond}
	_, err = openGRPCTLS(t.Context(), c, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "no X.509-SVID from the Workload API") || !strings.Contains(err.Error(), "registration entry") {
		t.Errorf("err = %v, want no X.509-SVID ... registration entry", err)
	}
}

// TestServeGRPCMTLS runs serve with the mTLS flags: Checks over mTLS are
// answered, a client without a certificate is refused, and SIGHUP swaps
// in renewed files.
func TestServeGRPCMTLS(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
	dir := t.TempDir()
	c := writeTLSFiles(t, dir, serverCA.issue(t, serverName), clientCA)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("version: v1\ndefault_action: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var logs logtest.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- serve(ctx, []string{"--policy", policy, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--grpc-tls-cert", c.certFile, "--grpc-tls-key", c.keyFile, "--grpc-client-ca", c.clientCAFile,
			"--grpc-tls-reload-interval", "1h"}, io.Discard, &logs)
	}()
	defer func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, logs.String())
		}
	}()
	serving := logs.WaitJSON(t, "serving")
	addr, _ := serving["grpc_addr"].(string)
	if serving["grpc_tls"] != "mtls" {
		t.Errorf("serving line: grpc_tls %v, want mtls", serving["grpc_tls"])
	}

	envoy := clientTLS(serverCA.pool(), clientCA.issue(t, "envoy").tlsCert())
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(envoy))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
	if err != nil {
		t.Fatalf("Check over mTLS: %v", err)
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		t.Errorf("Check allowed under default_action: deny")
	}
	wantRefused(t, call(t, addr, clientTLS(serverCA.pool())), "serve: a client without a certificate")

	// Renewed files from new CAs, then SIGHUP (the poll is an hour away).
	renewedCA := newTestCA(t, "renewed CA")
	writeTLSFiles(t, dir, renewedCA.issue(t, serverName), renewedCA)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.WaitJSON(t, "grpc tls: reloaded")
	if err := call(t, addr, clientTLS(renewedCA.pool(), renewedCA.issue(t, "envoy").tlsCert())); err != nil {
		t.Errorf("after SIGHUP, a client of the renewed CAs: %v", err)
	}
	wantRefused(t, call(t, addr, envoy), "after SIGHUP, a client of the old CAs")
}
