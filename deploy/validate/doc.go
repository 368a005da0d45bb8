// Package validate checks, offline, the configurations users apply: the
// Envoy bootstraps in envoy/ and cluster snippets in deploy/envoy/, the
// Kubernetes manifests (kustomize base, components and overlays), the Helm
// chart, the Istio resources and the SPIRE overlays and registration
// entries in deploy/, the Dockerfile. Envoy, Kubernetes and Docker do not
// run in CI, so every rendered object is decoded strictly into its
// upstream Go type (an unknown field is an error) and checked for the
// invariants the project relies on.
//
// Run it with ./deploy/check.sh, which installs helm when missing.
package validate
