package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/jwkstest"
	"github.com/extauthz/extauthz/test/jose"
)

// mcpPolicy is an MCP server behind Envoy: RFC 9728 metadata for /mcp and
// an RFC 9470 step-up on its admin tools.
const mcpPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/jwks
rules:
  - name: mcp-admin
    match: {hosts: [mcp.example.com], path_prefixes: [/mcp/admin]}
    bearer:
      issuers: [login]
      audiences: [https://mcp.example.com/mcp]
      acr_values: [phr]
      max_age: 600s
    protected_resource: &mcp
      resource: https://mcp.example.com/mcp
      authorization_servers: [https://login.example.com]
      scopes_supported: [mcp:tools]
  - name: mcp
    match: {hosts: [mcp.example.com], path_prefixes: [/mcp]}
    bearer:
      issuers: [login]
      audiences: [https://mcp.example.com/mcp]
      scopes: [mcp:tools]
    protected_resource: *mcp
  - name: hidden
    match: {hosts: [hidden.example.com]}
    bearer: {issuers: [login], audiences: [https://mcp.example.com/mcp]}
`

const mcpDocument = `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://login.example.com"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"]}`

// TestProtectedResourceThroughBinary: the binary serves the RFC 9728
// document on its HTTP port and on the gRPC path, challenges with
// resource_metadata, and asks for a step-up with RFC 9470's 401.
func TestProtectedResourceThroughBinary(t *testing.T) {
	t.Parallel()
	login := jose.P256(t)
	keySrv := jwkstest.New(t, map[string][]byte{"/jwks": jose.JWKS(jose.PublicJWK("login-1", "ES256", login.Public()))})
	srv := startServer(t, writeFile(t, "policy.yaml", strings.ReplaceAll(mcpPolicy, "{{JWKS}}", keySrv.URL)))

	t.Run("HTTP port", func(t *testing.T) {
		for path, want := range map[string]int{
			"/.well-known/oauth-protected-resource/mcp": 200,
			"/.well-known/oauth-protected-resource":     404,
			"/.well-known/oauth-protected-resource/x":   404,
		} {
			resp, err := http.Get("http://" + srv.HTTPAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
				continue
			}
			if want != 200 {
				continue
			}
			if string(body) != mcpDocument {
				t.Errorf("GET %s body =\n  %s\nwant\n  %s", path, body, mcpDocument)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "max-age=300", "Access-Control-Allow-Origin": "*"} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("GET %s %s = %q, want %q", path, k, got, v)
				}
			}
		}
	})

	now := time.Now().Unix()
	token := func(mod map[string]any) string {
		c := map[string]any{
			"iss": "https://login.example.com", "sub": "user-1", "aud": "https://mcp.example.com/mcp",
			"client_id": "agent-app", "scope": "mcp:tools", "iat": now, "exp": now + 300,
		}
		for k, v := range mod {
			c[k] = v
		}
		return jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, c)
	}
	req := func(method, host, path, auth string) *authv3.CheckRequest {
		h := map[string]string{":authority": host}
		if auth != "" {
			h["authorization"] = auth
		}
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: method, Host: host, Path: path, Headers: h},
		}}}
	}
	const meta = `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`
	cases := []struct {
		name      string
		req       *authv3.CheckRequest
		code      codes.Code
		status    int
		challenge string
		body      string
		reason    string
	}{
		{"no token", req("POST", "mcp.example.com", "/mcp", ""), codes.Unauthenticated, 401, `Bearer realm="extauthz", ` + meta, "", "credential_missing"},
		{"expired token", req("POST", "mcp.example.com", "/mcp", "Bearer "+token(map[string]any{"exp": now - 120, "iat": now - 600})), codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token", ` + meta, "", "token_expired"},
		{"step-up: no acr", req("POST", "mcp.example.com", "/mcp/admin", "Bearer "+token(map[string]any{"auth_time": now})), codes.Unauthenticated, 401,
			`Bearer realm="extauthz", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="phr", max_age="600", ` + meta, "", "acr_insufficient"},
		{"step-up: stale auth_time", req("POST", "mcp.example.com", "/mcp/admin", "Bearer "+token(map[string]any{"acr": "phr", "auth_time": now - 3600})), codes.Unauthenticated, 401,
			`Bearer realm="extauthz", error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="phr", max_age="600", ` + meta, "", "auth_time_stale"},
		{"the document on the gRPC path", req("GET", "mcp.example.com", "/.well-known/oauth-protected-resource/mcp", ""), codes.PermissionDenied, 200, "", mcpDocument, "resource_metadata"},
		{"no document for a rule without resource", req("GET", "hidden.example.com", "/.well-known/oauth-protected-resource", ""), codes.Unauthenticated, 401, `Bearer realm="extauthz"`, "", "credential_missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := srv.check(t, tc.req)
			d := resp.GetDeniedResponse()
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.code || int(d.GetStatus().GetCode()) != tc.status {
				t.Fatalf("status = %v, HTTP %d; want %v, HTTP %d: %v", got, d.GetStatus().GetCode(), tc.code, tc.status, resp)
			}
			var challenge string
			for _, h := range d.GetHeaders() {
				if h.GetHeader().GetKey() == "www-authenticate" {
					challenge = h.GetHeader().GetValue()
				}
			}
			if challenge != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", challenge, tc.challenge)
			}
			if d.GetBody() != tc.body {
				t.Errorf("body = %q, want %q", d.GetBody(), tc.body)
			}
			if got := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
		})
	}
	ok := srv.check(t, req("POST", "mcp.example.com", "/mcp/admin", "Bearer "+token(map[string]any{"acr": "phr", "auth_time": now - 60})))
	if codes.Code(ok.GetStatus().GetCode()) != codes.OK {
		t.Errorf("a stepped-up token: %v, want an allow", ok)
	}
}
