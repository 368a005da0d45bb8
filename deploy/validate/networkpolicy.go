package validate

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Caller is a pod as a NetworkPolicy sees it: its namespace (with that
// namespace's labels) and its own labels.
type Caller struct {
	Namespace       string
	NamespaceLabels map[string]string
	Labels          map[string]string
}

// NetworkPolicyAdmits says whether np, in namespace ns, admits ingress from
// the caller to the named port of the pods it selects, as Kubernetes
// evaluates it: any rule whose ports include the port (no ports: all) and
// one of whose peers selects the caller (no peers: everyone). ipBlock peers
// never select a pod here.
func NetworkPolicyAdmits(np *networkingv1.NetworkPolicy, ns string, c Caller, port string) (bool, error) {
	nsLabels := labels.Set{"kubernetes.io/metadata.name": c.Namespace}
	for k, v := range c.NamespaceLabels {
		nsLabels[k] = v
	}
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			portOK = portOK || p.Port == nil || p.Port.StrVal == port
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true, nil
		}
		for _, peer := range rule.From {
			ok, err := peerSelects(peer, ns, c, nsLabels)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

func peerSelects(peer networkingv1.NetworkPolicyPeer, ns string, c Caller, nsLabels labels.Set) (bool, error) {
	if peer.IPBlock != nil {
		return false, nil
	}
	match := func(s *metav1.LabelSelector, l labels.Set) (bool, error) {
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil {
			return false, fmt.Errorf("NetworkPolicy peer: %w", err)
		}
		return sel.Matches(l), nil
	}
	if peer.NamespaceSelector == nil {
		if c.Namespace != ns {
			return false, nil
		}
	} else if ok, err := match(peer.NamespaceSelector, nsLabels); err != nil || !ok {
		return false, err
	}
	if peer.PodSelector == nil {
		return true, nil
	}
	return match(peer.PodSelector, labels.Set(c.Labels))
}
