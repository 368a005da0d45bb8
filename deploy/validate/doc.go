// Package validate checks, offline, the configurations users apply: the
// Envoy bootstraps in envoy/, the Kubernetes manifests (kustomize base and
// overlays), the Helm chart and the Istio resources in deploy/, the
// Dockerfile. Envoy, Kubernetes and Docker do not run in CI, so every
// rendered object is decoded strictly into its upstream Go type (an unknown
// field is an error) and checked for the invariants the project relies on.
//
// Run it with ./deploy/check.sh, which installs helm when missing.
package validate
