package validate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istionetworkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	istiosecurityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest.
type Object struct {
	APIVersion, Kind, Name, Namespace string
	// Obj is a pointer to the upstream Go type (*appsv1.Deployment, ...).
	Obj any
}

func (o Object) String() string {
	if o.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Name)
}

// kinds maps apiVersion/kind to a constructor of its upstream Go type. A
// manifest of any other kind is an error: add its type here.
var kinds = map[string]func() any{
	"v1/Namespace":                            func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                               func() any { return new(corev1.Secret) },
	"v1/Service":                              func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                      func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
	"security.istio.io/v1/AuthorizationPolicy": func() any {
		return new(istiosecurityv1.AuthorizationPolicy)
	},
	"networking.istio.io/v1alpha3/EnvoyFilter": func() any { return new(istionetworkingv1alpha3.EnvoyFilter) },
	"networking.istio.io/v1/Gateway":           func() any { return new(istionetworkingv1.Gateway) },
	"networking.istio.io/v1/DestinationRule":   func() any { return new(istionetworkingv1.DestinationRule) },
	"spire.spiffe.io/v1alpha1/ClusterSPIFFEID": func() any { return new(ClusterSPIFFEID) },
}

// istioSpec returns the spec message of an Istio object, nil for others.
func istioSpec(obj any) proto.Message {
	switch o := obj.(type) {
	case *istiosecurityv1.AuthorizationPolicy:
		return &o.Spec
	case *istionetworkingv1alpha3.EnvoyFilter:
		return &o.Spec
	case *istionetworkingv1.Gateway:
		return &o.Spec
	case *istionetworkingv1.DestinationRule:
		return &o.Spec
	}
	return nil
}

// DecodeAll splits a multi-document YAML stream and decodes every
// non-empty document with DecodeStrict.
func DecodeAll(stream []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []Object
	var errs []error
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		o, err := DecodeStrict(doc)
		if errors.Is(err, errEmpty) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

var errEmpty = errors.New("empty document")

// DecodeStrict decodes one manifest into its upstream Go type, as the API
// server would with strict field validation: unknown fields, fields in the
// wrong case and duplicate fields are errors. Istio specs, whose generated
// JSON decoders accept unknown fields, are decoded again with protojson.
func DecodeStrict(doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Object{}, err
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return Object{}, errEmpty
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return Object{}, err
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return Object{}, fmt.Errorf("%s %s: no Go type registered for this kind", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strictErrs) > 0 {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strictErrs...))
	}
	if spec := istioSpec(obj); spec != nil {
		if err := strictIstioSpec(js, spec); err != nil {
			return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
		}
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return Object{}, fmt.Errorf("%s: not a Kubernetes object", tm.Kind)
	}
	if meta.GetName() == "" {
		return Object{}, fmt.Errorf("%s: metadata.name is empty", tm.Kind)
	}
	return Object{APIVersion: tm.APIVersion, Kind: tm.Kind, Name: meta.GetName(), Namespace: meta.GetNamespace(), Obj: obj}, nil
}

// strictIstioSpec decodes the object's spec with protojson, which rejects
// unknown fields, into the Istio API message.
func strictIstioSpec(js []byte, spec proto.Message) error {
	var env struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(js, &env); err != nil {
		return err
	}
	if len(env.Spec) == 0 {
		return nil
	}
	if err := protojson.Unmarshal(env.Spec, spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	return nil
}
