package check_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/extauthz/extauthz/test/jose"
)

func bearerAllowed(clientID string) want {
	set := map[string]string{}
	if clientID != "" {
		set["x-client-id"] = clientID
	}
	return allowed("reports-api", "allowed", set).by("login", clientID, "")
}

func bearerChallenge(code codes.Code, status int, challenge, reason string) want {
	return want{code: code, status: status, headers: map[string]string{"www-authenticate": challenge}, rule: "reports-api", reason: reason}
}

func bearerMissing() want {
	return bearerChallenge(codes.Unauthenticated, 401, `Bearer realm="extauthz"`, "credential_missing")
}

func invalidToken(reason string) want {
	return bearerChallenge(codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token"`, reason)
}

func bearerBadRequest(reason string) want {
	return want{
		code: codes.PermissionDenied, status: 400,
		headers: map[string]string{
			"www-authenticate": `Bearer realm="extauthz", error="invalid_request"`,
			"content-type":     "application/json", "cache-control": "no-store",
		},
		body: `{"error":"invalid_request"}`, rule: "reports-api", reason: reason,
	}
}

// TestBearer covers the RFC 6750 rules of a bearer rule.
func TestBearer(t *testing.T) {
	h := newHarness(t, basePolicy)
	get := func(t *testing.T, c claims) httpReq {
		return reportsReq("GET", "authorization", "Bearer "+signLogin(t, c))
	}
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{"valid", func(t *testing.T) httpReq { return get(t, loginClaims()) }, bearerAllowed("reporting-app")},
		{
			"valid, header_map",
			func(t *testing.T) httpReq {
				r := get(t, loginClaims())
				r.headerMap = true
				return r
			},
			bearerAllowed("reporting-app"),
		},
		{
			"scheme in lower case",
			func(t *testing.T) httpReq {
				return reportsReq("GET", "Authorization", "bearer "+signLogin(t, loginClaims()))
			},
			bearerAllowed("reporting-app"),
		},
		{
			"scp array",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("scope", nil, "scp", []any{"reports"})) },
			bearerAllowed("reporting-app"),
		},
		{
			"azp when there is no client_id",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("client_id", nil, "azp", "azp-app")) },
			bearerAllowed("azp-app"),
		},
		{
			"no client id at all leaves x-client-id unset",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("client_id", nil)) },
			bearerAllowed(""),
		},
		{
			"aud array containing the API",
			func(t *testing.T) httpReq {
				return get(t, loginClaims().set("aud", []any{"https://other.example.com", "api.example.com"}))
			},
			bearerAllowed("reporting-app"),
		},
		{
			"client-sent x-client-id is overwritten",
			func(t *testing.T) httpReq {
				return get(t, loginClaims()).with("x-client-id", "admin", "x_client_id", "admin")
			},
			bearerAllowed("reporting-app"),
		},
		{
			"POST with reports:write",
			func(t *testing.T) httpReq {
				return reportsReq("POST", "authorization", "Bearer "+signLogin(t, loginClaims().set("scope", "reports reports:write")))
			},
			bearerAllowed("reporting-app"),
		},
		{
			"require false: POST without reports:write",
			func(t *testing.T) httpReq {
				return reportsReq("POST", "authorization", "Bearer "+signLogin(t, loginClaims()))
			},
			accessDenied("reports-api", "requirement_failed").by("login", "reporting-app", ""),
		},
		{"missing", func(t *testing.T) httpReq { return reportsReq("GET") }, bearerMissing()},
		{
			"Basic is not a bearer credential",
			func(t *testing.T) httpReq { return reportsReq("GET", "authorization", "Basic cmVwb3J0czpzZWNyZXQ=") },
			bearerMissing(),
		},
		{
			"expired",
			func(t *testing.T) httpReq {
				return get(t, loginClaims().set("iat", unix(-time.Hour), "exp", unix(-time.Minute)))
			},
			invalidToken("token_expired").by("login", "", ""),
		},
		{
			"bad signature",
			func(t *testing.T) httpReq {
				return reportsReq("GET", "authorization", "Bearer "+tamper(signLogin(t, loginClaims())))
			},
			invalidToken("signature_invalid").by("login", "", ""),
		},
		{
			"wrong audience",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("aud", "admin.example.com")) },
			invalidToken("audience_invalid").by("login", "", ""),
		},
		{
			"unknown issuer",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("iss", "https://evil.example.com")) },
			invalidToken("issuer_unknown"),
		},
		{
			"a client assertion's issuer is not a bearer issuer",
			func(t *testing.T) httpReq {
				return reportsReq("GET", "authorization", "Bearer "+signPartner(t, partnerClaims().set("aud", "api.example.com")))
			},
			invalidToken("issuer_unknown"),
		},
		{
			"typ of another kind of token",
			func(t *testing.T) httpReq {
				tok := jose.MustSign(t, "EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "dpop+jwt"}, loginClaims())
				return reportsReq("GET", "authorization", "Bearer "+tok)
			},
			invalidToken("token_type_invalid").by("login", "", ""),
		},
		{
			"missing scope",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("scope", "openid profile")) },
			bearerChallenge(codes.PermissionDenied, 403, `Bearer realm="extauthz", error="insufficient_scope", scope="reports"`, "insufficient_scope").
				by("login", "reporting-app", ""),
		},
		{
			"two Authorization headers, header_map",
			func(t *testing.T) httpReq {
				tok := "Bearer " + signLogin(t, loginClaims())
				r := reportsReq("GET", "authorization", tok, "authorization", tok)
				r.headerMap = true
				return r
			},
			bearerBadRequest("malformed_request"),
		},
		{
			"two Authorization headers, comma-joined headers map",
			func(t *testing.T) httpReq {
				tok := "Bearer " + signLogin(t, loginClaims())
				return reportsReq("GET", "authorization", tok, "authorization", tok)
			},
			bearerBadRequest("malformed_request"),
		},
		{
			"Bearer without a token",
			func(t *testing.T) httpReq { return reportsReq("GET", "authorization", "Bearer") },
			bearerBadRequest("malformed_request"),
		},
		{
			"bearer header and access_token in a form body",
			func(t *testing.T) httpReq {
				r := reportsReq("POST", "content-type", formType, "authorization", "Bearer "+signLogin(t, loginClaims().set("scope", "reports reports:write")))
				r.body = form("access_token", signLogin(t, loginClaims()))
				return r
			},
			bearerBadRequest("multiple_credentials"),
		},
		{
			"a header value with CR LF is never sent",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("client_id", "app\r\nx-admin: true")) },
			// The metadata feeds access logs: control characters become "?".
			allowed("reports-api", "allowed", map[string]string{}).by("login", "app??x-admin: true", ""),
		},
		{
			"a header value with NUL is never sent",
			func(t *testing.T) httpReq { return get(t, loginClaims().set("client_id", "app\x00")) },
			allowed("reports-api", "allowed", map[string]string{}).by("login", "app?", ""),
		},
		{
			"bearer header and access_token query parameter",
			func(t *testing.T) httpReq {
				r := get(t, loginClaims())
				r.path = "/reports/q1?access_token=abc"
				return r
			},
			bearerBadRequest("multiple_credentials"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
}

// TestHeaderFormsAgree: Envoy's headers map and its header_map (with
// encode_raw_headers) are two spellings of one request and must give the
// same response, field for field.
func TestHeaderFormsAgree(t *testing.T) {
	h := newHarness(t, basePolicy)
	tok := "Bearer " + signLogin(t, loginClaims())
	svid := signSpire(t, svidClaims()) // no replay protection: may be sent twice
	requests := map[string]httpReq{
		"valid bearer":         reportsReq("GET", "authorization", tok),
		"missing bearer":       reportsReq("GET"),
		"two bearer headers":   reportsReq("GET", "authorization", tok, "authorization", tok),
		"bearer and basic":     reportsReq("GET", "authorization", tok, "authorization", "Basic cmVwb3J0czpzZWNyZXQ="),
		"insufficient scope":   reportsReq("GET", "authorization", "Bearer "+signLogin(t, loginClaims().set("scope", "openid"))),
		"expired bearer":       reportsReq("GET", "authorization", "Bearer "+signLogin(t, loginClaims().set("exp", unix(-time.Hour)))),
		"svid assertion":       tokenReq(assertionBody(svid)).with("x-client-id", "admin", "X-Is-Agent", "true"),
		"partial body":         tokenReq(assertionBody(svid)).with("x-envoy-auth-partial-body", "true"),
		"assertion and bearer": tokenReq(assertionBody(svid)).with("authorization", tok),
		// Envoy's map joins these into "Basic ...,Bearer ..." and
		// "Custom a,Custom b"; header_map shows two lines.
		"basic then bearer":             reportsReq("GET", "authorization", "Basic cmVwb3J0czpzZWNyZXQ=", "authorization", tok),
		"assertion and two Custom auth": tokenReq(assertionBody(svid)).with("authorization", "Custom a", "authorization", "Custom b"),
	}
	for name, r := range requests {
		t.Run(name, func(t *testing.T) {
			m := h.check(t, r)
			r.headerMap = true
			hm := h.check(t, r)
			if !proto.Equal(m, hm) {
				a, _ := protojson.Marshal(m)
				b, _ := protojson.Marshal(hm)
				t.Errorf("headers map and header_map disagree:\nheaders:    %s\nheader_map: %s", a, b)
			}
		})
	}
}
