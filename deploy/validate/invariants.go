package validate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The extauthz container's contract (cmd/extauthz, Dockerfile).
const (
	ContainerName   = "extauthz"
	PolicyMountPath = "/etc/extauthz/policy"
	GRPCPort        = 9001
	HTTPPort        = 9090
	NonRootUID      = 65532
)

// Manifests is a decoded rendering, indexed by kind.
type Manifests struct {
	All             []Object
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	PDBs            []*policyv1.PodDisruptionBudget
	NetworkPolicies []*networkingv1.NetworkPolicy
	ServiceMonitors []*monitoringv1.ServiceMonitor
	ServiceAccounts []*corev1.ServiceAccount
}

// Index sorts decoded objects by kind.
func Index(objs []Object) *Manifests {
	m := &Manifests{All: objs}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			m.Deployments = append(m.Deployments, v)
		case *corev1.Service:
			m.Services = append(m.Services, v)
		case *corev1.ConfigMap:
			m.ConfigMaps = append(m.ConfigMaps, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.HPAs = append(m.HPAs, v)
		case *policyv1.PodDisruptionBudget:
			m.PDBs = append(m.PDBs, v)
		case *networkingv1.NetworkPolicy:
			m.NetworkPolicies = append(m.NetworkPolicies, v)
		case *monitoringv1.ServiceMonitor:
			m.ServiceMonitors = append(m.ServiceMonitors, v)
		case *corev1.ServiceAccount:
			m.ServiceAccounts = append(m.ServiceAccounts, v)
		}
	}
	return m
}

// Extauthz returns the Deployment that runs the extauthz container and
// that container.
func (m *Manifests) Extauthz() (*appsv1.Deployment, *corev1.Container, error) {
	var dep *appsv1.Deployment
	var ctr *corev1.Container
	for _, d := range m.Deployments {
		for i := range d.Spec.Template.Spec.Containers {
			if d.Spec.Template.Spec.Containers[i].Name == ContainerName {
				if dep != nil {
					return nil, nil, errors.New("more than one Deployment runs an extauthz container")
				}
				dep, ctr = d, &d.Spec.Template.Spec.Containers[i]
			}
		}
	}
	if dep == nil {
		return nil, nil, errors.New("no Deployment runs an extauthz container")
	}
	return dep, ctr, nil
}

// PolicyConfigMap returns the name of the ConfigMap mounted as the policy
// directory, and the ConfigMap if it is part of the rendering.
func (m *Manifests) PolicyConfigMap() (string, *corev1.ConfigMap, error) {
	dep, ctr, err := m.Extauthz()
	if err != nil {
		return "", nil, err
	}
	for _, vm := range ctr.VolumeMounts {
		if vm.MountPath != PolicyMountPath {
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				for _, cm := range m.ConfigMaps {
					if cm.Name == v.ConfigMap.Name {
						return cm.Name, cm, nil
					}
				}
				return v.ConfigMap.Name, nil, nil
			}
		}
	}
	return "", nil, fmt.Errorf("no ConfigMap volume is mounted at %s", PolicyMountPath)
}

// Env returns the extauthz container's variable name, or nil.
func Env(ctr *corev1.Container, name string) *corev1.EnvVar {
	for i := range ctr.Env {
		if ctr.Env[i].Name == name {
			return &ctr.Env[i]
		}
	}
	return nil
}

// Check verifies what every rendering of the manifests must satisfy:
// hardened, probed, resourced containers; selectors that select; references
// (Services, HPA, PDB, NetworkPolicy, ServiceMonitor, volumes) that resolve;
// and extauthz run the way its image and flags expect.
func (m *Manifests) Check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := m.CheckWorkloads(); err != nil {
		errs = append(errs, err)
	}
	dep, ctr, err := m.Extauthz()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	checkExtauthz(dep, ctr, m, add)

	for _, s := range m.Services {
		if len(s.Spec.Selector) == 0 {
			add("Service %s: no selector", s.Name)
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		pods := m.podsMatching(sel)
		if len(pods) == 0 {
			add("Service %s: selects no pods", s.Name)
		}
		for _, p := range s.Spec.Ports {
			for _, d := range pods {
				if !hasPort(&d.Spec.Template.Spec, p.TargetPort) {
					add("Service %s: port %s: target %s is not a port of Deployment %s", s.Name, p.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
	for _, h := range m.HPAs {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || m.deployment(ref.Name) == nil {
			add("HorizontalPodAutoscaler %s: scales %s %s, which is not rendered", h.Name, ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			add("HorizontalPodAutoscaler %s: minReplicas must be at least 2", h.Name)
		}
		if h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			add("HorizontalPodAutoscaler %s: maxReplicas < minReplicas", h.Name)
		}
	}
	for _, p := range m.PDBs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			add("PodDisruptionBudget %s: %v", p.Name, err)
			continue
		}
		if pods := m.podsMatching(sel); len(pods) != 1 || pods[0] != dep {
			add("PodDisruptionBudget %s: selects %d Deployments, want exactly extauthz's", p.Name, len(pods))
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			add("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	for _, np := range m.NetworkPolicies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			add("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		pods := m.podsMatching(sel)
		if len(pods) == 0 {
			add("NetworkPolicy %s: selects no pods", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				add("NetworkPolicy %s: an ingress rule without from admits everyone", np.Name)
			}
			for _, port := range rule.Ports {
				for _, d := range pods {
					if port.Port != nil && !hasPort(&d.Spec.Template.Spec, *port.Port) {
						add("NetworkPolicy %s: port %s is not a port of Deployment %s", np.Name, port.Port.String(), d.Name)
					}
				}
			}
		}
	}
	for _, sm := range m.ServiceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			add("ServiceMonitor %s: %v", sm.Name, err)
			continue
		}
		var svcs []*corev1.Service
		for _, s := range m.Services {
			if sel.Matches(labels.Set(s.Labels)) {
				svcs = append(svcs, s)
			}
		}
		if len(svcs) != 1 {
			add("ServiceMonitor %s: selects %d Services, want 1", sm.Name, len(svcs))
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			found := false
			for _, p := range svcs[0].Spec.Ports {
				found = found || p.Name == ep.Port
			}
			if !found {
				add("ServiceMonitor %s: Service %s has no port %q", sm.Name, svcs[0].Name, ep.Port)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckWorkloads verifies what every Deployment must satisfy, whatever it
// runs: hardened, probed, resourced containers with pinned images,
// selectors that select, and volumes and service accounts that resolve.
func (m *Manifests) CheckWorkloads() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, d := range m.Deployments {
		checkDeployment(d, m, add)
	}
	return errors.Join(errs...)
}

func checkDeployment(d *appsv1.Deployment, m *Manifests, add func(string, ...any)) {
	name := "Deployment " + d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		add("%s: selector does not select its own pod template (%v)", name, err)
	}
	pod := &d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		add("%s: automountServiceAccountToken must be false", name)
	}
	if sa := pod.ServiceAccountName; sa != "" && sa != "default" {
		found := false
		for _, s := range m.ServiceAccounts {
			found = found || s.Name == sa
		}
		if !found {
			add("%s: ServiceAccount %s is not rendered", name, sa)
		}
	}
	keys := map[string]bool{}
	for _, c := range pod.TopologySpreadConstraints {
		if keys[c.TopologyKey] {
			add("%s: two topologySpreadConstraints for %s", name, c.TopologyKey)
		}
		keys[c.TopologyKey] = true
		s, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
			add("%s: topologySpreadConstraint %s does not select its own pods", name, c.TopologyKey)
		}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		cn := fmt.Sprintf("%s: container %s", name, c.Name)
		sc := c.SecurityContext
		if sc == nil {
			add("%s: no securityContext", cn)
			continue
		}
		if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
			add("%s: runAsNonRoot is not set", cn)
		}
		if uid := firstInt64(sc.RunAsUser, psc.RunAsUser); uid != nil && *uid == 0 {
			add("%s: runs as uid 0", cn)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			add("%s: readOnlyRootFilesystem is not true", cn)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("%s: allowPrivilegeEscalation is not false", cn)
		}
		if isTrue(sc.Privileged) {
			add("%s: privileged", cn)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			add("%s: capabilities must drop ALL and add none", cn)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			add("%s: seccompProfile is not RuntimeDefault", cn)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			add("%s: needs readiness and liveness probes", cn)
		}
		for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
			if p == nil {
				continue
			}
			if p.HTTPGet != nil && !hasPort(pod, p.HTTPGet.Port) {
				add("%s: probe port %s is not a container port", cn, p.HTTPGet.Port.String())
			}
			if p.TCPSocket != nil && !hasPort(pod, p.TCPSocket.Port) {
				add("%s: probe port %s is not a container port", cn, p.TCPSocket.Port.String())
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			add("%s: needs cpu and memory requests and a memory limit", cn)
		}
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":") && !strings.Contains(c.Image, "@") {
			add("%s: image %q has no pinned tag", cn, c.Image)
		}
		for _, vm := range c.VolumeMounts {
			found := false
			for _, v := range pod.Volumes {
				found = found || v.Name == vm.Name
			}
			if !found {
				add("%s: volumeMount %s has no volume", cn, vm.Name)
			}
		}
	}
}

func checkExtauthz(dep *appsv1.Deployment, ctr *corev1.Container, m *Manifests, add func(string, ...any)) {
	name := "Deployment " + dep.Name + ": container extauthz"
	pod := &dep.Spec.Template.Spec
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != GRPCPort || ports["http"] != HTTPPort {
		add("%s: ports must be grpc %d and http %d, got %v", name, GRPCPort, HTTPPort, ports)
	}
	probe := func(kind string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || portNumber(pod, p.HTTPGet.Port) != HTTPPort {
			add("%s: %s probe must be GET %s on port %d", name, kind, path, HTTPPort)
		}
	}
	probe("readiness", ctr.ReadinessProbe, "/readyz")
	probe("liveness", ctr.LivenessProbe, "/healthz")
	var cu, pu *int64
	if ctr.SecurityContext != nil {
		cu = ctr.SecurityContext.RunAsUser
	}
	if pod.SecurityContext != nil {
		pu = pod.SecurityContext.RunAsUser
	}
	uid := firstInt64(cu, pu)
	if uid == nil || *uid != NonRootUID {
		add("%s: must run as uid %d (the image's nonroot user)", name, NonRootUID)
	}
	args := strings.Join(append(append([]string{}, ctr.Command...), ctr.Args...), " ")
	if !strings.HasPrefix(args, "serve ") || !strings.Contains(args, "--policy "+PolicyMountPath) {
		add("%s: args must be `serve --policy %s ...`, got %q", name, PolicyMountPath, args)
	}
	mounted := false
	for _, vm := range ctr.VolumeMounts {
		if vm.MountPath == PolicyMountPath {
			mounted = true
			if vm.SubPath != "" || vm.SubPathExpr != "" {
				add("%s: the policy mount must be a directory, not a subPath (subPath mounts never see ConfigMap updates)", name)
			}
			if !vm.ReadOnly {
				add("%s: the policy mount must be readOnly", name)
			}
		}
	}
	if !mounted {
		add("%s: nothing is mounted at %s", name, PolicyMountPath)
	}
	grace := 15 * time.Second
	if e := Env(ctr, "EXTAUTHZ_SHUTDOWN_GRACE"); e != nil {
		if d, err := time.ParseDuration(e.Value); err == nil {
			grace = d
		} else {
			add("%s: EXTAUTHZ_SHUTDOWN_GRACE: %v", name, err)
		}
	}
	var preStop time.Duration
	if ls := ctr.Lifecycle; ls != nil && ls.PreStop != nil && ls.PreStop.Sleep != nil {
		preStop = time.Duration(ls.PreStop.Sleep.Seconds) * time.Second
	}
	tgp := 30 * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		tgp = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if tgp <= grace+preStop {
		add("%s: terminationGracePeriodSeconds (%v) must exceed preStop (%v) + shutdown grace (%v)", name, tgp, preStop, grace)
	}
	checkGRPCTLS(ctr, pod, name, add)
	// Single use across replicas: each replica's memory store remembers
	// only the jtis it saw itself.
	if n := m.MaxReplicas(dep); n > 1 && ReplayStoreIsMemory(ctr) && dep.Annotations[MemoryReplayStoreAccepted] != "true" {
		add("Deployment %s: up to %d replicas with the memory replay store: a client assertion or DPoP proof could be used once on each; set EXTAUTHZ_REPLAY_STORE to a Redis URL (or annotate the Deployment %s: \"true\" if no rule takes client assertions or DPoP proofs)", dep.Name, n, MemoryReplayStoreAccepted)
	}
	if len(pod.TopologySpreadConstraints) == 0 {
		add("Deployment %s: no topologySpreadConstraints", dep.Name)
	}
	if e := Env(ctr, "EXTAUTHZ_REPLAY_STORE"); e != nil && e.ValueFrom == nil && e.Value != "memory" {
		host, port, err := redisHostPort(e.Value)
		if err != nil {
			add("%s: EXTAUTHZ_REPLAY_STORE: %v", name, err)
		} else if !strings.Contains(host, ".") {
			// An in-cluster name must be a Service of this rendering.
			ok := false
			for _, s := range m.Services {
				for _, p := range s.Spec.Ports {
					ok = ok || (s.Name == host && p.Port == port)
				}
			}
			if !ok {
				add("%s: EXTAUTHZ_REPLAY_STORE names %s:%d, which no rendered Service serves", name, host, port)
			}
		}
	}
}

// checkGRPCTLS checks that the gRPC listener's TLS files and Workload API
// socket are where the container mounts them: a Secret (or projected)
// volume for files, mounted as a directory so renewals arrive, and the
// SPIFFE CSI driver for the socket.
func checkGRPCTLS(ctr *corev1.Container, pod *corev1.PodSpec, name string, add func(string, ...any)) {
	args := append(append([]string{}, ctr.Command...), ctr.Args...)
	volume := func(path string) (*corev1.Volume, *corev1.VolumeMount) { return MountedVolume(pod, ctr, path) }
	for _, flag := range []string{"--grpc-tls-cert", "--grpc-tls-key", "--grpc-client-ca"} {
		for _, path := range FlagValues(args, flag) {
			v, vm := volume(path)
			switch {
			case v == nil:
				add("%s: %s %s is in no mounted volume", name, flag, path)
			case v.Secret == nil && v.Projected == nil && v.CSI == nil:
				add("%s: %s %s: volume %s is not a Secret", name, flag, path, v.Name)
			case vm.SubPath != "" || vm.SubPathExpr != "":
				add("%s: %s %s: a subPath mount never sees a renewed Secret", name, flag, path)
			}
		}
	}
	if (len(FlagValues(args, "--grpc-tls-cert")) == 0) != (len(FlagValues(args, "--grpc-tls-key")) == 0) {
		add("%s: --grpc-tls-cert and --grpc-tls-key go together", name)
	}
	for _, sock := range FlagValues(args, "--grpc-spiffe-socket") {
		path, ok := strings.CutPrefix(sock, "unix://")
		if !ok {
			continue
		}
		if v, _ := volume(path); v == nil || v.CSI == nil || v.CSI.Driver != "csi.spiffe.io" {
			add("%s: --grpc-spiffe-socket %s is not in a volume of the SPIFFE CSI driver (csi.spiffe.io)", name, sock)
		}
		if len(FlagValues(args, "--grpc-spiffe-authorized-id"))+len(FlagValues(args, "--grpc-spiffe-trust-domain")) == 0 {
			add("%s: --grpc-spiffe-socket without --grpc-spiffe-authorized-id or --grpc-spiffe-trust-domain", name)
		}
	}
}

// MountedVolume returns the volume, and the container's mount of it, in
// which the file path lies; nil when no mount holds it.
func MountedVolume(pod *corev1.PodSpec, ctr *corev1.Container, path string) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range ctr.VolumeMounts {
		vm := &ctr.VolumeMounts[i]
		if rel, ok := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/"); ok && rel != "" {
			for j := range pod.Volumes {
				if pod.Volumes[j].Name == vm.Name {
					return &pod.Volumes[j], vm
				}
			}
		}
	}
	return nil, nil
}

// FlagValues returns every value of a flag in args, as --flag=value or
// --flag value.
func FlagValues(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			out = append(out, v)
		} else if a == flag && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

// MemoryReplayStoreAccepted is the Deployment annotation by which a
// rendering says that several replicas with the memory replay store are
// intended: its policies take no client assertions or DPoP proofs, the
// only credentials the replay store protects.
const MemoryReplayStoreAccepted = "extauthz/memory-replay-store-with-replicas"

// ReplayStoreIsMemory says whether the extauthz container uses the memory
// replay store: --replay-store, which wins, or EXTAUTHZ_REPLAY_STORE is
// unset or memory (a value from a Secret is taken to be a Redis URL).
func ReplayStoreIsMemory(ctr *corev1.Container) bool {
	if v := FlagValues(append(append([]string{}, ctr.Command...), ctr.Args...), "--replay-store"); len(v) > 0 {
		return v[len(v)-1] == "memory"
	}
	e := Env(ctr, "EXTAUTHZ_REPLAY_STORE")
	return e == nil || (e.ValueFrom == nil && (e.Value == "" || e.Value == "memory"))
}

// MaxReplicas is the most replicas the Deployment can run: its replicas
// (1 when unset), or the maxReplicas of an autoscaler that scales it.
func (m *Manifests) MaxReplicas(dep *appsv1.Deployment) int32 {
	n := int32(1)
	if dep.Spec.Replicas != nil {
		n = *dep.Spec.Replicas
	}
	for _, h := range m.HPAs {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == "Deployment" && ref.Name == dep.Name && h.Spec.MaxReplicas > n {
			n = h.Spec.MaxReplicas
		}
	}
	return n
}

func redisHostPort(u string) (string, int32, error) {
	rest, ok := strings.CutPrefix(u, "redis://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "rediss://"); !ok {
			return "", 0, fmt.Errorf("%q is neither memory nor a redis:// or rediss:// URL", u)
		}
	}
	hostport, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(hostport, "@"); i >= 0 {
		hostport = hostport[i+1:]
	}
	host, port, ok := strings.Cut(hostport, ":")
	if !ok {
		return host, 6379, nil
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port", u)
	}
	return host, int32(n), nil
}

func (m *Manifests) deployment(name string) *appsv1.Deployment {
	for _, d := range m.Deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (m *Manifests) podsMatching(sel labels.Selector) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range m.Deployments {
		if !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

// hasPort says whether a container of pod has the port (by name or number).
func hasPort(pod *corev1.PodSpec, p intstr.IntOrString) bool {
	return portNumber(pod, p) != 0
}

func portNumber(pod *corev1.PodSpec, p intstr.IntOrString) int32 {
	// Native sidecars (init containers that keep running) serve ports too.
	for _, c := range append(append([]corev1.Container{}, pod.Containers...), pod.InitContainers...) {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func isTrue(b *bool) bool { return b != nil && *b }

func firstInt64(vs ...*int64) *int64 {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}
