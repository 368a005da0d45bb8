package adversarial_test

import (
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// TestAccessTokenConfusion: other JWTs of the same issuer must not pass as
// access tokens. An OIDC ID token (nonce, at_hash, aud a client) is refused
// at every bearer rule; a rule with profile rfc9068 also requires typ
// at+jwt and RFC 9068 §2.2's claims, but leaves JWT-SVIDs to their own
// rules.
func TestAccessTokenConfusion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	idToken := func(c claims) claims {
		return with(c, "aud", "api.example.com", "nonce", "n-0S6_WzA2Mj", "at_hash", "77QmUPtjPfzWtF2AnpK9RQ")
	}
	jwt := func(c claims) string {
		return sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "JWT"}, c)
	}
	profiled := func(tok string) req {
		r := apiReq("Bearer " + tok)
		r.path = "/profiled/x"
		return r
	}
	h.run(t, []attack{
		{name: "an ID token (typ JWT)", req: apiReq("Bearer " + jwt(idToken(h.loginClaims()))), want: invalidToken(check.ReasonIDTokenClaims)},
		{name: "a token with nonce only", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "nonce", "n"))), want: invalidToken(check.ReasonIDTokenClaims)},
		{name: "a token with at_hash only", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "at_hash", "x"))), want: invalidToken(check.ReasonIDTokenClaims)},
		{name: "an ID token at the profiled rule", req: profiled(signLogin(idToken(h.loginClaims()))), want: invalidToken(check.ReasonIDTokenClaims)},
		{name: "profile: typ JWT", req: profiled(jwt(h.loginClaims())), want: invalidToken(check.ReasonTokenType)},
		{name: "profile: no typ", req: profiled(sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1"}, h.loginClaims())), want: invalidToken(check.ReasonTokenType)},
		{name: "profile: no client_id", req: profiled(signLogin(with(h.loginClaims(), "client_id", "<delete>"))), want: invalidToken(check.ReasonProfileClaim)},
		{name: "profile: no jti", req: profiled(signLogin(with(h.loginClaims(), "jti", "<delete>"))), want: invalidToken(check.ReasonProfileClaim)},
		{name: "profile: no sub", req: profiled(signLogin(with(h.loginClaims(), "sub", "<delete>"))), want: invalidToken(check.ReasonProfileClaim)},
		{name: "profile: no iat", req: profiled(signLogin(with(h.loginClaims(), "iat", "<delete>"))), want: invalidToken(check.ReasonProfileClaim)},
		{name: "a DPoP proof's type", req: apiReq("Bearer " + sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "dpop+jwt"}, h.loginClaims())), want: invalidToken(check.ReasonTokenType)},
		{name: "a logout token's type", req: apiReq("Bearer " + sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "logout+jwt"}, h.loginClaims())), want: invalidToken(check.ReasonTokenType)},
	})
	// What the rules take.
	api := map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}
	assertAllow(t, h.check(t, apiReq("Bearer "+jwt(h.loginClaims()))), api, removeAllBut(api))
	prof := map[string]string{"x-client-id": "reporting-app"}
	assertAllow(t, h.check(t, profiled(signLogin(h.loginClaims()))), prof, removeAllBut(prof))
	assertAllow(t, h.check(t, profiled(sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1", "typ": "application/at+jwt"}, h.loginClaims()))), prof, removeAllBut(prof))
	// A JWT-SVID keeps the JWT-SVID rules under the profile.
	svid := signSpire(claims{"sub": workloadSVID, "aud": "api.example.com", "iat": unixAt(h.clock.Now(), 0), "exp": unixAt(h.clock.Now(), 300e9)})
	assertAllow(t, h.check(t, profiled(svid)), map[string]string{}, removeAllBut(map[string]string{}))
}

// TestProfileClientID: under profile rfc9068, client_id is a non-empty
// string, not merely present.
func TestProfileClientID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var attacks []attack
	for name, v := range map[string]any{"null": nil, "empty": "", "a number": 7, "a list": []any{"reporting-app"}} {
		c := with(h.loginClaims(), "client_id", v)
		if v == nil {
			c["client_id"] = nil
		}
		r := apiReq("Bearer " + signLogin(c))
		r.path = "/profiled/x"
		attacks = append(attacks, attack{name: "client_id " + name, req: r, want: invalidToken(check.ReasonProfileClaim)})
	}
	h.run(t, attacks)
}
