package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

// bearerPolicy is an API accepting access tokens from an authorization
// server and JWT-SVIDs from SPIRE's discovery provider.
const bearerPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login/jwks
  - name: spire
    jwks_uri: {{JWKS}}/spire/keys
    spiffe_trust_domain: example.org
rules:
  - name: reports-api
    match:
      hosts: [api.example.com]
      path_prefixes: [/reports/]
    bearer:
      issuers: [login, spire]
      audiences: [api.example.com]
      scopes: [reports]
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
`

const (
	challenge        = `Bearer realm="extauthz"`
	invalidToken     = `Bearer realm="extauthz", error="invalid_token"`
	insufficientScop = `Bearer realm="extauthz", error="insufficient_scope", scope="reports"`
)

// TestBearerThroughBinary runs an API rule with bearer tokens from two
// issuers through the real binary: the allows with their headers, and every
// failure class with its exact status and WWW-Authenticate challenge.
func TestBearerThroughBinary(t *testing.T) {
	t.Parallel()
	login, spire := jose.P256(t), jose.P256(t)
	jwks := map[string][]byte{
		"/login/jwks": jose.JWKS(jose.PublicJWK("login-1", "ES256", login.Public())),
		"/spire/keys": jose.JWKS(jose.PublicJWK("spire-1", "", spire.Public())),
	}
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := jwks[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(doc)
	}))
	t.Cleanup(keySrv.Close)
	srv := startServer(t, writeFile(t, "policy.yaml", strings.ReplaceAll(bearerPolicy, "{{JWKS}}", keySrv.URL)))

	now := time.Now().Unix()
	access := func(mod map[string]any) string {
		claims := map[string]any{
			"iss": "https://login.example.com", "sub": "user-1", "aud": "api.example.com",
			"client_id": "reporting-app", "scope": "openid reports", "iat": now, "exp": now + 300,
		}
		for k, v := range mod {
			if v == nil {
				delete(claims, k)
			} else {
				claims[k] = v
			}
		}
		return jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, claims)
	}
	svid := jose.MustSign(t, "ES256", spire, map[string]any{"kid": "spire-1", "typ": "JWT"}, map[string]any{
		"sub": "spiffe://example.org/ns/reports/sa/exporter", "aud": []string{"api.example.com"},
		"scope": "reports", "iat": now, "exp": now + 300,
	})
	otherKey := jose.P256(t)

	type denial struct {
		code      codes.Code
		status    int
		challenge string
		reason    string
		// clientID is known once the token verified, as for a scope deny.
		clientID string
	}
	cases := []struct {
		name   string
		auth   string // "" sends no Authorization
		allow  map[string]string
		issuer string
		deny   *denial
	}{
		{name: "access token", auth: "Bearer " + access(nil), allow: map[string]string{"x-client-id": "reporting-app"}, issuer: "login"},
		{name: "scheme in any case", auth: "bEaReR " + access(nil), allow: map[string]string{"x-client-id": "reporting-app"}, issuer: "login"},
		{name: "JWT-SVID of the second issuer", auth: "Bearer " + svid, allow: map[string]string{"x-spiffe-id": "spiffe://example.org/ns/reports/sa/exporter"}, issuer: "spire"},
		{name: "missing", deny: &denial{codes.Unauthenticated, 401, challenge, "credential_missing", ""}},
		{name: "another scheme", auth: "Basic dXNlcjpwYXNz", deny: &denial{codes.Unauthenticated, 401, challenge, "credential_missing", ""}},
		{name: "malformed", auth: "Bearer not a token", deny: &denial{codes.PermissionDenied, 400, `Bearer realm="extauthz", error="invalid_request"`, "malformed_request", ""}},
		{name: "not a JWT", auth: "Bearer abc.def", deny: &denial{codes.Unauthenticated, 401, invalidToken, "token_malformed", ""}},
		{name: "expired", auth: "Bearer " + access(map[string]any{"exp": now - 120, "iat": now - 600}), deny: &denial{codes.Unauthenticated, 401, invalidToken, "token_expired", ""}, issuer: "login"},
		{name: "wrong audience", auth: "Bearer " + access(map[string]any{"aud": "other-api.example.com"}), deny: &denial{codes.Unauthenticated, 401, invalidToken, "audience_invalid", ""}, issuer: "login"},
		{name: "wrong issuer", auth: "Bearer " + access(map[string]any{"iss": "https://evil.example.com"}), deny: &denial{codes.Unauthenticated, 401, invalidToken, "issuer_unknown", ""}},
		{name: "forged signature", auth: "Bearer " + jose.MustSign(t, "ES256", otherKey, map[string]any{"kid": "login-1"}, map[string]any{"iss": "https://login.example.com", "aud": "api.example.com", "scope": "reports", "exp": now + 300}), deny: &denial{codes.Unauthenticated, 401, invalidToken, "signature_invalid", ""}, issuer: "login"},
		{name: "missing scope", auth: "Bearer " + access(map[string]any{"scope": "openid profile"}), deny: &denial{codes.PermissionDenied, 403, insufficientScop, "insufficient_scope", "reporting-app"}, issuer: "login"},
		{
			name: "client assertion sent as bearer",
			auth: "Bearer " + access(map[string]any{"iss": "https://login.example.com", "sub": "https://login.example.com", "aud": "https://login.example.com/oauth/v2/oauth-token", "jti": "j1", "scope": nil}),
			deny: &denial{codes.Unauthenticated, 401, invalidToken, "audience_invalid", ""}, issuer: "login",
		},
		{
			name: "ID token with another audience",
			auth: "Bearer " + jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "JWT"}, map[string]any{"iss": "https://login.example.com", "sub": "user-1", "aud": "reporting-app", "nonce": "n", "iat": now, "exp": now + 300}),
			deny: &denial{codes.Unauthenticated, 401, invalidToken, "id_token_claims", ""}, issuer: "login",
		},
		{
			name: "ID token for the API's audience",
			auth: "Bearer " + jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "JWT"}, map[string]any{"iss": "https://login.example.com", "sub": "user-1", "aud": "api.example.com", "client_id": "reporting-app", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "iat": now, "exp": now + 300}),
			deny: &denial{codes.Unauthenticated, 401, invalidToken, "id_token_claims", ""}, issuer: "login",
		},
		{name: "two credentials", auth: "Bearer " + access(nil) + ", Bearer " + access(nil), deny: &denial{codes.PermissionDenied, 400, `Bearer realm="extauthz", error="invalid_request"`, "malformed_request", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{":authority": "api.example.com", "x-client-id": "forged", "x_spiffe_id": "forged"}
			if tc.auth != "" {
				headers["authorization"] = tc.auth
			}
			resp := srv.check(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Host: "api.example.com", Path: "/reports/q3?format=csv", Headers: headers,
				}},
			}})
			if tc.deny == nil {
				clientID, spiffeID := tc.allow["x-client-id"], tc.allow["x-spiffe-id"]
				var remove []string
				for _, name := range policy.AllSpellings("x-client-id", "x-spiffe-id") {
					if _, set := tc.allow[name]; !set {
						remove = append(remove, name)
					}
				}
				m := map[string]string{"decision": "allow", "rule": "reports-api", "reason": "allowed", "issuer": tc.issuer, "client_id": clientID, "spiffe_id": spiffeID}
				assertAllowed(t, resp, tc.allow, remove, m)
				return
			}
			body := ""
			if tc.deny.status == 400 {
				body = `{"error":"invalid_request"}`
			}
			assertDenied(t, resp, tc.deny.code, tc.deny.status, body, map[string]string{
				"decision": "deny", "rule": "reports-api", "reason": tc.deny.reason, "issuer": tc.issuer, "client_id": tc.deny.clientID, "spiffe_id": "",
			})
			var got string
			for _, h := range resp.GetDeniedResponse().GetHeaders() {
				if h.GetHeader().GetKey() == "www-authenticate" {
					got = h.GetHeader().GetValue()
				}
			}
			if got != tc.deny.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.deny.challenge)
			}
		})
	}
}
