package validate

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// The proxies that can run an Istio CUSTOM action, and who else calls.
var (
	classicGateway = Caller{Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}}
	ingressNS      = Caller{Namespace: "istio-ingress", Labels: map[string]string{"istio": "ingressgateway"}}
	gatewayAPI     = Caller{Namespace: "edge", Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "public"}}
	waypoint       = Caller{Namespace: "apps", NamespaceLabels: map[string]string{"istio.io/dataplane-mode": "ambient"}, Labels: map[string]string{"gateway.networking.k8s.io/gateway-name": "waypoint"}}
	sidecarNS      = Caller{Namespace: "apps", NamespaceLabels: map[string]string{"istio-injection": "enabled"}, Labels: map[string]string{"app": "reports"}}
	sidecarRev     = Caller{Namespace: "apps", NamespaceLabels: map[string]string{"istio.io/rev": "stable"}, Labels: map[string]string{"app": "reports"}}
	sidecarPod     = Caller{Namespace: "apps", Labels: map[string]string{"app": "reports", "sidecar.istio.io/inject": "true"}}
	plainPod       = Caller{Namespace: "apps", Labels: map[string]string{"app": "reports"}}
	prometheus     = Caller{Namespace: "monitoring", Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
)

// TestNetworkPolicyCallers evaluates the default NetworkPolicies (chart
// and kustomize base) for the callers of every Istio mode: gateways, Gateway
// API gateways, ambient waypoints and sidecars may send Checks; other pods
// may not, and only monitoring may scrape.
func TestNetworkPolicyCallers(t *testing.T) {
	helmOut, err := Helm(helmBin(t), t.TempDir(), "template", "extauthz", repoPath(chartDir), "--namespace", namespace)
	if err != nil {
		t.Fatal(err)
	}
	kustOut, err := Kustomize(repoPath("deploy/kubernetes/base"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		caller Caller
		port   string
		want   bool
	}{
		{"classic gateway", classicGateway, "grpc", true},
		{"gateway in istio-ingress", ingressNS, "grpc", true},
		{"Gateway API gateway", gatewayAPI, "grpc", true},
		{"ambient waypoint", waypoint, "grpc", true},
		{"sidecar, injection label", sidecarNS, "grpc", true},
		{"sidecar, revision label", sidecarRev, "grpc", true},
		{"sidecar, pod label", sidecarPod, "grpc", true},
		{"pod outside the mesh", plainPod, "grpc", false},
		{"prometheus sends Checks", prometheus, "grpc", false},
		{"prometheus scrapes", prometheus, "http", true},
		{"gateway scrapes", classicGateway, "http", false},
	}
	for name, out := range map[string][]byte{"helm": helmOut, "kustomize": kustOut} {
		t.Run(name, func(t *testing.T) {
			objs, err := DecodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			var np *networkingv1.NetworkPolicy
			for _, p := range Index(objs).NetworkPolicies {
				if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] == "authorizer" {
					np = p
				}
			}
			if np == nil {
				t.Fatal("no NetworkPolicy for extauthz")
			}
			for _, c := range cases {
				got, err := NetworkPolicyAdmits(np, namespace, c.caller, c.port)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("%s to port %s: admitted %v, want %v", c.name, c.port, got, c.want)
				}
			}
		})
	}
}
