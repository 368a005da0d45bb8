package validate

import (
	"fmt"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
)

const providerName = "extauthz"

func TestIstio(t *testing.T) {
	// The service the provider names is the base's Service.
	out, err := Kustomize(repoPath("deploy/kubernetes/base"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	var svc *corev1.Service
	for _, s := range Index(objs).Services {
		if s.Name == "extauthz" {
			svc = s
		}
	}
	if svc == nil {
		t.Fatal("the base renders no extauthz Service")
	}
	// The body settings match the Envoy front proxy's.
	rep, err := ValidateEnvoy(readRepo(t, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var envoyAuthz *extauthzv3.ExtAuthz
	for _, ea := range rep.ExtAuthz {
		envoyAuthz = ea
	}

	op, err := DecodeIstioOperator(readRepo(t, "deploy/istio/extension-provider.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := ExtensionProvider(op, providerName)
	g := p.GetEnvoyExtAuthzGrpc()
	if g == nil {
		t.Fatalf("IstioOperator: no envoyExtAuthzGrpc extension provider %q", providerName)
	}
	if want := fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace); g.GetService() != want {
		t.Errorf("provider service %q, want %q", g.GetService(), want)
	}
	if g.GetPort() != GRPCPort {
		t.Errorf("provider port %d, want %d", g.GetPort(), GRPCPort)
	}
	if g.GetFailOpen() {
		t.Error("provider failOpen must be false")
	}
	if g.GetStatusOnError() != "503" {
		t.Errorf("provider statusOnError %q, want 503", g.GetStatusOnError())
	}
	if to := g.GetTimeout().AsDuration(); to <= fetchWait || to > maxAuthzWait {
		t.Errorf("provider timeout %v: want above %v, at most %v", to, fetchWait, maxAuthzWait)
	}
	b := g.GetIncludeRequestBodyInCheck()
	eb := envoyAuthz.GetWithRequestBody()
	if b == nil || !b.GetPackAsBytes() || b.GetAllowPartialMessage() || b.GetMaxRequestBytes() != eb.GetMaxRequestBytes() {
		t.Errorf("provider includeRequestBodyInCheck %v: want packAsBytes, no partial messages, maxRequestBytes %d as envoy.yaml", b, eb.GetMaxRequestBytes())
	}

	vals, err := DecodeIstiodValues(readRepo(t, "deploy/istio/istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ExtensionProvider(vals, providerName), p) {
		t.Errorf("istiod-values.yaml and extension-provider.yaml configure different providers")
	}

	aps, err := DecodeAll(readRepo(t, "deploy/istio/authorization-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(aps) != 1 {
		t.Fatalf("authorization-policy.yaml: %d objects, want 1", len(aps))
	}
	ap, ok := aps[0].Obj.(*istiosecurityv1.AuthorizationPolicy)
	if !ok {
		t.Fatalf("authorization-policy.yaml holds a %s", aps[0].Kind)
	}
	if ap.Spec.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM || ap.Spec.GetProvider().GetName() != providerName {
		t.Errorf("AuthorizationPolicy: action %v provider %q, want CUSTOM %q", ap.Spec.GetAction(), ap.Spec.GetProvider().GetName(), providerName)
	}
	if len(ap.Spec.GetRules()) == 0 {
		t.Error("AuthorizationPolicy: a CUSTOM policy without rules never applies")
	}
}

func TestIstioBrokenCopies(t *testing.T) {
	op := readRepo(t, "deploy/istio/extension-provider.yaml")
	for _, c := range []struct{ name, old, new, want string }{
		{"unknown provider field", "failOpen: false", "failOpn: false", "failOpn"},
		{"wrong type", "maxRequestBytes: 65536", "maxRequestBytes: lots", "maxRequestBytes"},
		{"unknown operator field", "  meshConfig:\n", "  meshconfig:\n", "meshconfig"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeIstioOperator(mustReplace(t, op, c.old, c.new))
			wantErr(t, err, c.want)
		})
	}
	// Istio's generated JSON decoder accepts unknown spec fields; the
	// strict protojson pass must not.
	ap := readRepo(t, "deploy/istio/authorization-policy.yaml")
	_, err := DecodeStrict(mustReplace(t, ap, "  provider:\n", "  providr:\n"))
	wantErr(t, err, "providr")
}
