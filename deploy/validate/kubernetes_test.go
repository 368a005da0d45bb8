package validate

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
)

const namespace = "extauthz"

// checkRendering decodes a rendering strictly, checks the invariants, and
// loads the policy ConfigMap (when rendered) with extauthz.
func checkRendering(t *testing.T, rendered []byte) *Manifests {
	t.Helper()
	objs, err := DecodeAll(rendered)
	if err != nil {
		t.Fatal(err)
	}
	m := Index(objs)
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if _, cm, err := m.PolicyConfigMap(); err != nil {
		t.Fatal(err)
	} else if cm != nil {
		checkPolicyConfigMap(t, cm)
	}
	return m
}

// checkPolicyConfigMap writes the ConfigMap's files as Kubernetes mounts
// them and loads them as extauthz serve would.
func checkPolicyConfigMap(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	dir := t.TempDir()
	policies := 0
	for name, data := range cm.Data {
		if ext := filepath.Ext(name); ext == ".yaml" || ext == ".yml" {
			if _, err := ReadPolicyFile("ConfigMap "+cm.Name+": "+name, []byte(data)); err != nil {
				t.Fatal(err)
			}
			policies++
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range cm.BinaryData {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if policies == 0 {
		t.Fatalf("ConfigMap %s holds no *.yaml policy file", cm.Name)
	}
	if err := ValidatePolicy(extauthz(t), dir); err != nil {
		t.Fatal(err)
	}
}

func replayStoreEnv(t *testing.T, m *Manifests) *corev1.EnvVar {
	t.Helper()
	_, ctr, err := m.Extauthz()
	if err != nil {
		t.Fatal(err)
	}
	return Env(ctr, "EXTAUTHZ_REPLAY_STORE")
}

// kustomizations lists every directory under deploy/kubernetes with a
// kustomization.yaml, relative to the repository.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(repoPath("deploy/kubernetes"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

func TestKustomize(t *testing.T) {
	expect := map[string]func(t *testing.T, m *Manifests){
		"deploy/kubernetes/base": func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e != nil {
				t.Errorf("base: EXTAUTHZ_REPLAY_STORE is set (%v); the base uses the default memory store", e)
			}
		},
		"deploy/kubernetes/overlays/redis": func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "redis://redis:6379/0" {
				t.Errorf("redis overlay: EXTAUTHZ_REPLAY_STORE = %v, want redis://redis:6379/0", e)
			}
		},
		"deploy/kubernetes/overlays/production": func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("production overlay: EXTAUTHZ_REPLAY_STORE must come from a Secret, got %v", e)
			}
			dep, _, _ := m.Extauthz()
			if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 3 || len(m.HPAs) != 1 || *m.HPAs[0].Spec.MinReplicas < 3 {
				t.Errorf("production overlay: want 3 or more replicas")
			}
		},
	}
	dirs := kustomizations(t)
	for _, dir := range dirs {
		t.Run(strings.TrimPrefix(dir, "deploy/kubernetes/"), func(t *testing.T) {
			out, err := Kustomize(repoPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			m := checkRendering(t, out)
			for _, o := range m.All {
				if o.Kind != "Namespace" && o.Namespace != namespace {
					t.Errorf("%s: namespace %q, want %s", o, o.Namespace, namespace)
				}
			}
			if len(m.PDBs) != 1 || len(m.HPAs) != 1 || len(m.NetworkPolicies) == 0 {
				t.Errorf("want a PodDisruptionBudget, a HorizontalPodAutoscaler and NetworkPolicies, got %d, %d, %d", len(m.PDBs), len(m.HPAs), len(m.NetworkPolicies))
			}
			check, ok := expect[dir]
			if !ok {
				t.Fatalf("%s: a kustomization this test does not know: add its expectations", dir)
			}
			check(t, m)
		})
	}
	if len(dirs) != len(expect) {
		t.Errorf("kustomizations %v, want %d", dirs, len(expect))
	}
}

const chartDir = "deploy/helm/extauthz"

func TestHelm(t *testing.T) {
	helm := helmBin(t)
	home := t.TempDir()
	chart := repoPath(chartDir)
	for _, args := range [][]string{nil, {"--set", "redis.enabled=true"}} {
		if out, err := Helm(helm, home, append([]string{"lint", "--strict", "--kube-version", KubeVersion, chart}, args...)...); err != nil {
			t.Fatalf("helm lint: %v\n%s", err, out)
		}
	}
	variants := []struct {
		name  string
		set   []string
		check func(t *testing.T, m *Manifests)
	}{
		{"defaults", nil, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "memory" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v, want memory", e)
			}
			if len(m.HPAs) != 1 || len(m.PDBs) != 1 || len(m.NetworkPolicies) != 1 || len(m.ServiceMonitors) != 0 {
				t.Errorf("want an HPA, a PDB, a NetworkPolicy and no ServiceMonitor by default")
			}
			if dep, _, _ := m.Extauthz(); dep.Spec.Replicas != nil {
				t.Errorf("with autoscaling on, the Deployment must leave replicas to the HPA")
			}
		}},
		{"in-cluster redis", []string{"redis.enabled=true"}, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "redis://extauthz-redis:6379/0" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v, want redis://extauthz-redis:6379/0", e)
			}
			if len(m.Deployments) != 2 || len(m.NetworkPolicies) != 2 {
				t.Errorf("want the Redis Deployment and its NetworkPolicy")
			}
		}},
		{"external redis", []string{"replayStore.url=rediss://redis.example.internal:6380/0"}, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "rediss://redis.example.internal:6380/0" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v", e)
			}
		}},
		{"redis URL from a secret", []string{"replayStore.existingSecret=replay"}, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "replay" || e.ValueFrom.SecretKeyRef.Key != "url" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v, want secret replay key url", e)
			}
		}},
		{"fixed replicas, service monitor", []string{"autoscaling.enabled=false", "replicaCount=3", "serviceMonitor.enabled=true", "podDisruptionBudget.enabled=false", "networkPolicy.enabled=false"}, func(t *testing.T, m *Manifests) {
			if dep, _, _ := m.Extauthz(); dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
				t.Errorf("want 3 replicas")
			}
			if len(m.HPAs)+len(m.PDBs)+len(m.NetworkPolicies) != 0 || len(m.ServiceMonitors) != 1 {
				t.Errorf("want no HPA, PDB, NetworkPolicy and a ServiceMonitor")
			}
			if m.ServiceMonitors[0].Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor must scrape /metrics")
			}
		}},
		{"existing policy ConfigMap", []string{"policy.existingConfigMap=my-policy"}, func(t *testing.T, m *Manifests) {
			name, cm, err := m.PolicyConfigMap()
			if err != nil || name != "my-policy" || cm != nil || len(m.ConfigMaps) != 0 {
				t.Errorf("want the pods to mount my-policy and no ConfigMap rendered, got %q %v", name, err)
			}
		}},
		{"inline policy", []string{"policy.files.a\\.yaml=version: v1\ndefault_action: allow\n"}, func(t *testing.T, m *Manifests) {
			_, cm, _ := m.PolicyConfigMap()
			if cm == nil || len(cm.Data) != 1 || cm.Data["a.yaml"] == "" {
				t.Errorf("want the inline policy file a.yaml only, got %v", cm)
			}
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			args := []string{"template", "extauthz", chart, "--namespace", namespace, "--kube-version", KubeVersion}
			for _, s := range v.set {
				args = append(args, "--set", s)
			}
			out, err := Helm(helm, home, args...)
			if err != nil {
				t.Fatal(err)
			}
			v.check(t, checkRendering(t, out))
		})
	}
	t.Run("unknown value", func(t *testing.T) {
		_, err := Helm(helm, home, "template", "extauthz", chart, "--kube-version", KubeVersion, "--set", "replicaCont=3")
		wantErr(t, err, "replicaCont")
	})
	t.Run("same example policy as the kustomize base", func(t *testing.T) {
		if !bytes.Equal(readRepo(t, chartDir+"/files/policy.yaml"), readRepo(t, "deploy/kubernetes/base/policy/policy.yaml")) {
			t.Error("deploy/helm/extauthz/files/policy.yaml and deploy/kubernetes/base/policy/policy.yaml differ: keep them the same")
		}
	})
}

// TestBrokenManifests proves the strict decoding and the invariants catch
// what they are for.
func TestBrokenManifests(t *testing.T) {
	dep := readRepo(t, "deploy/kubernetes/base/deployment.yaml")
	if _, err := DecodeStrict(dep); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", "  replicas: 2\n", "  replicass: 2\n", `unknown field "spec.replicass"`},
		{"field in the wrong case", "  replicas: 2\n", "  Replicas: 2\n", `unknown field "spec.Replicas"`},
		{"duplicate field", "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "replicas"},
		{"wrong type", "  replicas: 2\n", "  replicas: two\n", "replicas"},
		{"unknown nested field", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnt", "Deploymnt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeStrict(mustReplace(t, dep, c.old, c.new))
			wantErr(t, err, c.want)
		})
	}

	t.Run("kustomization with a broken manifest", func(t *testing.T) {
		dir := t.TempDir()
		base := repoPath("deploy/kubernetes/base")
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if rel == "deployment.yaml" {
				data = mustReplace(t, data, "  replicas: 2\n", "  replicass: 2\n")
			}
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := Kustomize(dir)
		if err != nil {
			t.Fatal(err) // kustomize does not know the schema; the decoding must catch it
		}
		_, err = DecodeAll(out)
		wantErr(t, err, "replicass")
	})

	out, err := Kustomize(repoPath("deploy/kubernetes/base"))
	if err != nil {
		t.Fatal(err)
	}
	invariants := []struct {
		name   string
		break_ func(m *Manifests)
		want   string
	}{
		{"no readiness probe", func(m *Manifests) { _, c, _ := m.Extauthz(); c.ReadinessProbe = nil }, "readiness"},
		{"writable root filesystem", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			f := false
			c.SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		{"root", func(m *Manifests) {
			d, c, _ := m.Extauthz()
			c.SecurityContext.RunAsNonRoot = nil
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot"},
		{"capabilities kept", func(m *Manifests) { _, c, _ := m.Extauthz(); c.SecurityContext.Capabilities = nil }, "drop ALL"},
		{"policy via subPath", func(m *Manifests) { _, c, _ := m.Extauthz(); c.VolumeMounts[0].SubPath = "policy.yaml" }, "subPath"},
		{"service to a missing port", func(m *Manifests) { m.Services[0].Spec.Ports[0].TargetPort.StrVal = "grcp" }, "grcp"},
		{"one replica", func(m *Manifests) { m.HPAs[0].Spec.MinReplicas = new(int32(1)) }, "minReplicas"},
		{"PDB selects nothing", func(m *Manifests) { m.PDBs[0].Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "x" }, "PodDisruptionBudget"},
		{"grace shorter than the drain", func(m *Manifests) {
			d, _, _ := m.Extauthz()
			d.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(10))
		}, "terminationGracePeriodSeconds"},
	}
	for _, c := range invariants {
		t.Run(c.name, func(t *testing.T) {
			objs, err := DecodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			m := Index(objs)
			c.break_(m)
			wantErr(t, m.Check(), c.want)
		})
	}
	t.Run("service monitor selecting nothing", func(t *testing.T) {
		objs, _ := DecodeAll(out)
		m := Index(objs)
		sm := &monitoringv1.ServiceMonitor{}
		sm.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "nothing"}
		m.ServiceMonitors = append(m.ServiceMonitors, sm)
		wantErr(t, m.Check(), "ServiceMonitor")
	})
}
