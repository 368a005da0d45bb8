package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
)

// introspectionPolicy is an API whose opaque tokens are introspected at a
// loopback endpoint, extauthz authenticating with a client secret.
const introspectionPolicy = `version: v1
issuers:
  - name: as
    issuer: https://as.example.com
    introspection:
      endpoint: {{ENDPOINT}}/introspect
      client:
        client_id: extauthz
        method: client_secret_basic
        client_secret_file: {{SECRET}}
rules:
  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [as]
      audiences: [api.example.com]
      scopes: [reports]
    headers:
      x-client-id: client_id
`

// TestIntrospectionThroughBinary: the binary introspects an opaque token
// at the endpoint (once for repeated Checks), allows an active one with
// its client id, and refuses an inactive one with invalid_token.
func TestIntrospectionThroughBinary(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	exp := time.Now().Add(time.Hour).Unix()
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if u, p, ok := r.BasicAuth(); r.URL.Path != "/introspect" || !ok || u != "extauthz" || p != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		out := map[string]any{"active": false}
		if r.PostForm.Get("token") == "opaque-good" && r.PostForm.Get("token_type_hint") == "access_token" {
			out = map[string]any{"active": true, "client_id": "reporting-app", "scope": "reports", "aud": "api.example.com", "sub": "user-1", "exp": exp}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(as.Close)
	secret := writeFile(t, "secret", "s3cret\n")
	body := strings.NewReplacer("{{ENDPOINT}}", as.URL, "{{SECRET}}", secret).Replace(introspectionPolicy)
	srv := startServer(t, writeFile(t, "policy.yaml", body))

	req := func(tok string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: "api.example.com", Path: "/reports/q3",
				Headers: map[string]string{":authority": "api.example.com", "authorization": "Bearer " + tok, "x-client-id": "forged"},
			}},
		}}
	}
	meta := map[string]string{"decision": "allow", "rule": "reports-api", "reason": "allowed", "issuer": "as", "client_id": "reporting-app", "spiffe_id": ""}
	var removed []string
	for _, s := range policy.AllSpellings("x-client-id") {
		if s != "x-client-id" {
			removed = append(removed, s)
		}
	}
	for range 3 {
		assertAllowed(t, srv.check(t, req("opaque-good")), map[string]string{"x-client-id": "reporting-app"}, removed, meta)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("3 Checks made %d introspection requests, want 1", n)
	}

	resp := srv.check(t, req("opaque-revoked"))
	assertDenied(t, resp, codes.Unauthenticated, 401, "", map[string]string{
		"decision": "deny", "rule": "reports-api", "reason": "token_inactive", "issuer": "as", "client_id": "", "spiffe_id": "",
	})
	var challenge string
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			challenge = h.GetHeader().GetValue()
		}
	}
	if challenge != invalidToken {
		t.Errorf("WWW-Authenticate = %q, want %q", challenge, invalidToken)
	}
}
