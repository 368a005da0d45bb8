package adversarial_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// rawClaim is c's JSON text with name set to the raw JSON value v.
func rawClaim(c claims, name, v string) string {
	return prepend(js(with(c, name, "<delete>")), fmt.Sprintf("%q:%s", name, v))
}

// TestClaimTypes: registered claims of the wrong JSON type or range are
// refused before any key is used, whatever the signature: NumericDates are
// JSON numbers within 0..9999-12-31 (fractions allowed, TestFractionalDates),
// iss, sub and jti strings, aud a string or a non-empty array of strings.
func TestClaimTypes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	const hdr = `{"alg":"ES256","kid":"ec-1"}`
	wrong := invalidClient(check.ReasonClaimType)
	var attacks []attack
	for _, name := range []string{"exp", "nbf", "iat"} {
		for _, v := range []string{
			`"1900000120"`, `"2030-01-01T00:00:00Z"`, `"Wed, 01 Jan 2030 00:00:00 GMT"`,
			`1e300`, `-0.5`, `253402300799.5`, `99999999999999999999`, `253402300800`, `9223372036854775807`, `-9223372036854775808`, `-1`,
			`null`, `true`, `false`, `{}`, `[1900000120]`,
		} {
			attacks = append(attacks, attack{
				name: name + "=" + v,
				req:  assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), name, v))),
				want: wrong,
			})
		}
	}
	for _, name := range []string{"iss", "sub", "jti"} {
		for _, v := range []string{`1`, `null`, `true`, `["ec-client"]`, `{"ec-client":1}`} {
			attacks = append(attacks, attack{
				name: name + "=" + v,
				req:  assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), name, v))),
				want: wrong,
			})
		}
	}
	for _, v := range []string{`[]`, `1`, `null`, `true`, `{"aud":"` + tokenEndpoint + `"}`, `["` + tokenEndpoint + `",1]`, `["` + tokenEndpoint + `",null]`} {
		attacks = append(attacks, attack{name: "aud=" + v, req: assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), "aud", v))), want: wrong})
	}
	attacks = append(attacks,
		attack{name: "bearer exp string", req: apiReq("Bearer " + rawJWS("EdDSA", k.login, `{"alg":"EdDSA","kid":"login-1"}`, rawClaim(h.loginClaims(), "exp", `"4102444800"`))), want: invalidToken(check.ReasonClaimType)},
		attack{name: "bearer exp negative fraction", req: apiReq("Bearer " + rawJWS("EdDSA", k.login, `{"alg":"EdDSA","kid":"login-1"}`, rawClaim(h.loginClaims(), "exp", `-4102444800.5`))), want: invalidToken(check.ReasonClaimType)},
		attack{name: "bearer aud object", req: apiReq("Bearer " + rawJWS("EdDSA", k.login, `{"alg":"EdDSA","kid":"login-1"}`, rawClaim(h.loginClaims(), "aud", `{"api.example.com":true}`))), want: invalidToken(check.ReasonClaimType)},
	)
	h.run(t, attacks)
}

// TestFractionalDates: RFC 7519 §2 lets a NumericDate be any JSON number,
// so exp, nbf and iat with fractions or exponents are read exactly, and a
// fraction never rounds in the token's favour at the skew's edge.
func TestFractionalDates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	const hdr = `{"alg":"ES256","kid":"ec-1"}`
	set := map[string]string{"x-client-id": "ec-client", "x-is-agent": "false"}
	for _, c := range []struct{ name, v string }{
		{"exp", `1900000120.5`}, {"exp", `1900000120.0`}, {"exp", `1.90000012e9`}, {"exp", `1900000120e0`},
		{"exp", `1899999970.5`}, // 29.5 s past: inside the 30 s skew
		{"nbf", `1899999999.5`}, {"nbf", `1900000029.5`},
		{"iat", `1899999999.5`}, {"iat", `1.8999999995e9`}, {"iat", `1900000029.9`},
	} {
		t.Run("allow "+c.name+"="+c.v, func(t *testing.T) {
			assertAllow(t, h.check(t, assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), c.name, c.v)))), set, removeAllBut(set))
		})
	}
	h.run(t, []attack{
		{name: "exp 30.5 s past", req: assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), "exp", `1899999969.5`))), want: invalidClient(check.ReasonExpired)},
		{name: "nbf 30.5 s ahead", req: assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), "nbf", `1900000030.5`))), want: invalidClient(check.ReasonNotYetValid)},
		// Beyond float64: the strict parser refuses the payload itself.
		{name: "exp 1e400", req: assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), "exp", `1e400`))), want: invalidClient(check.ReasonMalformedToken)},
		{name: "iat 30.5 s ahead", req: assertionReq(rawJWS("ES256", k.ec, hdr, rawClaim(h.ecClaims(), "iat", `1900000030.5`))), want: invalidClient(check.ReasonIssuedInFuture)},
	})
}

// TestTimeClaims: time rules with well-typed claims. exp is required, iat
// may not be ahead (beyond the 30s skew), the lifetime of an assertion is at
// most max_lifetime (1800s) from iat and from now.
func TestTimeClaims(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := h.clock.Now()
	at := func(d string) int64 {
		var n int64
		fmt.Sscan(d, &n)
		return now.Unix() + n
	}
	attacks := []attack{
		{name: "no exp", req: assertionReq(signEC(with(h.ecClaims(), "exp", "<delete>"))), want: invalidClient(check.ReasonExpMissing)},
		{name: "exp now", req: assertionReq(signEC(with(h.ecClaims(), "exp", at("-30")))), want: invalidClient(check.ReasonExpired)},
		{name: "exp 0", req: assertionReq(signEC(with(h.ecClaims(), "exp", 0))), want: invalidClient(check.ReasonExpired)},
		{name: "iat ahead", req: assertionReq(signEC(with(h.ecClaims(), "iat", at("31")))), want: invalidClient(check.ReasonIssuedInFuture)},
		{name: "nbf ahead", req: assertionReq(signEC(with(h.ecClaims(), "nbf", at("31")))), want: invalidClient(check.ReasonNotYetValid)},
		{name: "lifetime from now", req: assertionReq(signEC(with(h.ecClaims(), "iat", "<delete>", "exp", at("1801")))), want: invalidClient(check.ReasonLifetime)},
		{name: "lifetime from iat", req: assertionReq(signEC(with(h.ecClaims(), "iat", at("-1000"), "exp", at("900")))), want: invalidClient(check.ReasonLifetime)},
		{name: "iat 0", req: assertionReq(signEC(with(h.ecClaims(), "iat", 0))), want: invalidClient(check.ReasonLifetime)},
		{name: "exp at the end of time", req: assertionReq(signEC(with(h.ecClaims(), "exp", int64(253402300799)))), want: invalidClient(check.ReasonLifetime)},
		{name: "bearer expired", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "exp", at("-31")))), want: invalidToken(check.ReasonExpired)},
		{name: "bearer without exp", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "exp", "<delete>"))), want: invalidToken(check.ReasonExpMissing)},
	}
	h.run(t, attacks)
}

// TestAudienceAttacks: a client assertion names exactly one audience, equal
// byte for byte to one of the rule's; a bearer token's aud must contain one.
// 10,000 audience values are too many (the token limit, or the 1000-entry
// cap when the limit is raised) even when one of them matches.
func TestAudienceAttacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	many := func(n int, match string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = fmt.Sprintf("a%d", i)
		}
		out[n/2] = match
		return out
	}
	attacks := []attack{
		{name: "empty string", req: assertionReq(signEC(with(h.ecClaims(), "aud", ""))), want: invalidClient(check.ReasonAudience)},
		{name: "array of empty string", req: assertionReq(signEC(with(h.ecClaims(), "aud", []any{""}))), want: invalidClient(check.ReasonAudience)},
		{name: "two values, one right", req: assertionReq(signEC(with(h.ecClaims(), "aud", []any{tokenEndpoint, "https://other.example/token"}))), want: invalidClient(check.ReasonAudience)},
		{name: "the right one twice", req: assertionReq(signEC(with(h.ecClaims(), "aud", []any{tokenEndpoint, tokenEndpoint}))), want: invalidClient(check.ReasonAudience)},
		{name: "trailing slash", req: assertionReq(signEC(with(h.ecClaims(), "aud", tokenEndpoint+"/"))), want: invalidClient(check.ReasonAudience)},
		{name: "upper case", req: assertionReq(signEC(with(h.ecClaims(), "aud", strings.ToUpper(tokenEndpoint)))), want: invalidClient(check.ReasonAudience)},
		{name: "issuer URL", req: assertionReq(signEC(with(h.ecClaims(), "aud", loginIss))), want: invalidClient(check.ReasonAudience)},
		{name: "10,000 values", req: assertionReq(signEC(with(h.ecClaims(), "aud", many(10_000, tokenEndpoint)))), want: invalidRequest(check.ReasonBodyTooLarge)},
		{name: "bearer empty", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "aud", ""))), want: invalidToken(check.ReasonAudience)},
		{name: "bearer case", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "aud", "API.example.com"))), want: invalidToken(check.ReasonAudience)},
		{name: "bearer 10,000 values", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "aud", many(10_000, "api.example.com")))), want: invalidToken(check.ReasonMalformedToken)},
		{name: "bearer 1,001 values", req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "aud", many(1001, "api.example.com")))), want: invalidToken(check.ReasonClaimType)},
	}
	h.run(t, attacks)

	big := newHarness(t, withLimits(4<<20, 8<<20))
	big.run(t, []attack{
		{name: "raised limits/10,000 values", req: assertionReq(signEC(with(big.ecClaims(), "aud", many(10_000, tokenEndpoint)))), want: invalidClient(check.ReasonClaimType)},
		{name: "raised limits/bearer 10,000 values", req: apiReq("Bearer " + signLogin(with(big.loginClaims(), "aud", many(10_000, "api.example.com")))), want: invalidToken(check.ReasonClaimType)},
	})
	big.mustAllow(t, apiReq("Bearer "+signLogin(with(big.loginClaims(), "aud", many(1000, "api.example.com")))))
}

// TestLookalikeIdentities: iss, sub, client_ids keys and SPIFFE IDs are
// compared byte for byte. Look-alike letters, zero-width characters, other
// normalisation forms, case, and trailing bytes name nobody, even when the
// token is genuinely signed by the issuer.
func TestLookalikeIdentities(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	assertAllow(t, h.check(t, assertionReq(signEC(with(h.ecClaims(), "sub", "caf\u00e9-client")))),
		map[string]string{"x-client-id": "cafe-client", "x-is-agent": "false"}, removeAllBut(map[string]string{"x-client-id": "", "x-is-agent": ""}))
	assertAllow(t, h.check(t, assertionReq(signSpire(h.svidClaims()))),
		map[string]string{"x-client-id": workloadSVID, "x-spiffe-id": workloadSVID, "x-is-agent": "false"},
		removeAllBut(map[string]string{"x-client-id": "", "x-spiffe-id": "", "x-is-agent": ""}))

	var attacks []attack
	for _, iss := range []string{"ec-cl\u0456ent", "ec-client\u200b", "\u200bec-client", "ec\u2010client", "\uff45\uff43-client", "EC-CLIENT", "ec-client ", "ec-client\x00", "ec-client\n"} {
		attacks = append(attacks, attack{name: fmt.Sprintf("iss %+q", iss), req: assertionReq(signEC(with(h.ecClaims(), "iss", iss, "sub", iss))), want: invalidClient(check.ReasonIssuer)})
	}
	for _, sub := range []string{"ec-cl\u0456ent", "ec-client\u200b", "ec-client\u200d", "ec\u2010client", "\uff45\uff43-client", "EC-CLIENT", "ec-client ", "ec-client\x00",
		"cafe\u0301-client", "caf\u00c9-client", "CAF\u00c9-CLIENT", "caf\u00e9-client\u200b", "cafe-client"} {
		attacks = append(attacks, attack{name: fmt.Sprintf("sub %+q", sub), req: assertionReq(signEC(with(h.ecClaims(), "sub", sub))), want: invalidClient(check.ReasonSubject)})
	}
	for _, id := range []string{
		workloadSVID + "\u200b", "spiffe://ex\u0430mple.org/ns/apps/sa/worker", "spiffe://EXAMPLE.ORG/ns/apps/sa/worker",
		"spiffe://example.org./ns/apps/sa/worker", workloadSVID + "/", "spiffe://example.org/ns/apps/sa/%77orker",
		"spiffe://example.org/ns/apps/sa/../sa/worker", "SPIFFE://example.org/ns/apps/sa/worker", "\uff53piffe://example.org/ns/apps/sa/worker",
		"spiffe://example.org:443/ns/apps/sa/worker", "spiffe://user@example.org/ns/apps/sa/worker", "spiffe://example.org/ns/apps/sa/worker?x",
	} {
		attacks = append(attacks, attack{name: fmt.Sprintf("spiffe %+q", id), req: assertionReq(signSpire(with(h.svidClaims(), "sub", id))), want: invalidClient(check.ReasonIssuer)})
	}
	attacks = append(attacks, attack{name: "spiffe of another trust domain", req: assertionReq(signSpire(with(h.svidClaims(), "sub", "spiffe://example.com/ns/apps/sa/worker"))), want: invalidClient(check.ReasonIssuer)})
	for _, iss := range []string{loginIss + "/", "https://LOGIN.example.com", loginIss + "\u200b", "https://l\u043egin.example.com", loginIss + ".", "https://login.example.com:443", "http://login.example.com"} {
		attacks = append(attacks, attack{name: fmt.Sprintf("bearer iss %+q", iss), req: apiReq("Bearer " + signLogin(with(h.loginClaims(), "iss", iss))), want: invalidToken(check.ReasonIssuer)})
	}
	h.run(t, attacks)
}

// TestClaimCRLFInHeader: a claim that a header rule copies, carrying CR,
// LF or NUL, never becomes a header value: the request is allowed (the
// token is genuine) but the header is not set, and it is removed, so a
// client's own copy does not pass either.
func TestClaimCRLFInHeader(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	both := map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}
	assertAllow(t, h.check(t, apiReq("Bearer "+signLogin(h.loginClaims()))), both, removeAllBut(both))

	for _, name := range []any{"alice\r\nx-client-id: admin", "alice\nx-client-id: admin", "alice\rx", "alice\x00", "\r\n", "alice\r\n\r\nGET / HTTP/1.1", []any{"alice", "bob\r\nx: y"}} {
		t.Run(fmt.Sprintf("name %+q", name), func(t *testing.T) {
			r := apiReq("Bearer "+signLogin(with(h.loginClaims(), "name", name))).with("x-user", "spoofed", "X_User", "spoofed")
			set := map[string]string{"x-client-id": "reporting-app"}
			assertAllow(t, h.check(t, r), set, removeAllBut(set))
		})
	}
	t.Run("client_id with CRLF", func(t *testing.T) {
		r := apiReq("Bearer "+signLogin(with(h.loginClaims(), "client_id", "app\r\nx-user: admin"))).with("x-client-id", "spoofed")
		set := map[string]string{"x-user": "alice"}
		assertAllow(t, h.check(t, r), set, removeAllBut(set))
	})
}
