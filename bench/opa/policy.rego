# OPA-Envoy's policy in `make bench`: the same API rule as
# bench/extauthz/policy.yaml. The JWKS, issuer and audience come from the
# data document the load generator writes (data.bench), the JWKS being the
# same document its loopback JWKS server serves to extauthz and Heimdall.
package envoy.authz

import rego.v1

http_request := input.attributes.request.http

bearer := t if {
	v := http_request.headers.authorization
	startswith(v, "Bearer ")
	t := substring(v, 7, -1)
}

# io.jwt.decode_verify checks the signature against the JWKS, exp and nbf
# against the current time, and the iss and aud constraints.
claims := payload if {
	[valid, _, payload] := io.jwt.decode_verify(bearer, {
		"cert": data.bench.jwks,
		"iss": data.bench.issuer,
		"aud": data.bench.audience,
	})
	valid
}

allow if {
	http_request.method == "GET"
	http_request.host == data.bench.host
	startswith(http_request.path, "/api/")
	data.bench.scope in split(claims.scope, " ")
}

default result := {"allowed": false}

result := {
	"allowed": true,
	"headers": {"x-client-id": claims.client_id},
} if allow
