package e2e_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/extauthz/extauthz/internal/jwkstest"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

// grantPolicy takes RFC 7523 §2.1 JWT bearer grants of the login issuer
// from clients that authenticate with a client assertion, and tells the
// rate limiter who the client, the user and the tenant are.
const grantPolicy = `version: v1
issuers:
  - name: partner-acme
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner/jwks
    algorithms: [PS256]
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login/jwks
    algorithms: [ES256]
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner-acme]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    authorization_grant:
      issuers: [login]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
      x-user-id: grant.sub
      x-scope: form.scope
    metadata:
      user: grant.sub
      tenant: grant.claims.tenant
      is_agent: 'claims.?client_type.orValue("") == "ai-agent"'
      scopes: form.scope.split(" ")
default_action: deny
`

// TestJWTBearerGrant runs the binary with grantPolicy: a grant beside the
// client's assertion is allowed with the user's headers and the rule's
// metadata, and the same grant again is invalid_grant.
func TestJWTBearerGrant(t *testing.T) {
	node := jose.NodeSigner(t)
	partner, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	login := jose.P256(t)
	keySrv := jwkstest.New(t, map[string][]byte{
		"/partner/jwks": jose.JWKS(jose.PublicJWK("partner-key-1", "PS256", &partner.PublicKey)),
		"/login/jwks":   jose.JWKS(jose.PublicJWK("login-key-1", "ES256", login.Public())),
	})
	srv := startServer(t, writeFile(t, "policy.yaml", strings.ReplaceAll(grantPolicy, "{{JWKS}}", keySrv.URL)))

	now := time.Now().Unix()
	grant := node.Sign(t, "ES256", login, map[string]any{"kid": "login-key-1", "typ": "JWT"}, map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": tokenEndpoint, "tenant": "acme",
		"jti": newJTI(), "iat": now, "exp": now + 120,
	})
	request := func() *authv3.CheckRequest {
		client := node.Sign(t, "PS256", partner, map[string]any{"kid": "partner-key-1", "typ": "JWT"}, map[string]any{
			"iss": partnerID, "sub": partnerID, "aud": tokenEndpoint, "client_type": "ai-agent",
			"jti": newJTI(), "iat": now, "exp": now + 120,
		})
		req := tokenRequest(client)
		body := "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer") +
			"&assertion=" + url.QueryEscape(grant) + "&scope=reports+admin" +
			"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
			"&client_assertion=" + url.QueryEscape(client)
		req.Attributes.Request.Http.Body, req.Attributes.Request.Http.Size = body, int64(len(body))
		req.Attributes.Request.Http.Headers["x-user-id"] = "root"
		return req
	}

	resp := srv.check(t, request())
	// The rule's members first, exactly, then the fixed ones as strings.
	fields := proto.Clone(resp.GetDynamicMetadata()).(*structpb.Struct).GetFields()
	for name, v := range map[string]any{"user": "alice", "tenant": "acme", "is_agent": true, "scopes": []any{"reports", "admin"}} {
		want, _ := structpb.NewValue(v)
		if !proto.Equal(fields[name], want) {
			t.Errorf("dynamic_metadata[%q] = %v, want %v", name, fields[name], want)
		}
		delete(resp.GetDynamicMetadata().GetFields(), name)
	}
	var remove []string
	for _, h := range []string{"x-client-id", "x-user-id", "x-scope"} {
		for _, s := range policy.HeaderSpellings(h) {
			if s != h {
				remove = append(remove, s)
			}
		}
	}
	assertAllowed(t, resp, map[string]string{"x-client-id": partnerID, "x-user-id": "alice", "x-scope": "reports admin"}, remove, map[string]string{
		"decision": "allow", "rule": "token-endpoint", "reason": "allowed", "issuer": "partner-acme", "client_id": partnerID, "spiffe_id": "",
	})

	again := srv.check(t, request())
	assertDenied(t, again, codes.PermissionDenied, 400, `{"error":"invalid_grant"}`, map[string]string{
		"decision": "deny", "rule": "token-endpoint", "reason": "replayed", "issuer": "partner-acme", "client_id": partnerID, "spiffe_id": "",
	})
}
