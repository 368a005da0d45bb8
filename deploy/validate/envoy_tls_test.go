package validate

import (
	"fmt"
	"path/filepath"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// The Envoy clusters that reach extauthz's TLS listener.
const (
	mtlsCluster   = "deploy/envoy/extauthz-cluster-mtls.yaml"
	spiffeCluster = "deploy/envoy/extauthz-cluster-spiffe.yaml"
)

// The SPIFFE IDs of deploy/spire's registration entries.
const (
	trustDomain = "example.org"
	extauthzID  = "spiffe://example.org/ns/extauthz/sa/extauthz"
	clientID    = "spiffe://example.org/ns/applications/sa/workload-client"
	envoyID     = "spiffe://example.org/ns/edge/sa/envoy"
	agentSocket = "/spiffe-workload-api/spire-agent.sock"
)

// serviceFQDN is the DNS name of the kustomize base's extauthz Service,
// which extauthz's certificate must carry.
func serviceFQDN(t *testing.T) string {
	t.Helper()
	out, err := Kustomize(repoPath("deploy/kubernetes/base"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Index(objs).Services {
		if s.Name == "extauthz" {
			return fmt.Sprintf("%s.%s.svc.cluster.local", s.Name, s.Namespace)
		}
	}
	t.Fatal("the base renders no extauthz Service")
	return ""
}

func clusterNamed(cs []*clusterv3.Cluster, name string) *clusterv3.Cluster {
	for _, c := range cs {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

// TestEnvoyExtauthzTLS validates each cluster snippet for extauthz's TLS
// listener in place: spliced into envoy/envoy.yaml, the bootstrap passes
// every check envoy.yaml passes; the cluster does mTLS and verifies
// extauthz's name; and it is envoy.yaml's cluster but for the endpoint and
// the transport socket.
func TestEnvoyExtauthzTLS(t *testing.T) {
	pd, err := ReadPolicyDir(composePolicyDir(t))
	if err != nil {
		t.Fatal(err)
	}
	base, err := ValidateEnvoy(readRepo(t, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plain := clusterNamed(base.Bootstrap.GetStaticResources().GetClusters(), "extauthz")
	fqdn := serviceFQDN(t)
	files, _ := filepath.Glob(repoPath("deploy/envoy/*.yaml"))
	if len(files) != 2 {
		t.Errorf("deploy/envoy: %d snippets, want the 2 this test knows", len(files))
	}
	for _, f := range []string{mtlsCluster, spiffeCluster} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cs, err := DecodeClusters(readRepo(t, f))
			if err != nil {
				t.Fatal(err)
			}
			spliced, err := SpliceClusters(readRepo(t, "envoy/envoy.yaml"), cs)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := ValidateEnvoy(spliced)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkEnvoySetup(rep, pd); err != nil {
				t.Fatal(err)
			}
			c := clusterNamed(cs, "extauthz")
			if c == nil {
				t.Fatal("no extauthz cluster")
			}
			if err := CheckUpstreamMTLS(c); err != nil {
				t.Fatal(err)
			}
			addr := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if addr.GetAddress() != fqdn || addr.GetPortValue() != GRPCPort {
				t.Errorf("endpoint %s:%d, want %s:%d", addr.GetAddress(), addr.GetPortValue(), fqdn, GRPCPort)
			}
			same := proto.Clone(c).(*clusterv3.Cluster)
			same.TransportSocket, same.LoadAssignment = nil, nil
			want := proto.Clone(plain).(*clusterv3.Cluster)
			want.LoadAssignment = nil
			if !proto.Equal(same, want) {
				t.Errorf("the cluster differs from envoy.yaml's extauthz cluster beyond its endpoint and transport_socket: keep them the same")
			}
			tc, _ := UpstreamTLS(c)
			switch f {
			case mtlsCluster:
				checkFileTLS(t, tc, fqdn)
			case spiffeCluster:
				checkSPIFFETLS(t, tc, cs)
			}
		})
	}
}

func sans(tc *tlsv3.UpstreamTlsContext) []*tlsv3.SubjectAltNameMatcher {
	ctc := tc.GetCommonTlsContext()
	if c := ctc.GetCombinedValidationContext(); c != nil {
		return c.GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
	}
	return ctc.GetValidationContext().GetMatchTypedSubjectAltNames()
}

// checkFileTLS: the certificate extauthz serves from files names the
// Service, and Envoy asks for that name.
func checkFileTLS(t *testing.T, tc *tlsv3.UpstreamTlsContext, fqdn string) {
	t.Helper()
	if tc.GetSni() != fqdn {
		t.Errorf("sni %q, want %s", tc.GetSni(), fqdn)
	}
	s := sans(tc)
	if len(s) != 1 || s[0].GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || s[0].GetMatcher().GetExact() != fqdn {
		t.Errorf("match_typed_subject_alt_names %v, want exactly DNS %s", s, fqdn)
	}
}

// checkSPIFFETLS: Envoy asks the SPIRE agent for its own SVID (the ID
// extauthz authorizes) and the trust bundle, and accepts exactly
// extauthz's SPIFFE ID.
func checkSPIFFETLS(t *testing.T, tc *tlsv3.UpstreamTlsContext, cs []*clusterv3.Cluster) {
	t.Helper()
	ctc := tc.GetCommonTlsContext()
	sds := ctc.GetTlsCertificateSdsSecretConfigs()
	if len(sds) != 1 || sds[0].GetName() != envoyID {
		t.Errorf("tls_certificate_sds_secret_configs %v, want Envoy's SVID %s", sds, envoyID)
	}
	if n := ctc.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName(); n != "spiffe://"+trustDomain {
		t.Errorf("validation_context_sds_secret_config %q, want the bundle spiffe://%s", n, trustDomain)
	}
	s := sans(tc)
	if len(s) != 1 || s[0].GetSanType() != tlsv3.SubjectAltNameMatcher_URI || s[0].GetMatcher().GetExact() != extauthzID {
		t.Errorf("match_typed_subject_alt_names %v, want exactly URI %s", s, extauthzID)
	}
	agent := clusterNamed(cs, "spire_agent")
	if p := agent.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetPipe().GetPath(); p != agentSocket {
		t.Errorf("spire_agent at %q, want the agent socket %s", p, agentSocket)
	}
}

// TestEnvoyExtauthzTLSBrokenCopies: each copy of the mTLS cluster breaks
// one thing and must fail.
func TestEnvoyExtauthzTLSBrokenCopies(t *testing.T) {
	src := readRepo(t, mtlsCluster)
	for _, c := range []struct{ name, old, new, want string }{
		{"no client certificate", "          tls_certificates:\n            - certificate_chain: { filename: /etc/envoy/extauthz-client/tls.crt }\n              private_key: { filename: /etc/envoy/extauthz-client/tls.key }\n              watched_directory: { path: /etc/envoy/extauthz-client }\n", "", "no client certificate"},
		{"any certificate of the CA", "            match_typed_subject_alt_names:\n              - san_type: DNS\n                matcher: { exact: extauthz.extauthz.svc.cluster.local }\n", "", "match_typed_subject_alt_names"},
		{"untrusted", "            trusted_ca: { filename: /etc/envoy/extauthz-client/ca.crt }\n", "            trusted_ca: { filename: /etc/envoy/extauthz-client/ca.crt }\n            trust_chain_verification: ACCEPT_UNTRUSTED\n", "ACCEPT_UNTRUSTED"},
		{"no h2", "          alpn_protocols: [h2]\n", "", "h2"},
		{"unknown field", "trusted_ca:", "trusted_caa:", "trusted_caa"},
		{"plaintext", "    transport_socket:\n", "    transport_socket_x:\n", "transport_socket_x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs, err := DecodeClusters(mustReplace(t, src, c.old, c.new))
			if err == nil {
				err = CheckUpstreamMTLS(clusterNamed(cs, "extauthz"))
			}
			wantErr(t, err, c.want)
		})
	}
}
