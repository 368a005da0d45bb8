package validate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// mtlsBootstrap is the front proxy for certificate-bound tokens.
const mtlsBootstrap = "envoy/envoy-mtls.yaml"

// checkMTLS checks what certificate binding relies on, beyond
// checkEnvoySetup: every filter chain terminates TLS and requires a client
// certificate that Envoy verifies, every ext_authz filter sends that
// certificate to extauthz, and no client-supplied x-forwarded-client-cert
// gets through.
func checkMTLS(rep *EnvoyReport) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(rep.FilterChains) == 0 {
		add("no listener filter chain")
	}
	n := 0
	for _, fc := range rep.FilterChains {
		if err := VerifiesClientCertificates(fc.TLS); err != nil {
			add("%s: %v: certificate-bound tokens need a verified client certificate on every connection", fc.Path, err)
		}
		for _, h := range fc.HCMs {
			switch d := h.GetForwardClientCertDetails(); d {
			case hcmv3.HttpConnectionManager_SANITIZE, hcmv3.HttpConnectionManager_SANITIZE_SET:
			default:
				add("%s: forward_client_cert_details %v passes a client's own x-forwarded-client-cert on: want SANITIZE", fc.Path, d)
			}
		}
		for _, ea := range fc.ExtAuthz {
			n++
			if !ea.GetIncludePeerCertificate() {
				add("%s: ext_authz include_peer_certificate must be true: without it extauthz gets no attributes.source.certificate and denies every bound token", fc.Path)
			}
		}
	}
	if n == 0 {
		add("no ext_authz filter on a listener filter chain")
	}
	if n != len(rep.ExtAuthz) {
		add("%d ext_authz filters, %d of them on listener filter chains", len(rep.ExtAuthz), n)
	}
	return errors.Join(errs...)
}

func TestEnvoyMTLS(t *testing.T) {
	rep, err := ValidateEnvoy(readRepo(t, mtlsBootstrap))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMTLS(rep); err != nil {
		t.Fatal(err)
	}
	// (checkEnvoySetup runs on it in TestEnvoyBootstraps.)

	// Apart from the certificate, extauthz is called exactly as from
	// envoy.yaml, so the two configs cannot drift apart.
	plain, err := ValidateEnvoy(readRepo(t, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ExtAuthz) != 1 || len(plain.ExtAuthz) != 1 {
		t.Fatalf("ext_authz filters: %d in %s, %d in envoy.yaml, want 1 each", len(rep.ExtAuthz), mtlsBootstrap, len(plain.ExtAuthz))
	}
	for _, m := range rep.ExtAuthz {
		for _, p := range plain.ExtAuthz {
			c := proto.Clone(m).(*extauthzv3.ExtAuthz)
			c.IncludePeerCertificate = false
			if !proto.Equal(c, p) {
				t.Errorf("the ext_authz settings of %s differ from envoy.yaml's in more than include_peer_certificate:\n%v\n%v", mtlsBootstrap, c, p)
			}
		}
	}
}

// TestEnvoyMTLSBrokenCopies proves the certificate-binding checks fail when
// a setting they are for is removed or weakened. Every copy passes
// ValidateEnvoy, so only these checks stand between it and a release.
func TestEnvoyMTLSBrokenCopies(t *testing.T) {
	src := readRepo(t, mtlsBootstrap)
	pd, err := ReadPolicyDir(composePolicyDir(t))
	if err != nil {
		t.Fatal(err)
	}
	// The listener without its transport socket: plaintext.
	plaintext := func(t *testing.T) []byte {
		s := string(src)
		start := strings.Index(s, "        - transport_socket:\n")
		end := strings.Index(s, "          filters:\n")
		if start < 0 || end < start {
			t.Fatal("broken copy: no transport_socket before filters")
		}
		return []byte(s[:start] + "        - filters:\n" + s[end+len("          filters:\n"):])
	}
	const ipc = "                      include_peer_certificate: true\n"
	cases := []struct {
		name     string
		old, new string
		copy     func(*testing.T) []byte
		want     string
	}{
		{name: "certificate not sent", old: ipc, new: strings.Replace(ipc, "true", "false", 1), want: "include_peer_certificate must be true"},
		{name: "certificate setting removed", old: ipc, new: "", want: "include_peer_certificate must be true"},
		{name: "client certificate optional", old: "require_client_certificate: true", new: "require_client_certificate: false", want: "require_client_certificate is not true"},
		{name: "client certificate setting removed", old: "              require_client_certificate: true\n", new: "", want: "require_client_certificate is not true"},
		{
			name: "client certificate not verified",
			old:  "                validation_context:\n                  trusted_ca: { filename: /etc/envoy/certs/client-ca.pem }\n", new: "",
			want: "no validation_context",
		},
		{
			name: "untrusted chains accepted",
			old:  "                  trusted_ca: { filename: /etc/envoy/certs/client-ca.pem }\n",
			new:  "                  trusted_ca: { filename: /etc/envoy/certs/client-ca.pem }\n                  trust_chain_verification: ACCEPT_UNTRUSTED\n",
			want: "ACCEPT_UNTRUSTED",
		},
		{name: "plaintext listener", copy: plaintext, want: "plaintext: no DownstreamTlsContext"},
		{name: "client's XFCC forwarded", old: "forward_client_cert_details: SANITIZE", new: "forward_client_cert_details: APPEND_FORWARD", want: "forward_client_cert_details APPEND_FORWARD"},
		{
			name: "DPoP proofs withheld from extauthz",
			old:  ipc, new: ipc + "                      disallowed_headers: { patterns: [{ prefix: dpo }] }\n",
			want: "the dpop request header does not reach extauthz",
		},
		{
			name: "DPoP-Nonce removed from responses",
			old:  "                  name: ingress_mtls\n", new: "                  name: ingress_mtls\n                  response_headers_to_remove: [dpop-nonce]\n",
			want: "removes the dpop-nonce response header",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var broken []byte
			if c.copy != nil {
				broken = c.copy(t)
			} else {
				broken = mustReplace(t, src, c.old, c.new)
			}
			rep, err := ValidateEnvoy(broken)
			if err != nil {
				t.Fatalf("Envoy would reject this copy, so it proves nothing: %v", err)
			}
			wantErr(t, errors.Join(checkEnvoySetup(rep, pd), checkMTLS(rep)), c.want)
		})
	}
}
