package validate

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istionetworkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	istiosecurityv1 "istio.io/client-go/pkg/apis/security/v1"
)

const (
	istioPeerCertPath = "deploy/istio/peer-certificate.yaml"
	istioGatewayPath  = "deploy/istio/gateway-mtls.yaml"
)

// decodeOne decodes a file that must hold exactly one object of type T.
func decodeOne[T any](t *testing.T, src []byte) (T, error) {
	t.Helper()
	var zero T
	objs, err := DecodeAll(src)
	if err != nil {
		return zero, err
	}
	if len(objs) != 1 {
		return zero, fmt.Errorf("%d objects, want 1", len(objs))
	}
	o, ok := objs[0].Obj.(T)
	if !ok {
		return zero, fmt.Errorf("holds a %s, want %T", objs[0].Kind, zero)
	}
	return o, nil
}

func customPolicy(t *testing.T) *istiosecurityv1.AuthorizationPolicy {
	t.Helper()
	ap, err := decodeOne[*istiosecurityv1.AuthorizationPolicy](t, readRepo(t, "deploy/istio/authorization-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// checkPeerCertificateFilter checks the EnvoyFilter that makes Istio's
// ext_authz send the client certificate: it patches exactly the ext_authz
// filter of the CUSTOM policy's gateways, by MERGE, and sets
// include_peer_certificate and nothing else.
func checkPeerCertificateFilter(ef *istionetworkingv1alpha3.EnvoyFilter, ap *istiosecurityv1.AuthorizationPolicy) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if ef.Namespace != ap.Namespace || !maps.Equal(ef.Spec.GetWorkloadSelector().GetLabels(), ap.Spec.GetSelector().GetMatchLabels()) {
		add("workloadSelector %v in %s: want the AuthorizationPolicy's selector %v in %s", ef.Spec.GetWorkloadSelector().GetLabels(), ef.Namespace, ap.Spec.GetSelector().GetMatchLabels(), ap.Namespace)
	}
	if n := len(ef.Spec.GetConfigPatches()); n != 1 {
		add("%d configPatches, want 1", n)
	}
	for i, cp := range ef.Spec.GetConfigPatches() {
		p := fmt.Sprintf("configPatches[%d]", i)
		if cp.GetApplyTo() != networkingv1alpha3.EnvoyFilter_HTTP_FILTER {
			add("%s: applyTo %v, want HTTP_FILTER", p, cp.GetApplyTo())
		}
		m := cp.GetMatch()
		if m.GetContext() != networkingv1alpha3.EnvoyFilter_GATEWAY {
			add("%s: match.context %v, want GATEWAY (where the CUSTOM policy applies)", p, m.GetContext())
		}
		f := m.GetListener().GetFilterChain().GetFilter()
		if f.GetName() != "envoy.filters.network.http_connection_manager" || f.GetSubFilter().GetName() != ExtAuthzFilterName {
			add("%s: match filter %q subFilter %q, want the connection manager's %s", p, f.GetName(), f.GetSubFilter().GetName(), ExtAuthzFilterName)
		}
		if op := cp.GetPatch().GetOperation(); op != networkingv1alpha3.EnvoyFilter_Patch_MERGE {
			add("%s: patch.operation %v, want MERGE: anything else loses the settings Istio built from the extension provider", p, op)
		}
		hf, err := EnvoyFilterHTTPFilter(cp.GetPatch().GetValue())
		if err != nil {
			add("%s: %v", p, err)
			continue
		}
		if hf.GetName() != ExtAuthzFilterName {
			add("%s: patch.value.name %q, want %s", p, hf.GetName(), ExtAuthzFilterName)
		}
		var ea extauthzv3.ExtAuthz
		if tc := hf.GetTypedConfig(); tc == nil || !tc.MessageIs(&ea) || tc.UnmarshalTo(&ea) != nil {
			add("%s: patch.value.typed_config must be an ExtAuthz", p)
			continue
		}
		if !ea.GetIncludePeerCertificate() {
			add("%s: include_peer_certificate must be true: it is what this EnvoyFilter is for", p)
		}
		if want := (&extauthzv3.ExtAuthz{IncludePeerCertificate: true}); !proto.Equal(&ea, want) {
			add("%s: the patch must set only include_peer_certificate (the extension provider owns the rest), got %v", p, &ea)
		}
	}
	return errors.Join(errs...)
}

// checkMTLSGateway checks that the gateways of the CUSTOM policy require
// client certificates on every server for the protected hosts.
func checkMTLSGateway(gw *istionetworkingv1.Gateway, ap *istiosecurityv1.AuthorizationPolicy) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !maps.Equal(gw.Spec.GetSelector(), ap.Spec.GetSelector().GetMatchLabels()) {
		add("selector %v: want the AuthorizationPolicy's %v", gw.Spec.GetSelector(), ap.Spec.GetSelector().GetMatchLabels())
	}
	hosts := map[string]bool{}
	for i, s := range gw.Spec.GetServers() {
		p := fmt.Sprintf("servers[%d]", i)
		if s.GetPort().GetProtocol() != "HTTPS" {
			add("%s: protocol %q, want HTTPS", p, s.GetPort().GetProtocol())
		}
		if m := s.GetTls().GetMode(); m != networkingv1alpha3.ServerTLSSettings_MUTUAL {
			add("%s: tls.mode %v, want MUTUAL: without a verified client certificate bound tokens cannot be checked", p, m)
		}
		if s.GetTls().GetCredentialName() == "" {
			add("%s: tls.credentialName is empty", p)
		}
		for _, h := range s.GetHosts() {
			hosts[h] = true
		}
	}
	if len(gw.Spec.GetServers()) == 0 {
		add("no servers")
	}
	for _, r := range ap.Spec.GetRules() {
		for _, to := range r.GetTo() {
			for _, h := range to.GetOperation().GetHosts() {
				if h = strings.TrimSuffix(h, ":*"); !hosts[h] {
					add("host %s of the AuthorizationPolicy has no MUTUAL server", h)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func TestIstioPeerCertificate(t *testing.T) {
	// The EnvoyFilter exists because the extension provider cannot say
	// it. Once Istio's API can, set it there instead.
	fields := (&meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if name := string(fields.Get(i).Name()); strings.Contains(name, "certificate") {
			t.Errorf("envoyExtAuthzGrpc now has %s: set it in the extension provider and drop %s", name, istioPeerCertPath)
		}
	}

	ap := customPolicy(t)
	ef, err := decodeOne[*istionetworkingv1alpha3.EnvoyFilter](t, readRepo(t, istioPeerCertPath))
	if err != nil {
		t.Fatalf("%s: %v", istioPeerCertPath, err)
	}
	if err := checkPeerCertificateFilter(ef, ap); err != nil {
		t.Errorf("%s: %v", istioPeerCertPath, err)
	}
	gw, err := decodeOne[*istionetworkingv1.Gateway](t, readRepo(t, istioGatewayPath))
	if err != nil {
		t.Fatalf("%s: %v", istioGatewayPath, err)
	}
	if err := checkMTLSGateway(gw, ap); err != nil {
		t.Errorf("%s: %v", istioGatewayPath, err)
	}
}

func TestIstioPeerCertificateBrokenCopies(t *testing.T) {
	ap := customPolicy(t)
	ef := readRepo(t, istioPeerCertPath)
	for _, c := range []struct{ name, old, new, want string }{
		{"certificate not sent", "include_peer_certificate: true", "include_peer_certificate: false", "include_peer_certificate must be true"},
		{"certificate setting removed", "            include_peer_certificate: true\n", "", "include_peer_certificate must be true"},
		{"typo in the patch value", "include_peer_certificate: true", "include_peer_certificat: true", "include_peer_certificat"},
		{"bad value in the patch value", "include_peer_certificate: true", "include_peer_certificate: yes please", "invalid value for bool field includePeerCertificate"},
		{"more than the certificate", "include_peer_certificate: true\n", "include_peer_certificate: true\n            failure_mode_allow: true\n", "must set only include_peer_certificate"},
		{"replace instead of merge", "operation: MERGE", "operation: REPLACE", "want MERGE"},
		{"wrong filter", "                name: envoy.filters.http.ext_authz\n", "                name: envoy.filters.http.extauthz\n", "subFilter"},
		{"sidecars instead of the gateway", "context: GATEWAY", "context: SIDECAR_INBOUND", "want GATEWAY"},
		{"other workloads", "      istio: ingressgateway\n", "      istio: egressgateway\n", "workloadSelector"},
		{"unknown spec field", "  configPatches:\n", "  configPatch:\n", "configPatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := decodeOne[*istionetworkingv1alpha3.EnvoyFilter](t, mustReplace(t, ef, c.old, c.new))
			if err == nil {
				err = checkPeerCertificateFilter(o, ap)
			}
			wantErr(t, err, c.want)
		})
	}
	gw := readRepo(t, istioGatewayPath)
	for _, c := range []struct{ name, old, new, want string }{
		{"client certificate not required", "mode: MUTUAL", "mode: SIMPLE", "want MUTUAL"},
		{"client certificate optional", "mode: MUTUAL", "mode: OPTIONAL_MUTUAL", "want MUTUAL"},
		{"protected host without mTLS", "        - api.example.com\n", "", "api.example.com"},
		{"unknown tls field", "credentialName:", "credentialname:", "credentialname"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := decodeOne[*istionetworkingv1.Gateway](t, mustReplace(t, gw, c.old, c.new))
			if err == nil {
				err = checkMTLSGateway(o, ap)
			}
			wantErr(t, err, c.want)
		})
	}
}
