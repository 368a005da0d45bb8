package check_test

// RFC 9728 protected-resource metadata and RFC 9470 step-up through the
// real gRPC server: the exact challenges, the document answered on the
// gRPC path, and the attack of asking for a document no rule publishes.

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

const prmPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: mcp
    match: {hosts: [mcp.example.com], path_prefixes: [/mcp]}
    bearer:
      issuers: [login]
      audiences: [https://mcp.example.com/mcp]
      scopes: [mcp:tools]
    protected_resource:
      resource: https://mcp.example.com/mcp
      authorization_servers: [https://login.example.com]
      resource_name: Example MCP server
  - name: dpop-api
    match: {hosts: [dpop.example.com]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required, algorithms: [ES256]}
    protected_resource: {resource: 'https://dpop.example.com', authorization_servers: [https://login.example.com]}
  - name: optional-api
    match: {hosts: [optional.example.com]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: optional, algorithms: [ES256]}
    protected_resource: {resource: 'https://optional.example.com/', authorization_servers: [https://login.example.com]}
  - name: dpop-stepup
    match: {hosts: [dpop-stepup.example.com]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      dpop: {mode: required, algorithms: [ES256]}
      acr_values: [phr]
    protected_resource: {resource: 'https://dpop-stepup.example.com/api', authorization_servers: [https://login.example.com]}
  - name: admin
    match: {path_prefixes: [/admin/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
      scopes: [admin]
      acr_values: [phrh, phr]
      max_age: 300s
    protected_resource: {resource: 'https://api.example.com/admin', authorization_servers: [https://login.example.com]}
    headers: {x-client-id: client_id}
  - name: acr-only
    match: {path_prefixes: [/acr/]}
    bearer: {issuers: [login], audiences: [api.example.com], acr_values: [phr]}
  - name: age-only
    match: {path_prefixes: [/age/]}
    bearer: {issuers: [login], audiences: [api.example.com], max_age: 60s}
  - name: audited
    mode: audit
    match: {path_prefixes: [/audited/]}
    bearer: {issuers: [login], audiences: [api.example.com], acr_values: [phr]}
  - name: hidden
    match: {hosts: [hidden.example.com]}
    bearer: {issuers: [login], audiences: [api.example.com]}
`

const (
	mcpMetadata   = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	mcpDocument   = `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://login.example.com"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server"}`
	adminMetadata = `resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/admin"`
)

// prmManaged is every header prmPolicy manages.
var prmManaged = policy.AllSpellings("x-client-id")

func mcpReq(kv ...string) httpReq {
	return httpReq{method: "POST", host: "mcp.example.com", path: "/mcp"}.with(kv...)
}

func mcpClaims() claims {
	return loginClaims().set("aud", "https://mcp.example.com/mcp", "scope", "mcp:tools")
}

// TestResourceMetadataChallenges: every challenge of a rule with a
// protected_resource carries resource_metadata, Bearer and DPoP alike.
func TestResourceMetadataChallenges(t *testing.T) {
	h := newHarness(t, prmPolicy)
	const algs = `algs="ES256"`
	meta := `resource_metadata="` + mcpMetadata + `"`
	dpopMeta := `resource_metadata="https://dpop.example.com/.well-known/oauth-protected-resource"`
	optMeta := `resource_metadata="https://optional.example.com/.well-known/oauth-protected-resource"`
	pub := &clientKey().PublicKey
	jkt := jose.Thumbprint(pub)
	expired := signLogin(t, loginClaims().set("exp", unix(-time.Hour), "cnf", map[string]any{"jkt": jkt}))
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"no token", mcpReq(), challenged("mcp", "credential_missing", `Bearer realm="extauthz", `+meta)},
		{"a forged token", mcpReq("authorization", "Bearer "+tamper(signLogin(t, mcpClaims()))), challenged("mcp", "signature_invalid", `Bearer realm="extauthz", error="invalid_token", `+meta).by("login", "", "")},
		{"an expired token", mcpReq("authorization", "Bearer "+signLogin(t, mcpClaims().set("exp", unix(-time.Hour)))), challenged("mcp", "token_expired", `Bearer realm="extauthz", error="invalid_token", `+meta).by("login", "", "")},
		{"another audience", mcpReq("authorization", "Bearer "+signLogin(t, loginClaims())), challenged("mcp", "audience_invalid", `Bearer realm="extauthz", error="invalid_token", `+meta).by("login", "", "")},
		{
			"a missing scope: 403 with resource_metadata too",
			mcpReq("authorization", "Bearer "+signLogin(t, mcpClaims().set("scope", "openid"))),
			want{code: codes.PermissionDenied, status: 403, headers: map[string]string{"www-authenticate": `Bearer realm="extauthz", error="insufficient_scope", scope="mcp:tools", ` + meta}, rule: "mcp", reason: "insufficient_scope"}.by("login", "reporting-app", ""),
		},
		{"a valid token", mcpReq("authorization", "Bearer "+signLogin(t, mcpClaims())), want{code: codes.OK, headers: map[string]string{}, remove: prmManaged, rule: "mcp", reason: "allowed"}.by("login", "reporting-app", "")},
		{"DPoP rule, no token", httpReq{method: "GET", host: "dpop.example.com", path: "/x"}, challenged("dpop-api", "credential_missing", `DPoP realm="extauthz", `+dpopMeta+`, `+algs)},
		{"DPoP rule, a Bearer token", httpReq{method: "GET", host: "dpop.example.com", path: "/x", headers: [][2]string{{"authorization", "Bearer " + signLogin(t, loginClaims())}}}, challenged("dpop-api", "dpop_required", `DPoP realm="extauthz", error="invalid_token", `+dpopMeta+`, `+algs)},
		{"DPoP rule, an expired bound token", func() httpReq {
			r := dpopReq("/x", expired, proof(t, proofClaims("GET", "https://dpop.example.com/x", expired)))
			r.host = "dpop.example.com"
			return r
		}(), challenged("dpop-api", "token_expired", `DPoP realm="extauthz", error="invalid_token", `+dpopMeta+`, `+algs).by("login", "", "")},
		{"optional DPoP, no token: both challenges", httpReq{method: "GET", host: "optional.example.com", path: "/x"}, challenged("optional-api", "credential_missing", `Bearer realm="extauthz", `+optMeta+`, DPoP realm="extauthz", `+optMeta+`, `+algs)},
		{"a rule without resource has none", httpReq{method: "GET", host: "hidden.example.com", path: "/x"}, challenged("hidden", "credential_missing", `Bearer realm="extauthz"`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestResourceMetadataDocument: Envoy routes the well-known path through
// ext_authz and gets the document back as a local reply.
func TestResourceMetadataDocument(t *testing.T) {
	h := newHarness(t, prmPolicy)
	doc := func(rule, body string) want {
		return want{
			code: codes.PermissionDenied, status: 200,
			headers: map[string]string{"content-type": "application/json", "cache-control": "max-age=300", "access-control-allow-origin": "*"},
			body:    body, rule: rule, reason: "resource_metadata",
		}
	}
	get := func(host, path string) httpReq { return httpReq{method: "GET", host: host, path: path} }
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"GET the MCP document", get("mcp.example.com", "/.well-known/oauth-protected-resource/mcp"), doc("mcp", mcpDocument)},
		{"with a port and a query", get("MCP.example.com:443", "/.well-known/oauth-protected-resource/mcp?x=1"), doc("mcp", mcpDocument)},
		{"HEAD", httpReq{method: "HEAD", host: "mcp.example.com", path: "/.well-known/oauth-protected-resource/mcp"}, doc("mcp", mcpDocument)},
		{"a token does not matter", get("mcp.example.com", "/.well-known/oauth-protected-resource/mcp").with("authorization", "Bearer x"), doc("mcp", mcpDocument)},
		{"the DPoP document", get("dpop.example.com", "/.well-known/oauth-protected-resource"), doc("dpop-api", `{"resource":"https://dpop.example.com","authorization_servers":["https://login.example.com"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256"],"dpop_bound_access_tokens_required":true}`)},
		{
			"POST: 405",
			httpReq{method: "POST", host: "mcp.example.com", path: "/.well-known/oauth-protected-resource/mcp"},
			want{code: codes.PermissionDenied, status: 405, headers: map[string]string{"allow": "GET, HEAD"}, rule: "mcp", reason: "resource_metadata"},
		},
		// The attack: a client probing for the document of a rule that has
		// no resource, or at a path or host no resource names, gets the
		// rules' answer, never a document.
		{"a rule without resource: its own challenge, no document", get("hidden.example.com", "/.well-known/oauth-protected-resource"), challenged("hidden", "credential_missing", `Bearer realm="extauthz"`)},
		{"a path no resource names: rules decide", get("mcp.example.com", "/.well-known/oauth-protected-resource"), accessDenied("", "no_rule_matched")},
		{"another host: rules decide", get("evil.example.com", "/.well-known/oauth-protected-resource/mcp"), accessDenied("", "no_rule_matched")},
		{"a longer path: rules decide", get("mcp.example.com", "/.well-known/oauth-protected-resource/mcp/x"), accessDenied("", "no_rule_matched")},
		{"a trailing slash: rules decide", get("mcp.example.com", "/.well-known/oauth-protected-resource/mcp/"), accessDenied("", "no_rule_matched")},
		{"another case: rules decide", get("mcp.example.com", "/.well-known/oauth-protected-resource/MCP"), accessDenied("", "no_rule_matched")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}

// TestResourceMetadataAuditFlag: serve --audit turns denies into allows,
// but the document is an answer, not a deny: it is still served.
func TestResourceMetadataAuditFlag(t *testing.T) {
	h := newHarness(t, prmPolicy, func(c *check.Config) { c.Audit = true })
	resp := h.check(t, httpReq{method: "GET", host: "mcp.example.com", path: "/.well-known/oauth-protected-resource/mcp"})
	if got := resp.GetDeniedResponse(); got.GetStatus().GetCode() != 200 || got.GetBody() != mcpDocument {
		t.Fatalf("under --audit the document request got %v", resp)
	}
}

// TestStepUp: a token that verifies but lacks the rule's acr or a recent
// enough auth_time gets RFC 9470's 401, exactly the rule's parameters.
func TestStepUp(t *testing.T) {
	h := newHarness(t, prmPolicy)
	admin := func(c claims) httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/admin/users"}.with("authorization", "Bearer "+signLogin(t, c))
	}
	on := func(path string, c claims) httpReq {
		r := admin(c)
		r.path = path
		return r
	}
	fresh := func() claims {
		return loginClaims().set("scope", "admin", "acr", "phr", "auth_time", unix(-2*time.Minute))
	}
	const (
		acrDesc = `error_description="A different authentication level is required"`
		ageDesc = `error_description="More recent authentication is required"`
		params  = `acr_values="phrh phr", max_age="300"`
	)
	stepUp := func(rule, reason, challenge string) want {
		return challenged(rule, reason, challenge).by("login", "reporting-app", "")
	}
	adminDeny := func(reason, desc string) want {
		return stepUp("admin", reason, `Bearer realm="extauthz", error="insufficient_user_authentication", `+desc+`, `+params+`, `+adminMetadata)
	}
	ok := want{code: codes.OK, headers: map[string]string{"x-client-id": "reporting-app"}, remove: policy.AllSpellings("x-client-id")[1:], rule: "admin", reason: "allowed"}.by("login", "reporting-app", "")
	pub := &clientKey().PublicKey
	bound := func(c claims) string { return signLogin(t, c.set("cnf", map[string]any{"jkt": jose.Thumbprint(pub)})) }
	dpopStepUp := func(c claims) httpReq {
		tok := bound(c)
		r := dpopReq("/api/x", tok, proof(t, proofClaims("GET", "https://dpop-stepup.example.com/api/x", tok)))
		r.host = "dpop-stepup.example.com"
		return r
	}
	tests := []struct {
		name string
		req  httpReq
		want want
	}{
		{"acr ok, fresh auth_time", admin(fresh()), ok},
		{"the second acr value", admin(fresh().set("acr", "phrh")), ok},
		{"auth_time as a fraction", admin(fresh().set("auth_time", float64(unix(-time.Minute))+0.5)), ok},
		{"auth_time just within max_age and the skew", admin(fresh().set("auth_time", unix(-330*time.Second))), ok},
		{"acr missing", admin(fresh().set("acr", nil)), adminDeny("acr_insufficient", acrDesc)},
		{"acr wrong", admin(fresh().set("acr", "pwd")), adminDeny("acr_insufficient", acrDesc)},
		{"acr not a string", admin(fresh().set("acr", []any{"phr"})), adminDeny("acr_insufficient", acrDesc)},
		{"auth_time missing", admin(fresh().set("auth_time", nil)), adminDeny("auth_time_missing", ageDesc)},
		{"auth_time as a string", admin(fresh().set("auth_time", "1899999880")), adminDeny("auth_time_missing", ageDesc)},
		{"auth_time negative", admin(fresh().set("auth_time", int64(-1))), adminDeny("auth_time_missing", ageDesc)},
		{"auth_time too old", admin(fresh().set("auth_time", unix(-331*time.Second))), adminDeny("auth_time_stale", ageDesc)},
		{
			"step-up comes before scopes",
			admin(fresh().set("acr", "pwd", "scope", "openid")),
			adminDeny("acr_insufficient", acrDesc),
		},
		{
			"scopes still count once stepped up",
			admin(fresh().set("scope", "openid")),
			want{code: codes.PermissionDenied, status: 403, headers: map[string]string{"www-authenticate": `Bearer realm="extauthz", error="insufficient_scope", scope="admin", ` + adminMetadata}, rule: "admin", reason: "insufficient_scope"}.by("login", "reporting-app", ""),
		},
		{"an invalid token is invalid_token, not step-up", admin(fresh().set("aud", "other")), challenged("admin", "audience_invalid", `Bearer realm="extauthz", error="invalid_token", `+adminMetadata).by("login", "", "")},
		{"acr_values only: only acr_values", on("/acr/x", loginClaims()), stepUp("acr-only", "acr_insufficient", `Bearer realm="extauthz", error="insufficient_user_authentication", `+acrDesc+`, acr_values="phr"`)},
		{"acr_values only: auth_time not needed", on("/acr/x", loginClaims().set("acr", "phr")), want{code: codes.OK, headers: map[string]string{}, remove: prmManaged, rule: "acr-only", reason: "allowed"}.by("login", "reporting-app", "")},
		{"max_age only: only max_age", on("/age/x", loginClaims().set("auth_time", unix(-time.Hour))), stepUp("age-only", "auth_time_stale", `Bearer realm="extauthz", error="insufficient_user_authentication", `+ageDesc+`, max_age="60"`)},
		{"DPoP: the same parameters in the DPoP challenge", dpopStepUp(loginClaims()), stepUp("dpop-stepup", "acr_insufficient", `DPoP realm="extauthz", error="insufficient_user_authentication", `+acrDesc+`, acr_values="phr", resource_metadata="https://dpop-stepup.example.com/.well-known/oauth-protected-resource/api", algs="ES256"`)},
		{"DPoP: stepped up", dpopStepUp(loginClaims().set("acr", "phr")), want{code: codes.OK, headers: map[string]string{}, remove: prmManaged, rule: "dpop-stepup", reason: "allowed"}.by("login", "reporting-app", "")},
		{"audit mode: allowed, the would-be deny recorded", on("/audited/x", loginClaims()), want{code: codes.OK, headers: map[string]string{}, remove: prmManaged, rule: "audited", reason: "acr_insufficient", audit: "deny"}.by("login", "reporting-app", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assertResponse(t, h.check(t, tc.req), tc.want) })
	}
}
