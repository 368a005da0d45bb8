package check_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
)

// TestRuleSelection: Envoy's per-route context_extensions name the rule;
// otherwise the first matching rule applies, else the default action.
func TestRuleSelection(t *testing.T) {
	h := newHarness(t, basePolicy)
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{
			name: "context_extensions select a rule whose match does not hold",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.host, r.path = "gateway.internal", "/token"
				r.ext = map[string]string{"rule": "token-endpoint"}
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "context_extensions win over a matching rule",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.ext = map[string]string{"rule": "reports-api"}
				return r
			},
			want: bearerMissing(),
		},
		{
			name: "unknown rule name",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.ext = map[string]string{"rule": "token-endpoint-v2"}
				return r
			},
			want: accessDenied("", "unknown_rule"),
		},
		{
			name: "other context_extensions keys are ignored",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.ext = map[string]string{"team": "identity"}
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "host in upper case with a port",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.host = "LOGIN.Example.com:443"
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "query string is ignored by paths",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.path += "?foo=bar"
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "method not matched",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.method = "PUT"
				return r
			},
			want: accessDenied("", "no_rule_matched"),
		},
		{
			name: "no rule matched under default_action deny",
			req:  func(t *testing.T) httpReq { return httpReq{method: "GET", host: "api.example.com", path: "/admin"} },
			want: accessDenied("", "no_rule_matched"),
		},
		{
			name: "path_prefixes do not match a bare prefix",
			req:  func(t *testing.T) httpReq { return httpReq{method: "GET", host: "api.example.com", path: "/reports"} },
			want: accessDenied("", "no_rule_matched"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
}

// TestEitherCredential: a rule with both client_assertion and bearer takes
// either, and a request with both is a 400.
func TestEitherCredential(t *testing.T) {
	h := newHarness(t, basePolicy)
	post := func(body string, kv ...string) httpReq {
		r := tokenReq(body).with(kv...)
		r.path = "/either"
		return r
	}
	noHeaders := map[string]string{}
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{
			"client assertion",
			func(t *testing.T) httpReq { return post(assertionBody(signPartner(t, partnerClaims()))) },
			allowed("either", "allowed", noHeaders).by("partner", partnerIss, ""),
		},
		{
			"bearer",
			func(t *testing.T) httpReq {
				return post(form("grant_type", "client_credentials"), "authorization", "Bearer "+signLogin(t, loginClaims()))
			},
			allowed("either", "allowed", noHeaders).by("login", "reporting-app", ""),
		},
		{
			"both",
			func(t *testing.T) httpReq {
				return post(assertionBody(signPartner(t, partnerClaims())), "authorization", "Bearer "+signLogin(t, loginClaims()))
			},
			invalidRequest("multiple_credentials").onRule("either"),
		},
		{
			"neither",
			func(t *testing.T) httpReq { return post(form("grant_type", "client_credentials")) },
			bearerMissing().onRule("either"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
}

// TestKeysUnavailable: an issuer whose JWKS endpoint fails and has never
// answered gives 503 with Retry-After, not a 401: the fault is ours.
func TestKeysUnavailable(t *testing.T) {
	h := newHarness(t, basePolicy)
	c := partnerClaims().set("iss", downIss, "sub", downIss)
	r := tokenReq(assertionBody(signOther(t, c)))
	r.path = "/down/token"
	assertResponse(t, h.check(t, r), want{
		code: codes.PermissionDenied, status: 503,
		headers: map[string]string{
			"retry-after": anySeconds, "content-type": "application/json", "cache-control": "no-store",
		},
		body: `{"error":"temporarily_unavailable"}`, rule: "down-endpoint", reason: "keys_unavailable", issuer: "down",
	})
	if n := h.jwks.Count("/down"); n == 0 {
		t.Errorf("the down issuer's JWKS was never requested")
	}
	if n := h.jwks.Count("/partner"); n == 0 {
		t.Errorf("the partner's JWKS was never requested")
	}
}

// allowPolicy has default_action allow, a public rule, a custom realm and
// strip_headers.
const allowPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
    algorithms: [EdDSA]
rules:
  - name: public-docs
    match:
      path_prefixes: [/docs/]
    headers:
      x-route: '"docs"'
      x-client-id: client_id
  - name: api
    match:
      path_prefixes: [/api/]
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    headers:
      X-Client-Id: client_id
      x-scopes: scopes
strip_headers: [x-user, X-Forwarded-Client-Cert]
realm: example-api
default_action: allow
`

// TestDefaultAllow: with default_action allow, an unmatched request is
// allowed, and still every managed header is removed, so nothing a client
// sends can pass for one the policy sets.
func TestDefaultAllow(t *testing.T) {
	h := newHarness(t, allowPolicy)
	all := policy.AllSpellings("x-client-id", "x-forwarded-client-cert", "x-route", "x-scopes", "x-user")
	except := func(names ...string) []string {
		var out []string
	next:
		for _, m := range all {
			for _, n := range names {
				if m == n {
					continue next
				}
			}
			out = append(out, m)
		}
		return out
	}
	smuggle := []string{"x-client-id", "admin", "X_Client_Id", "admin", "x-user", "root", "x-route", "internal", "x-forwarded-client-cert", "By=spiffe://evil"}
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{
			name: "no rule matched",
			req: func(t *testing.T) httpReq {
				return httpReq{method: "GET", host: "www.example.com", path: "/"}.with(smuggle...)
			},
			want: want{code: codes.OK, headers: map[string]string{}, remove: all, reason: "default_allow"},
		},
		{
			name: "no rule matched, header_map",
			req: func(t *testing.T) httpReq {
				r := httpReq{method: "GET", host: "www.example.com", path: "/"}.with(smuggle...)
				r.headerMap = true
				return r
			},
			want: want{code: codes.OK, headers: map[string]string{}, remove: all, reason: "default_allow"},
		},
		{
			name: "public rule sets its headers; an empty client_id sets none",
			req: func(t *testing.T) httpReq {
				return httpReq{method: "GET", host: "www.example.com", path: "/docs/index.html"}.with(smuggle...)
			},
			want: want{code: codes.OK, headers: map[string]string{"x-route": "docs"}, remove: except("x-route"), rule: "public-docs", reason: "public_route"},
		},
		{
			name: "bearer rule: a list header joined with commas",
			req: func(t *testing.T) httpReq {
				tok := signLogin(t, loginClaims().set("scope", "openid reports"))
				return httpReq{method: "GET", host: "api.example.com", path: "/api/v1"}.with(append(smuggle, "authorization", "Bearer "+tok)...)
			},
			want: want{
				code: codes.OK, headers: map[string]string{"x-client-id": "reporting-app", "x-scopes": "openid,reports"},
				remove: except("x-client-id", "x-scopes"), rule: "api", reason: "allowed", issuer: "login", clientID: "reporting-app",
			},
		},
		{
			name: "bearer rule: the realm of the policy",
			req: func(t *testing.T) httpReq {
				return httpReq{method: "GET", host: "api.example.com", path: "/api/v1"}
			},
			want: want{
				code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="example-api"`},
				rule: "api", reason: "credential_missing",
			},
		},
		{
			name: "bearer rule: invalid token with the policy's realm",
			req: func(t *testing.T) httpReq {
				return httpReq{method: "GET", host: "api.example.com", path: "/api/v1"}.with("authorization", "Bearer "+tamper(signLogin(t, loginClaims())))
			},
			want: want{
				code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="example-api", error="invalid_token"`},
				rule: "api", reason: "signature_invalid", issuer: "login",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
}
