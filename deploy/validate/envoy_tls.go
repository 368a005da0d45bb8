package validate

import (
	"errors"
	"fmt"
	"slices"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// DecodeClusters decodes an Envoy config snippet that holds only
// static_resources.clusters, as strictly as ValidateEnvoy decodes a
// bootstrap.
func DecodeClusters(src []byte) ([]*clusterv3.Cluster, error) {
	js, err := yaml.YAMLToJSONStrict(src)
	if err != nil {
		return nil, fmt.Errorf("envoy: yaml: %w", err)
	}
	var sr bootstrapv3.Bootstrap_StaticResources
	if err := ValidateEnvoyMessage(js, &sr); err != nil {
		return nil, err
	}
	if len(sr.GetListeners())+len(sr.GetSecrets()) > 0 || len(sr.GetClusters()) == 0 {
		return nil, errors.New("envoy: the snippet must hold clusters, and only clusters")
	}
	return sr.GetClusters(), nil
}

// SpliceClusters puts clusters into a bootstrap: each replaces the
// bootstrap's cluster of its name, or is added. The result is the
// bootstrap in JSON, for ValidateEnvoy.
func SpliceClusters(bootstrap []byte, clusters []*clusterv3.Cluster) ([]byte, error) {
	rep, err := ValidateEnvoy(bootstrap)
	if err != nil {
		return nil, err
	}
	sr := rep.Bootstrap.GetStaticResources()
	for _, c := range clusters {
		i := slices.IndexFunc(sr.Clusters, func(b *clusterv3.Cluster) bool { return b.GetName() == c.GetName() })
		if i < 0 {
			sr.Clusters = append(sr.Clusters, c)
		} else {
			sr.Clusters[i] = c
		}
	}
	return protojson.Marshal(rep.Bootstrap)
}

// UpstreamTLS unpacks a cluster's UpstreamTlsContext; nil for plaintext.
func UpstreamTLS(c *clusterv3.Cluster) (*tlsv3.UpstreamTlsContext, error) {
	a := c.GetTransportSocket().GetTypedConfig()
	if a == nil {
		return nil, nil
	}
	var tc tlsv3.UpstreamTlsContext
	if err := a.UnmarshalTo(&tc); err != nil {
		return nil, fmt.Errorf("cluster %s: transport_socket: %w", c.GetName(), err)
	}
	return &tc, nil
}

// CheckUpstreamMTLS checks that a cluster reaches extauthz the way its
// mTLS listener needs: TLS with ALPN h2, a client certificate (files or
// SDS), and extauthz's certificate verified against a CA or trust bundle
// and one of the names it carries.
func CheckUpstreamMTLS(c *clusterv3.Cluster) error {
	tc, err := UpstreamTLS(c)
	if err != nil {
		return err
	}
	if tc == nil {
		return fmt.Errorf("cluster %s: plaintext: no UpstreamTlsContext", c.GetName())
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cluster %s: "+format, append([]any{c.GetName()}, args...)...))
	}
	ctc := tc.GetCommonTlsContext()
	if !slices.Contains(ctc.GetAlpnProtocols(), "h2") {
		add("alpn_protocols must offer h2: gRPC is HTTP/2")
	}
	if len(ctc.GetTlsCertificates())+len(ctc.GetTlsCertificateSdsSecretConfigs()) == 0 && ctc.GetTlsCertificateProviderInstance() == nil {
		add("no client certificate (tls_certificates or tls_certificate_sds_secret_configs): extauthz's --grpc-client-ca or SPIFFE listener refuses the handshake")
	}
	vc := ctc.GetValidationContext()
	fromSDS := ctc.GetValidationContextSdsSecretConfig() != nil
	if cvc := ctc.GetCombinedValidationContext(); cvc != nil {
		vc = cvc.GetDefaultValidationContext()
		fromSDS = cvc.GetValidationContextSdsSecretConfig() != nil
	}
	switch {
	case vc == nil && !fromSDS:
		add("no validation_context: extauthz's certificate is not verified")
	case vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED:
		add("trust_chain_verification ACCEPT_UNTRUSTED: extauthz's certificate is not verified")
	case !fromSDS && vc.GetTrustedCa() == nil:
		add("validation_context has no trusted_ca")
	}
	if len(vc.GetMatchTypedSubjectAltNames()) == 0 {
		add("no match_typed_subject_alt_names: any certificate of the CA would pass for extauthz")
	}
	return errors.Join(errs...)
}
