package validate

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
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

// kustomizations lists every directory under dir (relative to the
// repository) with a kustomization.yaml that is not a Component (those are
// built as part of the overlays that use them).
func kustomizations(t *testing.T, dir string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(repoPath(dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		var k struct {
			Kind string `json:"kind"`
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if k.Kind == "Component" {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		dirs = append(dirs, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

// scaledOut checks a rendering that runs two or more replicas: an
// autoscaler from at least min, over a shared replay store.
func scaledOut(t *testing.T, m *Manifests, min int32) {
	t.Helper()
	dep, ctr, err := m.Extauthz()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.HPAs) != 1 || m.HPAs[0].Spec.MinReplicas == nil || *m.HPAs[0].Spec.MinReplicas < min {
		t.Errorf("want a HorizontalPodAutoscaler from %d replicas up", min)
	}
	if dep.Spec.Replicas != nil && *dep.Spec.Replicas < min {
		t.Errorf("Deployment replicas %d, want at least %d", *dep.Spec.Replicas, min)
	}
	if ReplayStoreIsMemory(ctr) {
		t.Error("several replicas with the memory replay store")
	}
}

// singleReplica checks a rendering that runs one replica and the memory
// replay store.
func singleReplica(t *testing.T, m *Manifests) {
	t.Helper()
	dep, ctr, err := m.Extauthz()
	if err != nil {
		t.Fatal(err)
	}
	if e := Env(ctr, "EXTAUTHZ_REPLAY_STORE"); e != nil && e.Value != "memory" {
		t.Errorf("EXTAUTHZ_REPLAY_STORE = %v; want the default memory store", e)
	}
	if n := m.MaxReplicas(dep); n != 1 || len(m.HPAs) != 0 {
		t.Errorf("up to %d replicas, %d autoscalers: want exactly one replica with the memory store", n, len(m.HPAs))
	}
}

func TestKustomize(t *testing.T) {
	expect := map[string]func(t *testing.T, m *Manifests){
		"deploy/kubernetes/base": singleReplica,
		"deploy/kubernetes/overlays/redis": func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "redis://redis:6379/0" {
				t.Errorf("redis overlay: EXTAUTHZ_REPLAY_STORE = %v, want redis://redis:6379/0", e)
			}
			scaledOut(t, m, 2)
		},
		"deploy/kubernetes/overlays/production": func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("production overlay: EXTAUTHZ_REPLAY_STORE must come from a Secret, got %v", e)
			}
			scaledOut(t, m, 3)
		},
	}
	dirs := kustomizations(t, "deploy/kubernetes")
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
			if len(m.PDBs) != 1 || len(m.NetworkPolicies) == 0 {
				t.Errorf("want a PodDisruptionBudget and NetworkPolicies, got %d, %d", len(m.PDBs), len(m.NetworkPolicies))
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

// memoryWithReplicas is the start of the chart's refusal of several
// replicas with the memory replay store; the rest names what to set.
const memoryWithReplicas = "but the replay store is memory (replayStore.url): every replica would keep its own jti store, so a client assertion or DPoP proof could be used once on each replica"

func TestHelm(t *testing.T) {
	helm := helmBin(t)
	home := t.TempDir()
	chart := repoPath(chartDir)
	// No --kube-version: helm then assumes a built-in version (v1.20 for a
	// helm built with go install), which a kubeVersion constraint refuses.
	for _, args := range [][]string{nil, {"--set", "redis.enabled=true"}, {"--set", "redis.enabled=true,autoscaling.enabled=true"}} {
		if out, err := Helm(helm, home, append([]string{"lint", "--strict", chart}, args...)...); err != nil {
			t.Fatalf("helm lint: %v\n%s", err, out)
		}
	}
	template := func(t *testing.T, set ...string) ([]byte, error) {
		t.Helper()
		args := []string{"template", "extauthz", chart, "--namespace", namespace}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		return Helm(helm, home, args...)
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
			singleReplica(t, m)
			if dep, _, _ := m.Extauthz(); dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
				t.Errorf("want replicas: 1 by default")
			}
			if len(m.PDBs) != 1 || len(m.NetworkPolicies) != 1 || len(m.ServiceMonitors) != 0 {
				t.Errorf("want a PDB, a NetworkPolicy and no ServiceMonitor by default")
			}
		}},
		{"replicas 2 with redis", []string{"replicaCount=2", "replayStore.url=redis://redis.example.internal:6379/0"}, func(t *testing.T, m *Manifests) {
			if dep, _, _ := m.Extauthz(); dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 || len(m.HPAs) != 0 {
				t.Errorf("want 2 replicas and no HPA")
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
		{"in-cluster redis, autoscaling", []string{"redis.enabled=true", "autoscaling.enabled=true"}, func(t *testing.T, m *Manifests) {
			scaledOut(t, m, 2)
			if dep, _, _ := m.Extauthz(); dep.Spec.Replicas != nil {
				t.Errorf("with autoscaling on, the Deployment must leave replicas to the HPA")
			}
		}},
		{"external redis", []string{"replayStore.url=rediss://redis.example.internal:6380/0", "autoscaling.enabled=true"}, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.Value != "rediss://redis.example.internal:6380/0" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v", e)
			}
			scaledOut(t, m, 2)
		}},
		{"redis URL from a secret", []string{"replayStore.existingSecret=replay", "replicaCount=3"}, func(t *testing.T, m *Manifests) {
			if e := replayStoreEnv(t, m); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "replay" || e.ValueFrom.SecretKeyRef.Key != "url" {
				t.Errorf("EXTAUTHZ_REPLAY_STORE = %v, want secret replay key url", e)
			}
		}},
		{"memory with replicas, on purpose", []string{"replicaCount=2", "replayStore.allowMemoryWithReplicas=true"}, func(t *testing.T, m *Manifests) {
			if dep, _, _ := m.Extauthz(); dep.Annotations[MemoryReplayStoreAccepted] != "true" || *dep.Spec.Replicas != 2 {
				t.Errorf("want 2 replicas and the %s annotation", MemoryReplayStoreAccepted)
			}
		}},
		{"fixed replicas, service monitor", []string{"replicaCount=3", "redis.enabled=true", "serviceMonitor.enabled=true", "podDisruptionBudget.enabled=false", "networkPolicy.enabled=false"}, func(t *testing.T, m *Manifests) {
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
		{"no preStop hook", []string{"preStopSleepSeconds=0"}, func(t *testing.T, m *Manifests) {
			dep, ctr, _ := m.Extauthz()
			if ctr.Lifecycle != nil || *dep.Spec.Template.Spec.TerminationGracePeriodSeconds != 25 {
				t.Errorf("want no lifecycle and a grace of 10s + shutdownGrace, got %v, %d", ctr.Lifecycle, *dep.Spec.Template.Spec.TerminationGracePeriodSeconds)
			}
		}},
		{"grpc mTLS from a Secret", []string{"grpcTLS.secretName=extauthz-grpc-tls"}, func(t *testing.T, m *Manifests) {
			dep, ctr, _ := m.Extauthz()
			for flag, want := range map[string]string{"--grpc-tls-cert": "/etc/extauthz/grpc-tls/tls.crt", "--grpc-tls-key": "/etc/extauthz/grpc-tls/tls.key", "--grpc-client-ca": "/etc/extauthz/grpc-tls/ca.crt"} {
				if got := FlagValues(ctr.Args, flag); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want %s", flag, got, want)
				}
			}
			found := false
			for _, v := range dep.Spec.Template.Spec.Volumes {
				found = found || (v.Secret != nil && v.Secret.SecretName == "extauthz-grpc-tls")
			}
			if !found {
				t.Error("the Secret extauthz-grpc-tls is not a volume")
			}
		}},
		{"grpc TLS without client certificates", []string{"grpcTLS.secretName=extauthz-grpc-tls", "grpcTLS.requireClientCert=false"}, func(t *testing.T, m *Manifests) {
			_, ctr, _ := m.Extauthz()
			if len(FlagValues(ctr.Args, "--grpc-tls-cert")) != 1 || len(FlagValues(ctr.Args, "--grpc-client-ca")) != 0 {
				t.Errorf("want --grpc-tls-cert and no --grpc-client-ca: %q", ctr.Args)
			}
		}},
		{"grpc mTLS with SPIFFE", []string{"grpcTLS.spiffe.enabled=true", "grpcTLS.spiffe.authorizedIDs[0]=spiffe://example.org/ns/istio-system/sa/istio-ingressgateway", "grpcTLS.spiffe.trustDomains[0]=example.org"}, func(t *testing.T, m *Manifests) {
			_, ctr, _ := m.Extauthz()
			if got := FlagValues(ctr.Args, "--grpc-spiffe-socket"); len(got) != 1 || got[0] != "unix:///spiffe-workload-api/spire-agent.sock" {
				t.Errorf("--grpc-spiffe-socket = %q", got)
			}
			if len(FlagValues(ctr.Args, "--grpc-spiffe-authorized-id")) != 1 || len(FlagValues(ctr.Args, "--grpc-spiffe-trust-domain")) != 1 {
				t.Errorf("want one authorized ID and one trust domain: %q", ctr.Args)
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
			out, err := template(t, v.set...)
			if err != nil {
				t.Fatal(err)
			}
			v.check(t, checkRendering(t, out))
		})
	}
	t.Run("the same for any Kubernetes version", func(t *testing.T) {
		without, err := template(t)
		if err != nil {
			t.Fatal(err)
		}
		with, err := Helm(helm, home, "template", "extauthz", chart, "--namespace", namespace, "--kube-version", KubeVersion)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(with, without) {
			t.Error("helm template renders differently with --kube-version: a template depends on .Capabilities, which helm template cannot know")
		}
	})
	refused := []struct {
		name string
		set  []string
		want []string
	}{
		{"replicas 2 without redis", []string{"replicaCount=2"}, []string{"replicaCount is 2, " + memoryWithReplicas, "replayStore.url=redis://", "redis.enabled=true", "replicaCount=1", "replayStore.allowMemoryWithReplicas=true"}},
		{"autoscaling without redis", []string{"autoscaling.enabled=true"}, []string{"autoscaling.enabled with maxReplicas 6, " + memoryWithReplicas}},
		{"replay store in extraArgs", []string{"extraArgs[0]=--replay-store=redis://r:6379/0", "replicaCount=2"}, []string{`extraArgs sets "--replay-store=redis://r:6379/0"`, "replayStore.url"}},
		{"replay store in extraEnv", []string{"extraEnv[0].name=EXTAUTHZ_REPLAY_STORE", "extraEnv[0].value=memory"}, []string{"extraEnv sets EXTAUTHZ_REPLAY_STORE", "replayStore.url"}},
		{"grpc TLS from files and SPIFFE", []string{"grpcTLS.secretName=x", "grpcTLS.spiffe.enabled=true", "grpcTLS.spiffe.trustDomains[0]=example.org"}, []string{"grpcTLS.secretName and grpcTLS.spiffe.enabled exclude each other"}},
		{"SPIFFE without authorized clients", []string{"grpcTLS.spiffe.enabled=true"}, []string{"grpcTLS.spiffe.enabled needs grpcTLS.spiffe.authorizedIDs or grpcTLS.spiffe.trustDomains"}},
		{"unknown value", []string{"replicaCont=3"}, []string{"replicaCont"}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := template(t, c.set...)
			wantErr(t, err, c.want...)
		})
	}
	t.Run("the documented refusal", func(t *testing.T) {
		_, err := template(t, "replicaCount=2")
		wantErr(t, err, memoryWithReplicas)
		msg := err.Error()[strings.Index(err.Error(), "Error: execution error"):]
		msg, _, _ = strings.Cut(msg, "\n")
		if !strings.Contains(string(readRepo(t, "docs/deployment-configs.md")), msg) {
			t.Errorf("docs/deployment-configs.md does not quote helm's refusal as it is:\n%s", msg)
		}
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
		{"unknown field", "  replicas: 1\n", "  replicass: 1\n", `unknown field "spec.replicass"`},
		{"field in the wrong case", "  replicas: 1\n", "  Replicas: 1\n", `unknown field "spec.Replicas"`},
		{"duplicate field", "  replicas: 1\n", "  replicas: 1\n  replicas: 3\n", "replicas"},
		{"wrong type", "  replicas: 1\n", "  replicas: two\n", "replicas"},
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
				data = mustReplace(t, data, "  replicas: 1\n", "  replicass: 1\n")
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

	out, err := Kustomize(repoPath("deploy/kubernetes/overlays/redis"))
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
		{"autoscaler from one replica", func(m *Manifests) { m.HPAs[0].Spec.MinReplicas = new(int32(1)) }, "minReplicas"},
		{"replicas with the memory store", func(m *Manifests) { _, c, _ := m.Extauthz(); Env(c, "EXTAUTHZ_REPLAY_STORE").Value = "memory" }, "up to 6 replicas with the memory replay store"},
		{"TLS files outside any mount", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			c.Args = append(c.Args, "--grpc-tls-cert=/tls/tls.crt", "--grpc-tls-key=/tls/tls.key")
		}, "--grpc-tls-cert /tls/tls.crt is in no mounted volume"},
		{"TLS cert without key", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			c.Args = append(c.Args, "--grpc-tls-cert=/etc/extauthz/policy/tls.crt")
		}, "go together"},
		{"TLS files in a ConfigMap", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			c.Args = append(c.Args, "--grpc-tls-cert=/etc/extauthz/policy/tls.crt", "--grpc-tls-key=/etc/extauthz/policy/tls.key")
		}, "is not a Secret"},
		{"SPIFFE socket without the CSI driver", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			c.Args = append(c.Args, "--grpc-spiffe-socket=unix:///run/spire/agent.sock", "--grpc-spiffe-trust-domain=example.org")
		}, "SPIFFE CSI driver"},
		{"replicas with the memory store in args", func(m *Manifests) {
			_, c, _ := m.Extauthz()
			c.Args = append(c.Args, "--replay-store", "memory")
		}, "memory replay store"},
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
