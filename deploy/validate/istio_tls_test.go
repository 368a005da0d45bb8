package validate

import (
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
)

const destinationRule = "deploy/istio/destination-rule-mtls.yaml"

// TestIstioDestinationRule: the gateway's cluster for the extension
// provider's service originates mTLS on the gRPC port and verifies the
// name extauthz's certificate carries (the same as the Envoy snippet's).
func TestIstioDestinationRule(t *testing.T) {
	objs, err := DecodeAll(readRepo(t, destinationRule))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", destinationRule, len(objs))
	}
	dr, ok := objs[0].Obj.(*istionetworkingv1.DestinationRule)
	if !ok {
		t.Fatalf("%s holds a %s", destinationRule, objs[0].Kind)
	}
	op, err := DecodeIstioOperator(readRepo(t, "deploy/istio/extension-provider.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fqdn := serviceFQDN(t)
	if svc := ExtensionProvider(op, providerName).GetEnvoyExtAuthzGrpc().GetService(); dr.Spec.GetHost() != svc || svc != fqdn {
		t.Errorf("DestinationRule host %q, extension provider service %q: want both %s", dr.Spec.GetHost(), svc, fqdn)
	}
	if dr.Namespace != "istio-system" {
		t.Errorf("namespace %q: want istio-system, where the gateway and its credentialName Secret are", dr.Namespace)
	}
	pls := dr.Spec.GetTrafficPolicy().GetPortLevelSettings()
	if len(pls) != 1 || pls[0].GetPort().GetNumber() != GRPCPort {
		t.Fatalf("portLevelSettings %v, want one for port %d", pls, GRPCPort)
	}
	tls := pls[0].GetTls()
	if tls.GetMode() != networkingv1alpha3.ClientTLSSettings_MUTUAL || tls.GetCredentialName() == "" {
		t.Errorf("tls mode %v, credentialName %q: want MUTUAL with a credential", tls.GetMode(), tls.GetCredentialName())
	}
	if tls.GetInsecureSkipVerify().GetValue() {
		t.Error("insecureSkipVerify: extauthz's certificate would not be verified")
	}
	if san := tls.GetSubjectAltNames(); tls.GetSni() != fqdn || len(san) != 1 || san[0] != fqdn {
		t.Errorf("sni %q, subjectAltNames %q: want %s", tls.GetSni(), san, fqdn)
	}
	cs, err := DecodeClusters(readRepo(t, mtlsCluster))
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := UpstreamTLS(clusterNamed(cs, "extauthz"))
	if s := sans(tc); len(s) != 1 || s[0].GetMatcher().GetExact() != tls.GetSubjectAltNames()[0] {
		t.Errorf("the Envoy snippet and the DestinationRule verify different names")
	}
	_, err = DecodeStrict(mustReplace(t, readRepo(t, destinationRule), "credentialName:", "credentialNam:"))
	wantErr(t, err, "credentialNam")
}
