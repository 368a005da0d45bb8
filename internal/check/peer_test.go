package check_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
)

const peerPolicy = `version: v1
issuers:
  - name: mesh
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: mesh.example
rules:
  - name: same-workload
    bearer:
      issuers: [mesh]
      audiences: [api.example.com]
    require:
      - 'spiffe_id in peer.uri_sans'
    headers:
      x-peer: peer.principal
      x-peer-cert: peer.certificate_sha256
`

// TestPeerInCEL: the caller's mTLS identity as Envoy reports it
// (source.principal and the forwarded certificate's URI SANs) is CEL's
// peer, so a rule can require the workload on the connection to be the
// one the token names.
func TestPeerInCEL(t *testing.T) {
	h := newHarness(t, peerPolicy)
	svid := signSpire(t, claims{"sub": meshWorkload, "aud": "api.example.com", "iat": unix(0), "exp": unix(5 * time.Minute)})
	req := func(cert []byte, principal string) httpReq {
		r := httpReq{method: "GET", host: "api.example.com", path: "/x", headers: [][2]string{{"authorization", "Bearer " + svid}}}
		r.peerCert, r.principal = cert, principal
		return r
	}
	cert := testCert(t, meshWorkload)
	set := map[string]string{"x-peer": meshWorkload, "x-peer-cert": x5t(cert)}
	var remove []string
	for _, n := range policy.AllSpellings("x-peer", "x-peer-cert") {
		if _, ok := set[n]; !ok {
			remove = append(remove, n)
		}
	}
	assertResponse(t, h.check(t, req(cert, meshWorkload)), want{code: codes.OK, headers: set, remove: remove, rule: "same-workload", reason: "allowed"}.by("mesh", "", meshWorkload))
	denied := accessDenied("same-workload", "requirement_failed").by("mesh", "", meshWorkload)
	assertResponse(t, h.check(t, req(testCert(t, "spiffe://mesh.example/other"), "spiffe://mesh.example/other")), denied)
	assertResponse(t, h.check(t, req(nil, "")), denied)
}
