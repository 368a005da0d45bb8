package main

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/extauthz/extauthz/internal/offline"
)

// startCheckServer serves the Check service of policy on 127.0.0.1:0
// with the listener security of c, as serve sets it up, and returns the
// address.
func startCheckServer(t *testing.T, policy string, c grpcTLS) string {
	t.Helper()
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	srv, err := offline.New(t.Context(), offline.Config{Policies: []string{policy}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lt, err := openGRPCTLS(t.Context(), c, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lt.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(lt.serverOptions()...)
	authv3.RegisterAuthorizationServer(gs, srv.Server)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// writePEM writes data to dir/name and returns the path.
func writePEM(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeAtomically(t, p, data)
	return p
}

// clientFiles writes a client certificate of ca and its key to dir and
// returns the --tls-cert and --tls-key flags naming them.
func clientFiles(t *testing.T, dir string, ca *testCA, name string) []string {
	t.Helper()
	l := ca.issue(t, name)
	return []string{"--tls-cert", writePEM(t, dir, name+".crt", l.certPEM()), "--tls-key", writePEM(t, dir, name+".key", l.keyPEM(t))}
}

// expectCheckFails runs check, wants exit code and stderr holding each
// of want, and no answer on stdout.
func expectCheckFails(t *testing.T, code int, want []string, args ...string) {
	t.Helper()
	got, out, errOut := runCheck(t, args...)
	if got != code || out != "" {
		t.Errorf("check %q: exit %d, stdout %q, stderr %q; want exit %d", args, got, out, errOut, code)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("check %q: stderr %q lacks %q", args, errOut, w)
		}
	}
}

// TestCheckRemoteTLS asks a server whose listener serves TLS
// (--grpc-tls-cert), trusting its CA with --tls-ca, and makes each way of
// getting the flags wrong say what to change.
func TestCheckRemoteTLS(t *testing.T) {
	f := newCheckFixture(t)
	serverCA := newTestCA(t, "server CA")
	addr := startCheckServer(t, f.policy, writeTLSFiles(t, t.TempDir(), serverCA.issue(t, serverName), nil))
	plain := startCheckServer(t, f.policy, grpcTLS{})
	ca := writePEM(t, f.dir, "ca.crt", serverCA.pem())
	allow := []string{"--url", "https://acme.admin.example.com/users", "--bearer", f.adminToken(t, "acme")}
	trust := []string{"--tls-ca", ca, "--tls-server-name", serverName}

	expectCheck(t, 0, adminAllowed, append(append([]string{"--addr", addr}, trust...), allow...)...)
	// A deny over TLS is exit 1, as over plaintext.
	out := expectCheck(t, 1, "", append(append([]string{"--addr", addr}, trust...),
		"--url", "https://beta.admin.example.com/users", "--bearer", f.adminToken(t, "acme"))...)
	if !strings.HasPrefix(out, "decision   deny (HTTP 403)\n") {
		t.Errorf("deny over TLS: stdout %q", out)
	}
	// A client certificate nobody asked for does not matter.
	expectCheck(t, 0, adminAllowed, append(append(append([]string{"--addr", addr}, trust...), clientFiles(t, f.dir, newTestCA(t, "other"), "envoy")...), allow...)...)

	t.Run("plaintext to a TLS listener", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"extauthz check: ", "give --tls, or --tls-ca FILE"}, append([]string{"--addr", addr, "--timeout", "5s"}, allow...)...)
	})
	t.Run("system roots do not hold a private CA", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"give --tls-ca FILE"},
			append([]string{"--addr", addr, "--tls", "--tls-server-name", serverName}, allow...)...)
	})
	t.Run("another CA", func(t *testing.T) {
		other := writePEM(t, t.TempDir(), "other.crt", newTestCA(t, "other CA").pem())
		expectCheckFails(t, 3, []string{"give --tls-ca FILE"},
			append([]string{"--addr", addr, "--tls-ca", other, "--tls-server-name", serverName}, allow...)...)
	})
	t.Run("the certificate names another host", func(t *testing.T) {
		// Dialled by IP, the certificate holds only a DNS name.
		expectCheckFails(t, 3, []string{"give --tls-server-name NAME"}, append([]string{"--addr", addr, "--tls-ca", ca}, allow...)...)
		expectCheckFails(t, 3, []string{"not other.example", "give --tls-server-name NAME"},
			append([]string{"--addr", addr, "--tls-ca", ca, "--tls-server-name", "other.example"}, allow...)...)
	})
	t.Run("TLS to a plaintext listener", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"the listener speaks plaintext: drop --tls"}, append(append([]string{"--addr", plain}, trust...), allow...)...)
	})
}

// TestCheckRemoteMTLS asks a server that requires a client certificate
// (--grpc-client-ca): one of the client CA is let in, none or one of
// another CA is exit 3 saying so.
func TestCheckRemoteMTLS(t *testing.T) {
	f := newCheckFixture(t)
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
	addr := startCheckServer(t, f.policy, writeTLSFiles(t, t.TempDir(), serverCA.issue(t, serverName), clientCA))
	ca := writePEM(t, f.dir, "ca.crt", serverCA.pem())
	allow := []string{"--url", "https://acme.admin.example.com/users", "--bearer", f.adminToken(t, "acme")}
	trust := []string{"--addr", addr, "--tls-ca", ca, "--tls-server-name", serverName}
	envoy := clientFiles(t, f.dir, clientCA, "envoy")

	expectCheck(t, 0, adminAllowed, append(append(trust, envoy...), allow...)...)
	out := expectCheck(t, 1, "", append(append(trust, envoy...), "--url", "https://acme.admin.example.com/users")...)
	if !strings.HasPrefix(out, "decision   deny (HTTP 401)\n") {
		t.Errorf("deny over mTLS: stdout %q", out)
	}

	t.Run("no client certificate", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"extauthz check: ", "asks for a client certificate", "give --tls-cert and --tls-key"}, append(trust, allow...)...)
	})
	t.Run("a client certificate of another CA", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"did not accept the client certificate of --tls-cert"},
			append(append(trust, clientFiles(t, t.TempDir(), newTestCA(t, "other CA"), "envoy")...), allow...)...)
	})
	t.Run("plaintext", func(t *testing.T) {
		expectCheckFails(t, 3, []string{"give --tls, or --tls-ca FILE"}, append([]string{"--addr", addr}, allow...)...)
	})
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv("EXTAUTHZ_TLS_CERT", envoy[1])
		t.Setenv("EXTAUTHZ_TLS_KEY", envoy[3])
		expectCheck(t, 0, adminAllowed, append(trust, allow...)...)
	})
}

// TestCheckTLSFlagErrors: TLS flags that cannot be used are exit 2 before
// anything is dialled, and --help lists them.
func TestCheckTLSFlagErrors(t *testing.T) {
	f := newCheckFixture(t)
	ca := newTestCA(t, "CA")
	client := clientFiles(t, f.dir, ca, "envoy")
	otherKey := clientFiles(t, f.dir, ca, "other")[3]
	req := []string{"--url", "https://acme.admin.example.com/"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--policy", f.policy, "--tls"}, "go with --addr"},
		{[]string{"--policy", f.policy, "--tls-ca", "ca.crt"}, "go with --addr"},
		{[]string{"--addr", "127.0.0.1:1", "--tls-cert", client[1]}, "--tls-cert and --tls-key go together"},
		{[]string{"--addr", "127.0.0.1:1", "--tls-key", client[3]}, "--tls-cert and --tls-key go together"},
		{[]string{"--addr", "127.0.0.1:1", "--tls-ca", filepath.Join(f.dir, "none.crt")}, "--tls-ca: open "},
		{[]string{"--addr", "127.0.0.1:1", "--tls-ca", f.policy}, "no PEM CERTIFICATE"},
		{[]string{"--addr", "127.0.0.1:1", "--tls-cert", client[1], "--tls-key", otherKey}, "private key does not match public key"},
		{[]string{"--addr", "127.0.0.1:1", "--tls-insecure-skip-verify"}, "flag provided but not defined"},
	} {
		expectCheckFails(t, 2, []string{tt.want}, append(tt.args, req...)...)
	}
	code, _, errOut := runCheck(t, "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, want := range []string{"-tls\n", "-tls-ca FILE", "-tls-cert FILE", "-tls-key FILE", "-tls-server-name NAME", "For a TLS listener", "--addr ADDR [--tls...]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--help lacks %q:\n%s", want, errOut)
		}
	}
}
