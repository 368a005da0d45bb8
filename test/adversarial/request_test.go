package adversarial_test

import (
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
)

// bearerMissing is the deny of a bearer rule that finds no bearer token.
func bearerMissing() deny { return deny{codes.Unauthenticated, 401, check.ReasonMissing} }

// both returns each attack as given and again with Envoy's other encoding
// (header_map with raw values, raw_body): both must give the same decision.
func both(attacks []attack) []attack {
	out := make([]attack, 0, 2*len(attacks))
	for _, a := range attacks {
		out = append(out, a)
		b := a
		b.name += "/raw"
		b.req = a.req.raw()
		out = append(out, b)
	}
	return out
}

// TestFormBodyRules: the request rules of RFC 7521/7523 client
// authentication, as the client-assertion issue states them, in both of
// Envoy's encodings. Every token here is genuine, so each deny is the
// request rule's.
func TestFormBodyRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ec := func() string { return signEC(h.ecClaims()) }
	urn := url.QueryEscape(assertionURN)
	h.mustAllow(t, assertionReq(ec()))
	h.mustAllow(t, assertionReq(ec()).without("content-type").with("Content-Type", "Application/X-WWW-Form-URLEncoded; charset=UTF-8"))
	h.mustAllow(t, assertionReq(ec(), "client_id", "ec-client").raw())

	multipart := "--b\r\nContent-Disposition: form-data; name=\"client_assertion_type\"\r\n\r\n" + assertionURN +
		"\r\n--b\r\nContent-Disposition: form-data; name=\"client_assertion\"\r\n\r\n" + ec() + "\r\n--b--\r\n"
	attacks := []attack{
		// Only application/x-www-form-urlencoded carries an assertion.
		{name: "JSON body", req: tokenReq(js(map[string]string{"client_assertion_type": assertionURN, "client_assertion": ec()})).without("content-type").with("content-type", "application/json"), want: invalidClient(check.ReasonMissing)},
		{name: "multipart body", req: tokenReq(multipart).without("content-type").with("content-type", "multipart/form-data; boundary=b"), want: invalidClient(check.ReasonMissing)},
		{name: "text/plain form", req: assertionReq(ec()).without("content-type").with("content-type", "text/plain"), want: invalidClient(check.ReasonMissing)},
		{name: "no content type", req: assertionReq(ec()).without("content-type"), want: invalidClient(check.ReasonMissing)},
		{name: "parameters in the query", req: req{method: "POST", host: "login.example.com", path: "/oauth/token?client_assertion_type=" + urn + "&client_assertion=" + ec(), headers: [][2]string{{"content-type", formType}}}, want: invalidClient(check.ReasonMissing)},
		// A partial body could hide a second parameter.
		{name: "partial body", req: assertionReq(ec()).with("x-envoy-auth-partial-body", "true"), want: invalidRequest(check.ReasonPartialBody)},
		{name: "partial body, upper case", req: assertionReq(ec()).with("x-envoy-auth-partial-body", "TRUE"), want: invalidRequest(check.ReasonPartialBody)},
		{name: "partial, empty body", req: tokenReq("").with("x-envoy-auth-partial-body", "true"), want: invalidRequest(check.ReasonPartialBody)},
		// client_assertion_type is exactly the jwt-bearer URN.
		{name: "SAML assertion type", req: tokenReq(form("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "client_assertion", ec())), want: invalidClient(check.ReasonAssertionType)},
		{name: "URN in upper case", req: tokenReq(form("client_assertion_type", strings.ToUpper(assertionURN), "client_assertion", ec())), want: invalidClient(check.ReasonAssertionType)},
		{name: "URN with a trailing space", req: tokenReq(form("client_assertion_type", assertionURN+" ", "client_assertion", ec())), want: invalidClient(check.ReasonAssertionType)},
		{name: "URN with a NUL", req: tokenReq(form("client_assertion_type", assertionURN+"\x00", "client_assertion", ec())), want: invalidClient(check.ReasonAssertionType)},
		{name: "empty type", req: tokenReq(form("client_assertion_type", "", "client_assertion", ec())), want: invalidClient(check.ReasonAssertionType)},
		{name: "no type", req: tokenReq(form("client_assertion", ec())), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "type only", req: tokenReq(form("client_assertion_type", assertionURN)), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "empty assertion", req: tokenReq(form("client_assertion_type", assertionURN, "client_assertion", "")), want: invalidRequest(check.ReasonMalformedReq)},
		// Each parameter at most once, whatever its spelling.
		{name: "client_assertion twice", req: assertionReq(ec(), "client_assertion", ec()), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "client_assertion twice, forged second", req: assertionReq(ec(), "client_assertion", sign("ES256", testKeys().evilEC, map[string]any{"kid": "ec-1"}, h.ecClaims())), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "client_assertion_type twice", req: assertionReq(ec(), "client_assertion_type", assertionURN), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "grant_type twice", req: assertionReq(ec(), "grant_type", "client_credentials"), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "client_id twice", req: assertionReq(ec(), "client_id", "ec-client", "client_id", "ec-client"), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "scope twice", req: assertionReq(ec(), "scope", "a", "scope", "b"), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "duplicate with an encoded name", req: tokenReq(assertionBody(ec()) + "&client%5Fassertion=" + ec()), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "duplicate with a fully encoded name", req: tokenReq(assertionBody(ec()) + "&%63%6c%69%65%6e%74%5f%69%64=x" + "&client_id=ec-client"), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "empty duplicate", req: assertionReq(ec(), "client_id", "", "client_id", "ec-client"), want: invalidRequest(check.ReasonDuplicateParam)},
		// A client_id parameter names the assertion's client.
		{name: "client_id of another client", req: assertionReq(ec(), "client_id", "rsa-client"), want: invalidClient(check.ReasonClientIDParam)},
		{name: "empty client_id", req: assertionReq(ec(), "client_id", ""), want: invalidClient(check.ReasonClientIDParam)},
		{name: "client_id in upper case", req: assertionReq(ec(), "client_id", "EC-CLIENT"), want: invalidClient(check.ReasonClientIDParam)},
		{name: "client_id with NUL", req: assertionReq(ec(), "client_id", "ec-client\x00"), want: invalidClient(check.ReasonClientIDParam)},
		// One client authentication method.
		{name: "with client_secret", req: assertionReq(ec(), "client_secret", "s3cret"), want: invalidRequest(check.ReasonSecretAndAssert)},
		{name: "with an empty client_secret", req: assertionReq(ec(), "client_secret", ""), want: invalidRequest(check.ReasonSecretAndAssert)},
		{name: "with Basic", req: assertionReq(ec()).with("authorization", "Basic ZWMtY2xpZW50OnMzY3JldA=="), want: invalidRequest(check.ReasonSecretAndAssert)},
		{name: "with basic", req: assertionReq(ec()).with("Authorization", "basic ZWMtY2xpZW50OnMzY3JldA=="), want: invalidRequest(check.ReasonSecretAndAssert)},
		{name: "with BASIC, no credentials", req: assertionReq(ec()).with("authorization", "BASIC"), want: invalidRequest(check.ReasonSecretAndAssert)},
		{name: "with Bearer", req: assertionReq(ec()).with("authorization", "Bearer "+signLogin(h.loginClaims())), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "type with Bearer", req: tokenReq(form("client_assertion_type", assertionURN)).with("authorization", "Bearer "+signLogin(h.loginClaims())), want: invalidRequest(check.ReasonTwoCredentials)},
		// Form syntax: & separates, escapes are valid, values are decoded
		// once.
		{name: "semicolon separator", req: tokenReq("grant_type=client_credentials;client_assertion_type=" + urn + "&client_assertion=" + ec()), want: invalidRequest(check.ReasonBadForm)},
		{name: "semicolon after the assertion", req: tokenReq(assertionBody(ec()) + ";client_id=rsa-client"), want: invalidRequest(check.ReasonBadForm)},
		{name: "semicolon only", req: tokenReq(assertionBody(ec()) + "&;"), want: invalidRequest(check.ReasonBadForm)},
		{name: "encoded semicolon stays in the value", req: tokenReq(assertionBody(ec()) + "%3Bclient_id=rsa-client"), want: invalidClient(check.ReasonMalformedToken)},
		{name: "double-encoded name", req: tokenReq("client_assertion_type=" + urn + "&client%255Fassertion=" + ec()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "double-encoded name, no type", req: tokenReq("client%255Fassertion=" + ec()), want: invalidClient(check.ReasonMissing)},
		{name: "double-encoded type", req: tokenReq("client_assertion_type=" + url.QueryEscape(urn) + "&client_assertion=" + ec()), want: invalidClient(check.ReasonAssertionType)},
		{name: "double-encoded dots", req: tokenReq("client_assertion_type=" + urn + "&client_assertion=" + strings.ReplaceAll(ec(), ".", "%252E")), want: invalidClient(check.ReasonMalformedToken)},
		{name: "double-encoded client_id", req: assertionReq(ec(), "client_id", url.QueryEscape("rsa-client")+"%"), want: invalidClient(check.ReasonClientIDParam)},
		{name: "bad escape", req: tokenReq(assertionBody(ec()) + "&x=%zz"), want: invalidRequest(check.ReasonBadForm)},
		{name: "truncated escape", req: tokenReq(assertionBody(ec()) + "&x=%4"), want: invalidRequest(check.ReasonBadForm)},
		{name: "bad escape in a name", req: tokenReq(assertionBody(ec()) + "&%=1"), want: invalidRequest(check.ReasonBadForm)},
	}
	h.run(t, both(attacks))
}

// TestReplay: a client assertion is accepted once per issuer and jti; a
// re-signed token with the same jti is a replay too, and a token without a
// jti is refused. JWT-SVID issuers are not replay-protected by default (a
// documented residual risk): SPIRE hands the same SVID out repeatedly.
func TestReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.ecClaims()
	tok := signEC(c)
	h.mustAllow(t, assertionReq(tok))
	h.run(t, []attack{
		{name: "same token", req: assertionReq(tok), want: invalidClient(check.ReasonReplayed)},
		{name: "same token, raw encoding", req: assertionReq(tok).raw(), want: invalidClient(check.ReasonReplayed)},
		{name: "re-signed, same jti", req: assertionReq(signEC(c)), want: invalidClient(check.ReasonReplayed)},
		{name: "same jti, later iat", req: assertionReq(signEC(with(c, "iat", c["iat"].(int64)+1))), want: invalidClient(check.ReasonReplayed)},
		{name: "no jti", req: assertionReq(signEC(with(h.ecClaims(), "jti", "<delete>"))), want: invalidClient(check.ReasonJTIMissing)},
		{name: "empty jti", req: assertionReq(signEC(with(h.ecClaims(), "jti", ""))), want: invalidClient(check.ReasonJTIMissing)},
	})
	// The jti is the issuer's: another issuer may use the same one.
	h.mustAllow(t, assertionReq(signRSA(with(h.rsaClaims(), "jti", c["jti"]))))

	svid := signSpire(h.svidClaims())
	h.mustAllow(t, assertionReq(svid))
	h.mustAllow(t, assertionReq(svid))
}

// TestBearerHeaderRules: RFC 6750 as the bearer issue states it: the scheme
// in any case, exactly one b64token credential, one Authorization header,
// and no access_token in the query or body beside it.
func TestBearerHeaderRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := func() string { return signLogin(h.loginClaims()) }
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		h.mustAllow(t, apiReq(scheme+" "+tok()))
	}
	h.mustAllow(t, apiReq("Bearer   "+tok()))
	h.mustAllow(t, apiReq("Bearer "+tok()).raw())

	post := func(authorization, body string) req {
		r := apiReq(authorization)
		r.method, r.body = "POST", body
		return r.with("content-type", formType)
	}
	attacks := []attack{
		{name: "scheme only", req: apiReq("Bearer"), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "scheme and space", req: apiReq("Bearer "), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two credentials", req: apiReq("Bearer " + tok() + " " + tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two credentials, comma", req: apiReq("Bearer " + tok() + ", " + tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two schemes, comma", req: apiReq("Bearer " + tok() + ", Bearer " + tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two headers", req: apiReq("Bearer "+tok()).with("Authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two headers, second Basic", req: apiReq("Bearer "+tok()).with("authorization", "Basic YTpi"), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two headers, second empty", req: apiReq("Bearer "+tok()).with("authorization", ""), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "two headers, first empty", req: apiReq("").with("authorization", "", "authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "quoted", req: apiReq(`Bearer "` + tok() + `"`), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "semicolon", req: apiReq("Bearer " + tok() + ";"), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "auth-param", req: apiReq("Bearer token=" + tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "= inside", req: apiReq("Bearer " + tok()[:10] + "=" + tok()[10:]), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "leading =", req: apiReq("Bearer =" + tok()), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "tab separator", req: apiReq("Bearer\t" + tok()), want: bearerMissing()},
		{name: "no separator", req: apiReq("Bearer" + tok()), want: bearerMissing()},
		{name: "other scheme", req: apiReq("Token " + tok()), want: bearerMissing()},
		{name: "Basic", req: apiReq("Basic YTpi"), want: bearerMissing()},
		{name: "DPoP scheme", req: apiReq("DPoP " + tok()), want: bearerMissing()},
		{name: "no header", req: apiReq(""), want: bearerMissing()},
		{name: "access_token in the query only", req: req{method: "GET", host: "api.example.com", path: "/api/reports?access_token=" + tok()}, want: bearerMissing()},
		{name: "access_token in the body only", req: post("", form("access_token", tok())), want: bearerMissing()},
		{name: "access_token in the query too", req: req{method: "GET", host: "api.example.com", path: "/api/reports?access_token=" + tok()}.with("authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "access_token in the query too, encoded name", req: req{method: "GET", host: "api.example.com", path: "/api/reports?x=1&access%5Ftoken=" + tok()}.with("authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "empty access_token in the query too", req: req{method: "GET", host: "api.example.com", path: "/api/reports?access_token"}.with("authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "access_token in the body too", req: post("Bearer "+tok(), form("access_token", tok())), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "access_token in the body too, encoded name", req: post("Bearer "+tok(), "access%5ftoken="+tok()), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "client assertion in the body too", req: post("Bearer "+tok(), assertionBody(signEC(h.ecClaims()))), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "duplicate body parameter", req: post("Bearer "+tok(), "a=1&a=2"), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "semicolon in the body", req: post("Bearer "+tok(), "a=1;access_token="+tok()), want: invalidRequest(check.ReasonBadForm)},
		{name: "partial form body", req: post("Bearer "+tok(), "a=1").with("x-envoy-auth-partial-body", "true"), want: invalidRequest(check.ReasonPartialBody)},
	}
	h.run(t, both(attacks))

	either := req{method: "POST", host: "login.example.com", path: "/either", headers: [][2]string{{"content-type", formType}}}
	h.mustAllow(t, func() req { r := either; r.body = assertionBody(signRSA(h.rsaClaims())); return r }())
	h.mustAllow(t, either.with("authorization", "Bearer "+tok()))
	h.run(t, both([]attack{{
		name: "either rule, both credentials",
		req: func() req {
			r := either.with("authorization", "Bearer "+tok())
			r.body = assertionBody(signRSA(h.rsaClaims()))
			return r
		}(),
		want: invalidRequest(check.ReasonTwoCredentials),
	}}))
}

// TestSecondCredentialHidden: spellings of a request that carry a second
// credential beside a valid bearer token, which common upstream parsers
// (Go's net/http, Rack) read, but extauthz does not see: a Content-Type
// whose parameters mime.ParseMediaType rejects (net/http still parses the
// form), two Content-Type headers (net/http reads the first), and ";" as a
// query separator (Rack splits on it). The bearer issue makes a second
// credential a 400.
func TestSecondCredentialHidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := func() string { return signLogin(h.loginClaims()) }
	post := func(contentType ...string) req {
		r := apiReq("Bearer " + tok())
		r.method, r.body = "POST", form("access_token", tok())
		for _, ct := range contentType {
			r = r.with("content-type", ct)
		}
		return r
	}
	h.run(t, both([]attack{
		{name: "form with a malformed parameter", req: post(formType + "; x"), want: invalidRequest(check.ReasonTwoCredentials)},
		{name: "two content types, form first", req: post(formType, "text/plain"), want: invalidRequest(check.ReasonMalformedReq)},
		{name: "semicolon in the query", req: req{method: "GET", host: "api.example.com", path: "/api/reports?a=1;access_token=" + tok()}.with("authorization", "Bearer "+tok()), want: invalidRequest(check.ReasonTwoCredentials)},
		// Found by FuzzParseForm: a repeated empty name is reported as
		// the duplicate "", which reads as no duplicate, and the whole
		// form is dropped.
		{name: "empty name twice", req: func() req { r := post(formType); r.body += "&=&="; return r }(), want: invalidRequest(check.ReasonDuplicateParam)},
		{name: "empty name twice, assertion", req: tokenReq(assertionBody(signEC(h.ecClaims())) + "&=&="), want: invalidRequest(check.ReasonDuplicateParam)},
	}))
}

// spoofed is every spelling of a managed header a client might send.
var spoofed = []string{
	"x-client-id", "X-Client-Id", "X-CLIENT-ID", "x_client_id", "X_Client_Id", "X_CLIENT_ID",
	"x-spiffe-id", "X-SPIFFE-ID", "x_spiffe_id", "X_SPIFFE_ID",
	"x-is-agent", "X-Is-Agent", "x_is_agent", "X_IS_AGENT",
	"x-user", "X-User", "x_user", "X_USER",
	"x-internal-user", "X-Internal-User", "x_internal_user", "X_INTERNAL_USER",
}

func withSpoofed(r req) req {
	for _, name := range spoofed {
		r = r.with(name, "spiffe://example.org/ns/admin/sa/root")
	}
	return r
}

// TestManagedHeaderSpoofing: whatever spellings of managed headers a client
// sends, an allowed request sets the rule's headers with
// OVERWRITE_IF_EXISTS_OR_ADD and removes every other managed name, in its
// - and _ spellings (Envoy matches headers_to_remove case-insensitively),
// in both of Envoy's header encodings. A deny touches nothing.
func TestManagedHeaderSpoofing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name string
		req  func() req
		set  map[string]string
	}{
		{"bearer", func() req { return apiReq("Bearer " + signLogin(h.loginClaims())) }, map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}},
		{"bearer without client_id or name", func() req {
			return apiReq("Bearer " + signLogin(with(h.loginClaims(), "client_id", "<delete>", "name", "<delete>")))
		}, map[string]string{}},
		{"client assertion", func() req { return assertionReq(signEC(h.ecClaims())) }, map[string]string{"x-client-id": "ec-client", "x-is-agent": "false"}},
		{"AI agent", func() req { return assertionReq(signEC(with(h.ecClaims(), "client_type", "ai-agent"))) }, map[string]string{"x-client-id": "ec-client", "x-is-agent": "true"}},
		{"JWT-SVID", func() req { return assertionReq(signSpire(h.svidClaims())) }, map[string]string{"x-client-id": workloadSVID, "x-spiffe-id": workloadSVID, "x-is-agent": "false"}},
	}
	for _, c := range cases {
		for _, raw := range []bool{false, true} {
			name := c.name
			if raw {
				name += "/raw"
			}
			t.Run(name, func(t *testing.T) {
				r := withSpoofed(c.req())
				if raw {
					r = r.raw()
				}
				assertAllow(t, h.check(t, r), c.set, removeAllBut(c.set))
			})
		}
	}
	h.run(t, both([]attack{
		{name: "denied with spoofed headers", req: withSpoofed(apiReq("Bearer " + sign("EdDSA", testKeys().login, map[string]any{"kid": "login-1"}, with(h.loginClaims(), "scope", "openid")))), want: forbidden(check.ReasonScope)},
		{name: "spoofed headers, no credential", req: withSpoofed(apiReq("")), want: bearerMissing()},
		{name: "no rule", req: withSpoofed(req{method: "GET", host: "api.example.com", path: "/other"}), want: forbidden(check.ReasonNoRule)},
	}))
}

// TestManagedHeaderMixedSeparators: CGI-style frameworks (WSGI, Rack, PHP)
// read X-Client-Id, x_client_id, x-client_id and x_client-id alike as
// HTTP_X_CLIENT_ID. A client that sends a managed name with its - and _
// mixed must not get it through.
//
// This FAILS today: see the report of issue #8 (policy/compile.go manage
// removes only the all-_ spelling).
func TestManagedHeaderMixedSeparators(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	mixed := []string{"x-client_id", "x_client-id", "x-spiffe_id", "x_spiffe-id", "x-is_agent", "x_is-agent", "x-internal_user", "x_internal-user"}
	r := apiReq("Bearer " + signLogin(h.loginClaims()))
	for _, name := range mixed {
		r = r.with(name, "admin")
	}
	resp := h.check(t, r)
	if metadata(resp)["decision"] != "allow" {
		t.Fatalf("want an allow: %v", metadata(resp))
	}
	removed := map[string]bool{}
	for _, name := range resp.GetOkResponse().GetHeadersToRemove() {
		removed[name] = true
	}
	for _, name := range mixed {
		if !removed[name] {
			t.Errorf("%s reaches the upstream: not in headers_to_remove %q", name, resp.GetOkResponse().GetHeadersToRemove())
		}
	}
}
