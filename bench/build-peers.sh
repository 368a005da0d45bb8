#!/usr/bin/env bash
# Builds the peers the load generator compares extauthz with, from the Go
# module proxy at the versions pinned in bench/peers/go.mod:
#   OPA-Envoy (opa-envoy-plugin) and Heimdall.
# Binaries go to ${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}/peers-<version>/
# and a build is skipped when its binary is already there. Prints the
# directory of each binary on stdout as NAME=PATH lines (for the bench tool).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${EXTAUTHZ_TOOLS:-$HOME/.cache/extauthz-tools}"
cd "$here/peers"
mkdir -p "$tools"
# One build at a time: a second `make bench` waits for the first's build
# instead of racing it.
exec 9>"$tools/.peers.lock"
flock 9

build() { # name import-path
	local name="$1" pkg="$2" version dir
	version="$(go list -m -f '{{.Version}}' "$(go list -f '{{.Module.Path}}' "$pkg")")"
	dir="$tools/peers-$version"
	if [[ ! -x "$dir/$name" ]]; then
		echo "build-peers: building $name $version (cold builds take a few minutes)" >&2
		mkdir -p "$dir"
		# -trimpath keeps the binary independent of the module cache path;
		# the rename makes a half-built binary never look built.
		go build -trimpath -o "$dir/.$name.tmp" "$pkg"
		mv "$dir/.$name.tmp" "$dir/$name"
	fi
	echo "$name=$dir/$name"
}

build opa-envoy-plugin github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin
build heimdall github.com/dadrus/heimdall
