package validate

import (
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// spirePolicy is the part of a deploy/spire policy these checks read.
type spirePolicy struct {
	Issuers []struct {
		Name              string            `json:"name"`
		JWKSURI           string            `json:"jwks_uri"`
		SPIFFETrustDomain string            `json:"spiffe_trust_domain"`
		ClientIDs         map[string]string `json:"client_ids"`
		SPIFFE            *struct {
			TrustDomain       string `json:"trust_domain"`
			WorkloadAPISocket string `json:"workload_api_socket"`
			BundleFile        string `json:"bundle_file"`
		} `json:"spiffe"`
	} `json:"issuers"`
	Rules []struct {
		Name            string `json:"name"`
		ClientAssertion *struct {
			Audiences []string `json:"audiences"`
		} `json:"client_assertion"`
		Bearer *struct {
			Audiences []string `json:"audiences"`
		} `json:"bearer"`
	} `json:"rules"`
}

// audiences are the audiences of the policy's client_assertion and bearer
// rules.
func (p *spirePolicy) audiences() (assertion, bearer []string) {
	for _, r := range p.Rules {
		if r.ClientAssertion != nil {
			assertion = append(assertion, r.ClientAssertion.Audiences...)
		}
		if r.Bearer != nil {
			bearer = append(bearer, r.Bearer.Audiences...)
		}
	}
	return assertion, bearer
}

// container returns the named container or native sidecar of a pod.
func container(pod *corev1.PodSpec, name string) *corev1.Container {
	for _, l := range [][]corev1.Container{pod.Containers, pod.InitContainers} {
		for i := range l {
			if l[i].Name == name {
				return &l[i]
			}
		}
	}
	return nil
}

// renderedConfigMap returns the ConfigMap that the pod's volume named
// volume refers to, with kustomize's hash suffix resolved.
func renderedConfigMap(t *testing.T, m *Manifests, pod *corev1.PodSpec, volume string) *corev1.ConfigMap {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name != volume || v.ConfigMap == nil {
			continue
		}
		for _, cm := range m.ConfigMaps {
			if cm.Name == v.ConfigMap.Name {
				return cm
			}
		}
		t.Fatalf("volume %s: ConfigMap %s is not rendered", volume, v.ConfigMap.Name)
	}
	t.Fatalf("no ConfigMap volume %s", volume)
	return nil
}

// spiffeCSI checks that path lies in a volume of the SPIFFE CSI driver
// mounted read-only in ctr.
func spiffeCSI(t *testing.T, pod *corev1.PodSpec, ctr *corev1.Container, what, p string) {
	t.Helper()
	v, vm := MountedVolume(pod, ctr, p)
	if v == nil || v.CSI == nil || v.CSI.Driver != "csi.spiffe.io" || !vm.ReadOnly {
		t.Errorf("%s %s: not in a read-only volume of the SPIFFE CSI driver in container %s", what, p, ctr.Name)
	}
}

// checkHelper checks a spiffe-helper native sidecar and its configuration:
// it talks to the agent through the CSI driver's socket, writes into a
// volume it shares with the container that reads the files, and holds
// that container back until it is ready. It returns the configuration and
// the path, as reader sees it, of the helper's cert_dir.
func checkHelper(t *testing.T, m *Manifests, d *appsv1.Deployment, reader string) (HelperConf, string) {
	t.Helper()
	pod := &d.Spec.Template.Spec
	h := container(pod, "spiffe-helper")
	if h == nil || h.RestartPolicy == nil || *h.RestartPolicy != corev1.ContainerRestartPolicyAlways || h.StartupProbe == nil {
		t.Fatalf("Deployment %s: spiffe-helper must be a native sidecar (initContainer, restartPolicy Always) with a startupProbe", d.Name)
	}
	var conf string
	for _, vm := range h.VolumeMounts {
		if vm.MountPath == "/etc/spiffe-helper" {
			conf = renderedConfigMap(t, m, pod, vm.Name).Data["helper.conf"]
		}
	}
	if conf == "" {
		t.Fatalf("Deployment %s: no helper.conf mounted at /etc/spiffe-helper", d.Name)
	}
	if !slices.Contains(h.Args, "/etc/spiffe-helper/helper.conf") {
		t.Errorf("spiffe-helper args %q do not name /etc/spiffe-helper/helper.conf", h.Args)
	}
	hc := ParseHelperConf(conf)
	spiffeCSI(t, pod, h, "helper.conf agent_address", hc.Settings["agent_address"])
	dir := hc.Settings["cert_dir"]
	var shared string
	for _, vm := range h.VolumeMounts {
		if vm.MountPath == dir && !vm.ReadOnly {
			for _, rm := range container(pod, reader).VolumeMounts {
				if rm.Name == vm.Name {
					shared = rm.MountPath
				}
			}
		}
	}
	if shared == "" {
		t.Fatalf("Deployment %s: helper.conf cert_dir %s is not a writable volume that container %s also mounts", d.Name, dir, reader)
	}
	return hc, shared
}

// TestSpire builds every kustomization of deploy/spire and checks each as
// the Kubernetes manifests are checked (strict decoding, invariants, the
// policy loaded by extauthz validate), and what joins its pieces: sockets
// in the CSI driver's volume, spiffe-helper's files where the policy and
// the client read them, audiences and client ids that match the rules.
func TestSpire(t *testing.T) {
	extauthzOverlay := func(check func(t *testing.T, m *Manifests, pol *spirePolicy)) func(t *testing.T, out []byte) {
		return func(t *testing.T, out []byte) {
			m := checkRendering(t, out)
			singleReplica(t, m)
			for _, o := range m.All {
				if o.Kind != "Namespace" && o.Namespace != namespace {
					t.Errorf("%s: namespace %q, want %s", o, o.Namespace, namespace)
				}
			}
			_, cm, err := m.PolicyConfigMap()
			if err != nil || cm == nil {
				t.Fatalf("no policy ConfigMap: %v", err)
			}
			var pol spirePolicy
			if err := yaml.Unmarshal([]byte(cm.Data["policy.yaml"]), &pol); err != nil || len(pol.Issuers) != 1 {
				t.Fatalf("policy.yaml: %v, %d issuers, want 1", err, len(pol.Issuers))
			}
			if got := pol.Issuers[0].ClientIDs[clientID]; got == "" {
				t.Errorf("issuer %s: client_ids has no entry for the workload client %s", pol.Issuers[0].Name, clientID)
			}
			check(t, m, &pol)
		}
	}
	workloadAPI := func(t *testing.T, m *Manifests, pol *spirePolicy) {
		dep, ctr, _ := m.Extauthz()
		s := pol.Issuers[0].SPIFFE
		if s == nil || s.TrustDomain != trustDomain || s.WorkloadAPISocket != "unix://"+agentSocket {
			t.Fatalf("issuer: want spiffe trust_domain %s, workload_api_socket unix://%s", trustDomain, agentSocket)
		}
		spiffeCSI(t, &dep.Spec.Template.Spec, ctr, "workload_api_socket", strings.TrimPrefix(s.WorkloadAPISocket, "unix://"))
	}
	expect := map[string]func(t *testing.T, out []byte){
		"deploy/spire/workload-api": extauthzOverlay(func(t *testing.T, m *Manifests, pol *spirePolicy) {
			workloadAPI(t, m, pol)
			if _, ctr, _ := m.Extauthz(); len(FlagValues(ctr.Args, "--grpc-spiffe-socket")) != 0 {
				t.Error("workload-api: the gRPC listener must stay plaintext (grpc-mtls adds SPIFFE mTLS)")
			}
		}),
		"deploy/spire/grpc-mtls": extauthzOverlay(func(t *testing.T, m *Manifests, pol *spirePolicy) {
			workloadAPI(t, m, pol)
			_, ctr, _ := m.Extauthz()
			if got := FlagValues(ctr.Args, "--grpc-spiffe-socket"); len(got) != 1 || got[0] != pol.Issuers[0].SPIFFE.WorkloadAPISocket {
				t.Errorf("--grpc-spiffe-socket %q, want the policy's socket", got)
			}
			if got := FlagValues(ctr.Args, "--grpc-spiffe-authorized-id"); len(got) != 1 || got[0] != envoyID {
				t.Errorf("--grpc-spiffe-authorized-id %q, want Envoy's %s", got, envoyID)
			}
		}),
		"deploy/spire/spiffe-helper": extauthzOverlay(func(t *testing.T, m *Manifests, pol *spirePolicy) {
			dep, _, _ := m.Extauthz()
			hc, dir := checkHelper(t, m, dep, ContainerName)
			s := pol.Issuers[0].SPIFFE
			if want := path.Join(dir, hc.Settings["jwt_bundle_file_name"]); s == nil || s.BundleFile != want {
				t.Errorf("issuer bundle_file %v, want %s, where spiffe-helper writes it", s, want)
			}
		}),
		"deploy/spire/oidc-discovery": extauthzOverlay(func(t *testing.T, m *Manifests, pol *spirePolicy) {
			is := pol.Issuers[0]
			if !strings.HasPrefix(is.JWKSURI, "https://") || is.SPIFFETrustDomain != trustDomain {
				t.Errorf("issuer: jwks_uri %q, spiffe_trust_domain %q: want https and %s", is.JWKSURI, is.SPIFFETrustDomain, trustDomain)
			}
			dep, _, _ := m.Extauthz()
			for _, v := range dep.Spec.Template.Spec.Volumes {
				if v.CSI != nil {
					t.Errorf("oidc-discovery needs no agent socket, but mounts %s", v.Name)
				}
			}
		}),
		"deploy/spire/client": func(t *testing.T, out []byte) {
			objs, err := DecodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			m := Index(objs)
			if err := m.CheckWorkloads(); err != nil {
				t.Fatal(err)
			}
			if len(m.Deployments) != 1 || len(m.ServiceAccounts) != 1 {
				t.Fatalf("want the client Deployment and its ServiceAccount")
			}
			d := m.Deployments[0]
			hc, dir := checkHelper(t, m, d, "client")
			client := container(&d.Spec.Template.Spec, "client")
			script := strings.Join(append(append([]string{}, client.Command...), client.Args...), " ")
			// Each JWT-SVID the helper writes is read by the client and
			// carries an audience of a rule of the policies.
			var pol spirePolicy
			if err := yaml.Unmarshal(readRepo(t, "deploy/spire/workload-api/policy.yaml"), &pol); err != nil {
				t.Fatal(err)
			}
			assertion, bearer := pol.audiences()
			aud := hc.JWTSVIDs["client-assertion.jwt"]
			if !slices.Contains(assertion, aud) {
				t.Errorf("client-assertion.jwt audience %q is no client_assertion audience of the policies (%q)", aud, assertion)
			}
			if !strings.Contains(script, "client_assertion=$(cat "+path.Join(dir, "client-assertion.jwt")+")") {
				t.Errorf("the client does not send %s as its client_assertion", path.Join(dir, "client-assertion.jwt"))
			}
			if aud := hc.JWTSVIDs["api-token.jwt"]; !slices.Contains(bearer, aud) {
				t.Errorf("api-token.jwt audience %q is no bearer audience of the policies (%q)", aud, bearer)
			}
			for _, o := range m.All {
				if o.Namespace != "applications" {
					t.Errorf("%s: namespace %q, want applications", o, o.Namespace)
				}
			}
		},
	}
	dirs := kustomizations(t, "deploy/spire")
	for _, dir := range dirs {
		t.Run(strings.TrimPrefix(dir, "deploy/spire/"), func(t *testing.T) {
			check, ok := expect[dir]
			if !ok {
				t.Fatalf("%s: a kustomization this test does not know: add its expectations", dir)
			}
			out, err := Kustomize(repoPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			check(t, out)
		})
	}
	if len(dirs) != len(expect) {
		t.Errorf("kustomizations %v, want %d", dirs, len(expect))
	}
}

// spirePod is a pod as spire-controller-manager sees it.
type spirePod struct {
	name     string
	nsLabels map[string]string
	meta     metav1.ObjectMeta
	spec     corev1.PodSpec
}

// TestSpireRegistration renders the ClusterSPIFFEIDs for the pods they are
// for (extauthz from the base, the client from deploy/spire/client, the
// Envoy that deploy/envoy/extauthz-cluster-spiffe.yaml configures) and
// checks the IDs against what uses them, and entries.sh against them.
func TestSpireRegistration(t *testing.T) {
	objs, err := DecodeAll(readRepo(t, "deploy/spire/registration/clusterspiffeids.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []*ClusterSPIFFEID
	for _, o := range objs {
		c, ok := o.Obj.(*ClusterSPIFFEID)
		if !ok {
			t.Fatalf("clusterspiffeids.yaml: a %s", o.Kind)
		}
		ids = append(ids, c)
	}
	podOf := func(dir string) spirePod {
		out, err := Kustomize(repoPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := DecodeAll(out)
		if err != nil {
			t.Fatal(err)
		}
		d := Index(objs).Deployments[0]
		meta := d.Spec.Template.ObjectMeta
		meta.Namespace = d.Namespace
		return spirePod{name: dir, nsLabels: map[string]string{"kubernetes.io/metadata.name": d.Namespace}, meta: meta, spec: d.Spec.Template.Spec}
	}
	pods := map[string]spirePod{
		extauthzID: podOf("deploy/kubernetes/base"),
		clientID:   podOf("deploy/spire/client"),
		envoyID: {name: "the Envoy of extauthz-cluster-spiffe.yaml", nsLabels: map[string]string{"kubernetes.io/metadata.name": "edge"},
			meta: metav1.ObjectMeta{Namespace: "edge", Labels: map[string]string{"app.kubernetes.io/name": "envoy"}},
			spec: corev1.PodSpec{ServiceAccountName: "envoy"}},
	}
	used := map[string]bool{}
	for want, p := range pods {
		var got []string
		for _, c := range ids {
			ok, err := c.Selects(p.nsLabels, p.meta.Labels)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			used[c.Name] = true
			id, err := c.SPIFFEID(trustDomain, &p.meta, &p.spec)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: ClusterSPIFFEIDs give %q, want exactly %s", p.name, got, want)
		}
	}
	for _, c := range ids {
		if !used[c.Name] {
			t.Errorf("ClusterSPIFFEID %s selects none of the pods it is for", c.Name)
		}
	}

	// entries.sh creates the same entries, selected by namespace and
	// service account.
	entries := ParseEntries(string(readRepo(t, "deploy/spire/registration/entries.sh")))
	var got, want []string
	for _, e := range entries {
		sel := append([]string{}, e.Selectors...)
		sort.Strings(sel)
		got = append(got, e.SPIFFEID+" "+strings.Join(sel, " "))
	}
	for id, p := range pods {
		want = append(want, id+" k8s:ns:"+p.meta.Namespace+" k8s:sa:"+p.spec.ServiceAccountName)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("entries.sh creates\n  %q\nwant\n  %q", got, want)
	}

	// A ClusterSPIFFEID with an unknown field is refused.
	_, err = DecodeAll(mustReplace(t, readRepo(t, "deploy/spire/registration/clusterspiffeids.yaml"), "  name: extauthz\nspec:\n  spiffeIDTemplate:", "  name: extauthz\nspec:\n  spiffeIdTemplate:"))
	wantErr(t, err, "spiffeIdTemplate")
}
