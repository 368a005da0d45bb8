#!/usr/bin/env bash
# Validates, offline, every configuration users apply: envoy/*.yaml (Envoy
# bootstraps, docker-compose), deploy/envoy (cluster snippets),
# deploy/kubernetes (kustomize base, components and overlays), deploy/helm
# (helm lint + template), deploy/istio, deploy/spire, Dockerfile and
# .dockerignore. See deploy/validate.
#
# Needs only Go (and the Go module proxy): helm is built with `go install`
# into the tools cache on first use. Environment:
#   TOOLS        tools cache (default $HOME/.cache/extauthz-tools)
#   HELM         a helm binary to use instead
#   EXTAUTHZ_BIN an extauthz binary to validate policies with (default: build one)
#   STATICCHECK  a staticcheck binary; when set, also runs it on deploy/validate
set -euo pipefail
cd "$(dirname "$0")/.."

GO="${GO:-go}"
HELM_VERSION=v3.22.0
TOOLS="${TOOLS:-$HOME/.cache/extauthz-tools}"

if [ -z "${HELM:-}" ]; then
	HELM="$TOOLS/helm-$HELM_VERSION/helm"
	if [ ! -x "$HELM" ]; then
		echo "installing helm $HELM_VERSION into $TOOLS (once; takes a few minutes)"
		mkdir -p "$TOOLS"
		tmp="$(mktemp -d "$TOOLS/.helm-install.XXXXXX")"
		trap 'rm -rf "$tmp"' EXIT
		GOBIN="$tmp" GOWORK=off GOFLAGS= "$GO" install -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
		mkdir -p "$(dirname "$HELM")"
		mv "$tmp/helm" "$HELM"
	fi
fi
export HELM

cd deploy/validate
export GOWORK=off
"$GO" vet ./...
if [ -n "${STATICCHECK:-}" ]; then
	"$STATICCHECK" ./...
fi
# -count=1: the tests read files through helm, kustomize and go build,
# which go test's cache does not track.
"$GO" test -count=1 ./...
