package check_test

import (
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// metadataPolicy emits every kind of metadata member, and members that
// must never be emitted.
const metadataPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: api
    match:
      path_prefixes: [/api/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    require:
      - 'claims.?blocked.orValue(false) == false'
    metadata:
      tenant: claims.tenant
      is_agent: 'claims.?client_type.orValue("") == "ai-agent"'
      scope_count: size(scopes)
      weight: "1.5"
      scopes: scopes
      note: claims.?note.orValue("none")
      missing: claims.missing
      as_map: claims
      nothing: "null"
      mixed: '[1, claims]'
      nan: double("NaN")
      tags: claims.tags
`

// assertMetadata checks the rule's members of resp (extra, as
// structpb.NewValue takes them) and then every other part as assertResponse
// does.
func assertMetadata(t *testing.T, resp *authv3.CheckResponse, fixed want, extra map[string]any) {
	t.Helper()
	resp = proto.Clone(resp).(*authv3.CheckResponse)
	fields := resp.GetDynamicMetadata().GetFields()
	for name, v := range extra {
		wantV, err := structpb.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := fields[name]; !ok || !proto.Equal(got, wantV) {
			t.Errorf("dynamic_metadata[%q] = %v, want %v", name, got, wantV)
		}
		delete(fields, name)
	}
	// What remains is exactly the fixed members.
	assertResponse(t, resp, fixed)
}

// TestRuleMetadata: an allow carries exactly the members whose values can
// be emitted (string, number, bool, list); errors, null, maps, mixed lists,
// non-finite numbers and strings with control characters leave the member
// unset; a deny carries none.
func TestRuleMetadata(t *testing.T) {
	h := newHarness(t, metadataPolicy)
	req := func(c claims) httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/api/x"}.with("authorization", "Bearer "+signLogin(t, c))
	}
	fixed := want{code: codes.OK, headers: map[string]string{}, rule: "api", reason: "allowed"}.by("login", "reporting-app", "")
	t.Run("every kind of value", func(t *testing.T) {
		resp := h.check(t, req(loginClaims().set("tenant", "acme", "client_type", "ai-agent")))
		assertMetadata(t, resp, fixed, map[string]any{
			"tenant": "acme", "is_agent": true, "scope_count": 2.0, "weight": 1.5,
			"scopes": []any{"openid", "reports"}, "note": "none",
		})
	})
	t.Run("attack: CR LF in a claim is never emitted", func(t *testing.T) {
		for _, note := range []string{"a\r\nx-evil: 1", "a\nb", "nul\x00", "tab\tx", "del\x7f"} {
			resp := h.check(t, req(loginClaims().set("tenant", "acme\r\ndecision: allow", "note", note)))
			assertMetadata(t, resp, fixed, map[string]any{
				"is_agent": false, "scope_count": 2.0, "weight": 1.5, "scopes": []any{"openid", "reports"},
			})
		}
	})
	t.Run("a list with a control character, or too long a string, is left unset", func(t *testing.T) {
		resp := h.check(t, req(loginClaims().set("tenant", strings.Repeat("a", 1025), "tags", []any{"ok", "b\r\nc"})))
		assertMetadata(t, resp, fixed, map[string]any{
			"is_agent": false, "scope_count": 2.0, "weight": 1.5, "scopes": []any{"openid", "reports"}, "note": "none",
		})
		resp = h.check(t, req(loginClaims().set("tenant", strings.Repeat("a", 1024), "tags", []any{"ok", "fine"})))
		assertMetadata(t, resp, fixed, map[string]any{
			"tenant": strings.Repeat("a", 1024), "tags": []any{"ok", "fine"},
			"is_agent": false, "scope_count": 2.0, "weight": 1.5, "scopes": []any{"openid", "reports"}, "note": "none",
		})
	})
	t.Run("a deny carries no rule members", func(t *testing.T) {
		resp := h.check(t, req(loginClaims().set("tenant", "acme", "blocked", true)))
		assertResponse(t, resp, accessDenied("api", "requirement_failed").by("login", "reporting-app", ""))
	})
}
