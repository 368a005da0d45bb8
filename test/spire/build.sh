#!/usr/bin/env bash
# Builds the SPIRE binaries that the integration tests in test/spire start:
# spire-server, spire-agent and oidc-discovery-provider, at the version pinned
# in tools/go.mod. They are built from the Go module proxy in the separate
# tools module (SPIRE's dependency graph must never enter the project's
# go.mod) and cached outside the repository, because a cold build takes about
# 15 minutes on 2 cores; a later run that finds all three binaries does
# nothing.
#
# Usage: test/spire/build.sh            build if missing, print the directory
#        EXTAUTHZ_TOOLS=/dir build.sh   cache somewhere else
set -euo pipefail

version=v1.13.3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/spire-${version}"
bins=(spire-server spire-agent oidc-discovery-provider)

have_all() {
	local b
	for b in "${bins[@]}"; do
		[[ -x "$dest/$b" ]] || return 1
	done
}

if have_all; then
	echo "$dest"
	exit 0
fi

mkdir -p "$dest"
cd "$here/tools"
# -mod=readonly: tools/go.sum is committed; a missing entry is a bug in the
# repository, not something to paper over on a CI machine. The go.mod pins
# github.com/GoogleCloudPlatform/cloudsql-proxy at v1.37.10 because the
# v1.37.9 that SPIRE asks for has no checksum-database entry here.
# Build into a staging directory and move into place only when all three
# built, so an interrupted build never leaves a cache that looks complete.
stage="$(mktemp -d "$dest/.build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
echo "building SPIRE ${version} into $dest (cold build: ~15 min on 2 cores)" >&2
GOFLAGS="${GOFLAGS:-} -mod=readonly -buildvcs=false" CGO_ENABLED=1 \
	go build -trimpath -o "$stage/" \
	github.com/spiffe/spire/cmd/spire-server \
	github.com/spiffe/spire/cmd/spire-agent \
	github.com/spiffe/spire/support/oidc-discovery-provider
for b in "${bins[@]}"; do
	mv -f "$stage/$b" "$dest/$b"
done
echo "$dest"
