package check_test

import (
	"testing"
	"time"

	"github.com/extauthz/extauthz/test/jose"
)

// TestClientAssertionReplay: a jti is accepted once per issuer; the same
// assertion again is a 401, and so is another assertion reusing the jti.
func TestClientAssertionReplay(t *testing.T) {
	h := newHarness(t, basePolicy)
	c := partnerClaims()
	tok := signPartner(t, c)
	assertResponse(t, h.check(t, tokenReq(assertionBody(tok))), partnerAllowed("false"))
	replayed := invalidClient("replayed").by("partner", partnerIss, "")
	assertResponse(t, h.check(t, tokenReq(assertionBody(tok))), replayed)
	// A new signature over the same jti is the same assertion to the store.
	assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, c.set("exp", unix(3*time.Minute)))))), replayed)
	// The jti space is per issuer: the other issuer may use the same value.
	other := partnerClaims().set("iss", otherIss, "sub", otherIss, "jti", c["jti"])
	assertResponse(t, h.check(t, tokenReq(assertionBody(signOther(t, other)))),
		allowed("token-endpoint", "allowed", map[string]string{"x-client-id": otherIss, "x-is-agent": "false"}).by("other", otherIss, ""))
}

// TestJWTSVIDAssertion: a JWT-SVID of SPIRE's OIDC discovery provider as
// the client credential, its SPIFFE ID mapped to a client id.
func TestJWTSVIDAssertion(t *testing.T) {
	h := newHarness(t, basePolicy)
	svidAllowed := allowed("token-endpoint", "allowed", map[string]string{
		"x-client-id": "jwt_assertion_client", "x-spiffe-id": workloadSVID, "x-is-agent": "false",
	}).by("spire", "jwt_assertion_client", workloadSVID)
	tests := []struct {
		name string
		tok  func(t *testing.T) string
		want want
	}{
		{"mapped SPIFFE ID", func(t *testing.T) string { return signSpire(t, svidClaims()) }, svidAllowed},
		{"aud as a string", func(t *testing.T) string { return signSpire(t, svidClaims().set("aud", tokenEndpoint)) }, svidAllowed},
		{
			"agent workload",
			func(t *testing.T) string { return signSpire(t, svidClaims().set("client_type", "ai-agent")) },
			allowed("token-endpoint", "allowed", map[string]string{
				"x-client-id": "jwt_assertion_client", "x-spiffe-id": workloadSVID, "x-is-agent": "true",
			}).by("spire", "jwt_assertion_client", workloadSVID),
		},
		{
			"issuer by trust domain: no iss, no client_ids",
			func(t *testing.T) string {
				return signSpire(t, svidClaims().set("iss", nil, "sub", "spiffe://mesh.example/ns/batch/sa/reporter"))
			},
			allowed("token-endpoint", "allowed", map[string]string{
				"x-client-id": "spiffe://mesh.example/ns/batch/sa/reporter", "x-spiffe-id": "spiffe://mesh.example/ns/batch/sa/reporter", "x-is-agent": "false",
			}).by("mesh", "spiffe://mesh.example/ns/batch/sa/reporter", "spiffe://mesh.example/ns/batch/sa/reporter"),
		},
		{
			"EdDSA is not a JWT-SVID algorithm",
			func(t *testing.T) string {
				return jose.MustSign(t, "EdDSA", testKeys().login, map[string]any{"kid": "login-1"}, svidClaims())
			},
			invalidClient("algorithm_not_allowed").by("spire", "", ""),
		},
		{
			"no aud",
			func(t *testing.T) string { return signSpire(t, svidClaims().set("aud", nil)) },
			invalidClient("audience_invalid").by("spire", "", ""),
		},
		{
			"typ of another kind of token",
			func(t *testing.T) string {
				return jose.MustSign(t, "ES256", testKeys().spire, map[string]any{"kid": "spire-1", "typ": "at+jwt"}, svidClaims())
			},
			invalidClient("token_type_invalid").by("spire", "", ""),
		},
		{
			"SPIFFE ID of another trust domain",
			func(t *testing.T) string {
				return signSpire(t, svidClaims().set("sub", "spiffe://evil.example/ns/applications/sa/workload-client"))
			},
			invalidClient("subject_invalid").by("spire", "", ""),
		},
		{
			"SPIFFE ID not in client_ids",
			func(t *testing.T) string {
				return signSpire(t, svidClaims().set("sub", "spiffe://example.org/ns/applications/sa/unmapped"))
			},
			invalidClient("subject_invalid").by("spire", "", "spiffe://example.org/ns/applications/sa/unmapped"),
		},
		{
			"sub not a SPIFFE ID",
			func(t *testing.T) string { return signSpire(t, svidClaims().set("sub", "workload-client")) },
			invalidClient("subject_invalid").by("spire", "", ""),
		},
		{
			"wrong audience",
			func(t *testing.T) string {
				return signSpire(t, svidClaims().set("aud", "https://elsewhere.example/token"))
			},
			invalidClient("audience_invalid").by("spire", "", workloadSVID),
		},
		{
			"expired",
			func(t *testing.T) string {
				return signSpire(t, svidClaims().set("iat", unix(-10*time.Minute), "exp", unix(-5*time.Minute)))
			},
			invalidClient("token_expired").by("spire", "", ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tokenReq(assertionBody(tt.tok(t)))), tt.want)
		})
	}
	// SVIDs carry no jti and SPIRE hands the same one out repeatedly, so
	// replay protection is off for this issuer by default.
	t.Run("same SVID twice", func(t *testing.T) {
		tok := signSpire(t, svidClaims())
		for range 2 {
			assertResponse(t, h.check(t, tokenReq(assertionBody(tok))), svidAllowed)
		}
	})
}
