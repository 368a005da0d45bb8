#!/bin/sh
# The same registration entries as clusterspiffeids.yaml, for SPIRE
# installations without spire-controller-manager. Run where spire-server's
# admin socket is reachable (e.g. kubectl exec into the server pod).
#
# PARENT is the SPIFFE ID of the agents that may hand these identities out:
# here a node alias for every agent of the cluster that attested with
# k8s_psat. Create it once:
#   spire-server entry create -node \
#     -spiffeID spiffe://example.org/k8s-cluster/CLUSTER \
#     -selector k8s_psat:cluster:CLUSTER
set -eu
PARENT=${PARENT:-spiffe://example.org/k8s-cluster/CLUSTER}

# extauthz (workload-api, spiffe-helper and grpc-mtls deployments).
spire-server entry create \
  -parentID "$PARENT" \
  -spiffeID spiffe://example.org/ns/extauthz/sa/extauthz \
  -selector k8s:ns:extauthz \
  -selector k8s:sa:extauthz

# A client that sends its JWT-SVID as a client assertion or bearer token.
spire-server entry create \
  -parentID "$PARENT" \
  -spiffeID spiffe://example.org/ns/applications/sa/workload-client \
  -selector k8s:ns:applications \
  -selector k8s:sa:workload-client

# The Envoy that calls extauthz over SPIFFE mTLS (grpc-mtls deployment).
spire-server entry create \
  -parentID "$PARENT" \
  -spiffeID spiffe://example.org/ns/edge/sa/envoy \
  -selector k8s:ns:edge \
  -selector k8s:sa:envoy
