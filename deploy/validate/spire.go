package validate

import (
	"bytes"
	"fmt"
	"regexp"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ClusterSPIFFEID is spire-controller-manager's registration resource
// (spire.spiffe.io/v1alpha1). Its Go module is not on the module proxy, so
// the fields are declared here, as the CRD has them; DecodeStrict refuses
// any other.
type ClusterSPIFFEID struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ClusterSPIFFEIDSpec `json:"spec"`
}

// ClusterSPIFFEIDSpec is the spec of a ClusterSPIFFEID.
type ClusterSPIFFEIDSpec struct {
	SPIFFEIDTemplate          string                `json:"spiffeIDTemplate"`
	TTL                       metav1.Duration       `json:"ttl,omitempty"`
	JWTTTL                    metav1.Duration       `json:"jwtTtl,omitempty"`
	DNSNameTemplates          []string              `json:"dnsNameTemplates,omitempty"`
	WorkloadSelectorTemplates []string              `json:"workloadSelectorTemplates,omitempty"`
	FederatesWith             []string              `json:"federatesWith,omitempty"`
	NamespaceSelector         *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector               *metav1.LabelSelector `json:"podSelector,omitempty"`
	Admin                     bool                  `json:"admin,omitempty"`
	Downstream                bool                  `json:"downstream,omitempty"`
	AutoPopulateDNSNames      bool                  `json:"autoPopulateDNSNames,omitempty"`
	ClassName                 string                `json:"className,omitempty"`
	Fallback                  bool                  `json:"fallback,omitempty"`
	Hint                      string                `json:"hint,omitempty"`
}

// Selects says whether the ClusterSPIFFEID applies to a pod with these
// labels in a namespace with these labels.
func (c *ClusterSPIFFEID) Selects(nsLabels, podLabels map[string]string) (bool, error) {
	for _, s := range []struct {
		sel *metav1.LabelSelector
		l   map[string]string
	}{{c.Spec.NamespaceSelector, nsLabels}, {c.Spec.PodSelector, podLabels}} {
		if s.sel == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(s.sel)
		if err != nil {
			return false, fmt.Errorf("ClusterSPIFFEID %s: %w", c.Name, err)
		}
		if !sel.Matches(labels.Set(s.l)) {
			return false, nil
		}
	}
	return true, nil
}

// SPIFFEID renders the ID template for a pod, with the data
// spire-controller-manager gives it.
func (c *ClusterSPIFFEID) SPIFFEID(trustDomain string, pod *metav1.ObjectMeta, spec *corev1.PodSpec) (string, error) {
	tmpl, err := template.New(c.Name).Option("missingkey=error").Parse(c.Spec.SPIFFEIDTemplate)
	if err != nil {
		return "", fmt.Errorf("ClusterSPIFFEID %s: spiffeIDTemplate: %w", c.Name, err)
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, map[string]any{
		"TrustDomain":   trustDomain,
		"ClusterName":   "CLUSTER",
		"ClusterDomain": "cluster.local",
		"PodMeta":       pod,
		"PodSpec":       spec,
	})
	if err != nil {
		return "", fmt.Errorf("ClusterSPIFFEID %s: spiffeIDTemplate: %w", c.Name, err)
	}
	return b.String(), nil
}

// HelperConf is what these checks read of a spiffe-helper configuration
// (HCL): its top-level string settings and its jwt_svids.
type HelperConf struct {
	Settings map[string]string
	// JWTSVIDs maps each jwt_svid_file_name to its jwt_audience.
	JWTSVIDs map[string]string
}

var (
	helperSetting = regexp.MustCompile(`(?m)^\s*([a-z_]+)\s*=\s*"([^"]*)"\s*$`)
	helperJWTSVID = regexp.MustCompile(`\{\s*jwt_audience\s*=\s*"([^"]+)"\s*,\s*jwt_svid_file_name\s*=\s*"([^"]+)"\s*\}`)
)

// ParseHelperConf reads the settings these checks use from a
// spiffe-helper configuration.
func ParseHelperConf(src string) HelperConf {
	hc := HelperConf{Settings: map[string]string{}, JWTSVIDs: map[string]string{}}
	for _, m := range helperSetting.FindAllStringSubmatch(src, -1) {
		hc.Settings[m[1]] = m[2]
	}
	for _, m := range helperJWTSVID.FindAllStringSubmatch(src, -1) {
		hc.JWTSVIDs[m[2]] = m[1]
	}
	return hc
}

// Entry is one `spire-server entry create` of a shell script.
type Entry struct {
	SPIFFEID  string
	Selectors []string
}

var entryCreate = regexp.MustCompile(`spire-server entry create((?:[^\n]*\\\n)*[^\n]*)`)

// ParseEntries finds the registration entries a script creates.
func ParseEntries(src string) []Entry {
	src = regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(src, "")
	var out []Entry
	for _, m := range entryCreate.FindAllStringSubmatch(src, -1) {
		f := regexp.MustCompile(`\s+`).Split(regexp.MustCompile(`\\\n`).ReplaceAllString(m[1], " "), -1)
		var e Entry
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "-spiffeID":
				e.SPIFFEID = f[i+1]
			case "-selector":
				e.Selectors = append(e.Selectors, f[i+1])
			}
		}
		if e.SPIFFEID != "" {
			out = append(out, e)
		}
	}
	return out
}
