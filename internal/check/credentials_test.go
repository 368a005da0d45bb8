package check_test

import (
	"testing"

	"google.golang.org/grpc/codes"
)

const optOutPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: relaxed
    match: {path_prefixes: [/relaxed/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      allow_credential_parameters: true
  - name: strict
    bearer:
      issuers: [login]
      audiences: [api.example.com]
`

// TestAllowCredentialParameters: a rule may opt out of the search for
// credential parameters in bodies and folded names, for an upstream that
// reads none; the exact access_token, client_secret and client_assertion
// parameters stay refused beside a token whatever the rule says.
func TestAllowCredentialParameters(t *testing.T) {
	h := newHarness(t, optOutPolicy)
	tok := "Bearer " + signLogin(t, loginClaims())
	req := func(path, contentType, body string) httpReq {
		return httpReq{method: "POST", host: "api.example.com", path: path, body: body, headers: [][2]string{{"authorization", tok}, {"content-type", contentType}}}
	}
	ok := want{code: codes.OK, headers: map[string]string{}, rule: "relaxed", reason: "allowed"}.by("login", "reporting-app", "")
	two := func(rule string) want {
		return want{code: codes.PermissionDenied, status: 400, headers: map[string]string{"www-authenticate": `Bearer realm="extauthz", error="invalid_request"`, "content-type": "application/json", "cache-control": "no-store"}, body: `{"error":"invalid_request"}`, rule: rule, reason: "multiple_credentials"}
	}
	assertResponse(t, h.check(t, req("/relaxed/x", "application/json", `{"access_token":"x"}`)), ok)
	assertResponse(t, h.check(t, req("/relaxed/x?access.token=x", "text/plain", "")), ok)
	assertResponse(t, h.check(t, req("/strict/x", "application/json", `{"access_token":"x"}`)), two("strict"))
	assertResponse(t, h.check(t, req("/relaxed/x?access_token=x", "text/plain", "")), two("relaxed"))
	assertResponse(t, h.check(t, req("/relaxed/x", "application/x-www-form-urlencoded", "client_secret=s")), two("relaxed"))
}
