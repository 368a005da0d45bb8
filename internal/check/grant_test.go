package check_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

// grantPolicy has the three shapes of RFC 7523 §2.1 rules: the grant with
// a client assertion (§2.1 + §2.2), the grant alone (the client
// authenticates to the authorization server itself), and a client
// assertion rule without authorization_grant.
const grantPolicy = `version: v1
issuers:
  - name: partner
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner
    algorithms: [PS256]
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: grant-and-client
    match:
      paths: [/oauth/v2/oauth-token]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    authorization_grant:
      issuers: [login]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
      max_lifetime: 600s
    require:
      - 'form.grant_type != "password"'
    headers:
      x-client-id: client_id
      x-user-id: grant.sub
      x-grant-type: form.grant_type
      x-scope: form.scope
  - name: grant-only
    match:
      paths: [/grant-only/token]
    authorization_grant:
      issuers: [login]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-user-id: grant.sub
      x-grant-issuer: grant.issuer
      x-tenant: grant.claims.tenant
      x-form-size: string(size(form))
      x-client-secret: form.client_secret
      x-password: form.?password.orValue(form.?Password.orValue("absent"))
      x-assertion: 'form.?assertion.orValue("") + form.?client_assertion.orValue("") + form.?Client_Secret.orValue("")'
  - name: assertion-only
    match:
      paths: [/assertion-only/token]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
default_action: deny
`

var grantManaged = policy.AllSpellings("x-assertion", "x-client-id", "x-client-secret", "x-form-size", "x-grant-issuer", "x-grant-type", "x-password", "x-scope", "x-tenant", "x-user-id")

const grantTypeURN = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// grantAllowed is an allow of rule setting set and removing every other
// header grantPolicy manages.
func grantAllowed(rule string, set map[string]string) want {
	var remove []string
	for _, m := range grantManaged {
		if _, ok := set[m]; !ok {
			remove = append(remove, m)
		}
	}
	return want{code: codes.OK, headers: set, remove: remove, rule: rule, reason: "allowed"}
}

func invalidGrant(rule, reason string) want {
	return want{code: codes.PermissionDenied, status: 400, headers: jsonHeaders, body: `{"error":"invalid_grant"}`, rule: rule, reason: reason}
}

// userClaims is a grant for the user alice, minted by the login issuer.
func userClaims() claims {
	return claims{
		"iss": loginIss, "sub": "alice", "aud": tokenEndpoint, "jti": newJTI(),
		"iat": unix(0), "exp": unix(2 * time.Minute), "tenant": "acme",
	}
}

// signGrant signs c with the login issuer's EdDSA key, typ JWT.
func signGrant(t *testing.T, c claims) string {
	t.Helper()
	return jose.MustSign(t, "EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "JWT"}, c)
}

// grantBody is a jwt-bearer grant request carrying the grant and, when
// client is not "", the client's assertion.
func grantBody(grant, client string, extra ...string) string {
	kv := []string{"grant_type", grantTypeURN, "assertion", grant}
	if client != "" {
		kv = append(kv, "client_assertion_type", assertionURN, "client_assertion", client)
	}
	return form(append(kv, extra...)...)
}

func grantReq(path, body string) httpReq {
	r := tokenReq(body)
	r.path = path
	return r
}

// TestAuthorizationGrant covers RFC 7523 §2.1 grants through the real
// server: allows with the exact headers, and each deny's exact shape.
func TestAuthorizationGrant(t *testing.T) {
	h := newHarness(t, grantPolicy)
	const combined, only, plain = "/oauth/v2/oauth-token", "/grant-only/token", "/assertion-only/token"
	_, forger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{
			name: "grant and client assertion both verified",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims()), "scope", "reports"))
			},
			want: grantAllowed("grant-and-client", map[string]string{
				"x-client-id": partnerIss, "x-user-id": "alice", "x-grant-type": grantTypeURN, "x-scope": "reports",
			}).by("partner", partnerIss, ""),
		},
		{
			name: "the grant's sub is never the client id, even when it names a client",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims().set("sub", "admin-client")), signPartner(t, partnerClaims())))
			},
			want: grantAllowed("grant-and-client", map[string]string{
				"x-client-id": partnerIss, "x-user-id": "admin-client", "x-grant-type": grantTypeURN,
			}).by("partner", partnerIss, ""),
		},
		{
			name: "another grant type at the combined rule needs only the client assertion",
			req:  func(t *testing.T) httpReq { return grantReq(combined, assertionBody(signPartner(t, partnerClaims()))) },
			want: grantAllowed("grant-and-client", map[string]string{
				"x-client-id": partnerIss, "x-grant-type": "client_credentials",
			}).by("partner", partnerIss, ""),
		},
		{
			name: "a require on form holds the password grant back",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, form("grant_type", "password", "username", "alice", "password", "pw",
					"client_assertion_type", assertionURN, "client_assertion", signPartner(t, partnerClaims())))
			},
			want: accessDenied("grant-and-client", "requirement_failed").by("partner", partnerIss, ""),
		},
		{
			name: "grant signed by another key",
			req: func(t *testing.T) httpReq {
				g := jose.MustSign(t, "EdDSA", forger, map[string]any{"kid": "login-1", "typ": "JWT"}, userClaims())
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "signature_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "expired grant",
			req: func(t *testing.T) httpReq {
				g := signGrant(t, userClaims().set("iat", unix(-time.Hour), "exp", unix(-10*time.Minute)))
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "token_expired").by("partner", partnerIss, ""),
		},
		{
			name: "grant for another audience",
			req: func(t *testing.T) httpReq {
				g := signGrant(t, userClaims().set("aud", "https://other.example.com/token"))
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "audience_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "grant with two audiences",
			req: func(t *testing.T) httpReq {
				g := signGrant(t, userClaims().set("aud", []any{tokenEndpoint, "https://other.example.com/token"}))
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "audience_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "grant living past max_lifetime",
			req: func(t *testing.T) httpReq {
				g := signGrant(t, userClaims().set("exp", unix(time.Hour)))
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "lifetime_too_long").by("partner", partnerIss, ""),
		},
		{
			name: "grant without jti",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims().set("jti", nil)), signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "jti_missing").by("partner", partnerIss, ""),
		},
		{
			name: "grant without sub",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims().set("sub", nil)), signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "subject_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "a client assertion's JWT type used as a grant",
			req: func(t *testing.T) httpReq {
				g := jose.MustSign(t, "EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "client-authentication+jwt"}, userClaims())
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "token_type_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "an access token used as a grant",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signLogin(t, userClaims()), signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "token_type_invalid").by("partner", partnerIss, ""),
		},
		{
			name: "grant from an issuer the rule does not trust",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signPartner(t, partnerClaims()), signPartner(t, partnerClaims())))
			},
			want: invalidGrant("grant-and-client", "issuer_unknown").by("partner", partnerIss, ""),
		},
		{
			name: "a bad client assertion is invalid_client before the grant is looked at",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims().set("aud", "https://x.example"))))
			},
			want: invalidClient("audience_invalid").onRule("grant-and-client").by("partner", "", ""),
		},
		{
			name: "grant without the client assertion the rule requires",
			req:  func(t *testing.T) httpReq { return grantReq(combined, grantBody(signGrant(t, userClaims()), "")) },
			want: invalidClient("credential_missing").onRule("grant-and-client"),
		},
		{
			name: "jwt-bearer grant_type without assertion",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, form("grant_type", grantTypeURN, "client_assertion_type", assertionURN, "client_assertion", signPartner(t, partnerClaims())))
			},
			want: invalidRequest("grant_malformed").onRule("grant-and-client"),
		},
		{
			name: "assertion without the jwt-bearer grant_type",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, assertionBody(signPartner(t, partnerClaims()), "assertion", signGrant(t, userClaims())))
			},
			want: invalidRequest("grant_malformed").onRule("grant-and-client"),
		},
		{
			name: "two assertions",
			req: func(t *testing.T) httpReq {
				g := signGrant(t, userClaims())
				return grantReq(combined, grantBody(g, signPartner(t, partnerClaims()), "assertion", g))
			},
			want: invalidRequest("duplicate_parameter").onRule("grant-and-client"),
		},
		{
			name: "two client assertions beside the grant",
			req: func(t *testing.T) httpReq {
				c := signPartner(t, partnerClaims())
				return grantReq(combined, grantBody(signGrant(t, userClaims()), c, "client_assertion", c))
			},
			want: invalidRequest("duplicate_parameter").onRule("grant-and-client"),
		},
		{
			name: "client assertion and grant beside an Authorization header",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims()))).with("authorization", "Basic cGFydG5lcjpzZWNyZXQ=")
			},
			want: invalidRequest("assertion_with_client_secret").onRule("grant-and-client"),
		},
		{
			name: "client assertion and grant beside client_secret",
			req: func(t *testing.T) httpReq {
				return grantReq(combined, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims()), "client_secret", "s"))
			},
			want: invalidRequest("assertion_with_client_secret").onRule("grant-and-client"),
		},
		{
			name: "grant alone, the client in Basic for the authorization server",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims()), "")).with("authorization", "Basic cGFydG5lcjpzZWNyZXQ=")
			},
			want: grantAllowed("grant-only", map[string]string{
				"x-user-id": "alice", "x-grant-issuer": "login", "x-tenant": "acme", "x-form-size": "1", "x-password": "absent",
			}).by("login", "", ""),
		},
		{
			name: "attack: form never shows secrets, in any spelling",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims()), "",
					"client_id", "partner", "client_secret", "s3cret", "Client_Secret", "s3cret", "password", "pw", "Password", "pw",
					"scope", "reports", "refresh_token", "rt", "code", "c", "code_verifier", "v", "x-api-key", "k", "token_type_hint", "access_token_hint"))
			},
			want: grantAllowed("grant-only", map[string]string{
				"x-user-id": "alice", "x-grant-issuer": "login", "x-tenant": "acme", "x-form-size": "4", "x-password": "absent",
			}).by("login", "", ""),
		},
		{
			name: "a client assertion at the grant-only rule would go unverified",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims())))
			},
			want: invalidRequest("client_assertion_not_accepted").onRule("grant-only"),
		},
		{
			name: "a bearer token beside the grant",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims()), "")).with("authorization", "Bearer abc")
			},
			want: invalidRequest("multiple_credentials").onRule("grant-only"),
		},
		{
			name: "an access_token parameter beside the grant",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims()), "", "access_token", "abc"))
			},
			want: invalidRequest("multiple_credentials").onRule("grant-only"),
		},
		{
			name: "another grant type at the grant-only rule",
			req:  func(t *testing.T) httpReq { return grantReq(only, form("grant_type", "client_credentials")) },
			want: invalidRequest("grant_required").onRule("grant-only"),
		},
		{
			name: "bad grant at the grant-only rule",
			req: func(t *testing.T) httpReq {
				return grantReq(only, grantBody(signGrant(t, userClaims().set("aud", "x")), ""))
			},
			want: invalidGrant("grant-only", "audience_invalid").by("login", "", ""),
		},
		{
			name: "a grant at a client assertion rule without authorization_grant",
			req: func(t *testing.T) httpReq {
				return grantReq(plain, grantBody(signGrant(t, userClaims()), signPartner(t, partnerClaims())))
			},
			want: invalidRequest("grant_not_allowed").onRule("assertion-only"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
}

// TestAuthorizationGrantReplay: a grant's jti is spent once; the second use
// is invalid_grant even with a fresh client assertion.
func TestAuthorizationGrantReplay(t *testing.T) {
	h := newHarness(t, grantPolicy)
	g := signGrant(t, userClaims())
	first := h.check(t, grantReq("/oauth/v2/oauth-token", grantBody(g, signPartner(t, partnerClaims()))))
	assertResponse(t, first, grantAllowed("grant-and-client", map[string]string{
		"x-client-id": partnerIss, "x-user-id": "alice", "x-grant-type": grantTypeURN,
	}).by("partner", partnerIss, ""))
	again := h.check(t, grantReq("/oauth/v2/oauth-token", grantBody(g, signPartner(t, partnerClaims()))))
	assertResponse(t, again, invalidGrant("grant-and-client", "replayed").by("partner", partnerIss, ""))
	// The grant-only rule shares the namespace: the jti stays spent there.
	other := h.check(t, grantReq("/grant-only/token", grantBody(g, "")))
	assertResponse(t, other, invalidGrant("grant-only", "replayed").by("login", "", ""))
}
