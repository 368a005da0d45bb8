package validate

import (
	"encoding/json"
	"fmt"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The part of an IstioOperator these configs use. The operator's own Go
// types live in istio.io/istio, far too large to import for this; the
// envelope is decoded strictly here and meshConfig with Istio's API type.
type istioOperator struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Profile    string          `json:"profile,omitempty"`
		MeshConfig json.RawMessage `json:"meshConfig,omitempty"`
	} `json:"spec"`
}

// istiodValues is the part of the istiod chart's values these configs use.
type istiodValues struct {
	MeshConfig json.RawMessage `json:"meshConfig"`
}

// DecodeIstioOperator decodes an IstioOperator strictly and returns its
// meshConfig.
func DecodeIstioOperator(src []byte) (*meshv1alpha1.MeshConfig, error) {
	var op istioOperator
	if err := strictYAML(src, &op); err != nil {
		return nil, fmt.Errorf("IstioOperator: %w", err)
	}
	if op.APIVersion != "install.istio.io/v1alpha1" || op.Kind != "IstioOperator" {
		return nil, fmt.Errorf("IstioOperator: got %s %s", op.APIVersion, op.Kind)
	}
	return decodeMeshConfig(op.Spec.MeshConfig)
}

// DecodeIstiodValues decodes istiod Helm values that set only meshConfig.
func DecodeIstiodValues(src []byte) (*meshv1alpha1.MeshConfig, error) {
	var v istiodValues
	if err := strictYAML(src, &v); err != nil {
		return nil, fmt.Errorf("istiod values: %w", err)
	}
	return decodeMeshConfig(v.MeshConfig)
}

func decodeMeshConfig(js json.RawMessage) (*meshv1alpha1.MeshConfig, error) {
	var mc meshv1alpha1.MeshConfig
	if err := protojson.Unmarshal(js, &mc); err != nil {
		return nil, fmt.Errorf("meshConfig: %w", err)
	}
	return &mc, nil
}

// ExtensionProvider returns the mesh's extension provider named name.
func ExtensionProvider(mc *meshv1alpha1.MeshConfig, name string) *meshv1alpha1.MeshConfig_ExtensionProvider {
	for _, p := range mc.GetExtensionProviders() {
		if p.GetName() == name {
			return p
		}
	}
	return nil
}

// EnvoyFilterHTTPFilter decodes the value of an EnvoyFilter patch that
// applies to an HTTP_FILTER into Envoy's HttpFilter, strictly (Istio's
// own decoder stores it as a free-form Struct), with its typed_config
// unpacked and validated as in a bootstrap.
func EnvoyFilterHTTPFilter(v *structpb.Struct) (*hcmv3.HttpFilter, error) {
	js, err := protojson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("EnvoyFilter patch value: %w", err)
	}
	var hf hcmv3.HttpFilter
	if err := ValidateEnvoyMessage(js, &hf); err != nil {
		return nil, fmt.Errorf("EnvoyFilter patch value: %w", err)
	}
	return &hf, nil
}

func strictYAML(src []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(src)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("%v", strictErrs)
	}
	return nil
}
