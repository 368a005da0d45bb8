package adversarial_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// TestHiddenSecondCredentials: a request carries one credential (RFC 6749
// §2.3, RFC 6750 §2). A second one is refused wherever an upstream
// framework could find it, so the upstream can never act on a credential
// extauthz did not verify: any Authorization value beside a client
// assertion (frameworks split the scheme at any whitespace, a tab too),
// client credentials in the URI, and access_token, client_secret or
// client_assertion beside a token in Authorization, under any name a
// lenient framework folds to them and in multipart, JSON and untyped
// bodies.
func TestHiddenSecondCredentials(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bearer := "Bearer " + signLogin(h.loginClaims())
	api := func(method, query, contentType, body string) req {
		r := apiReq(bearer)
		r.method, r.body = method, body
		if query != "" {
			r.path = "/api/reports?" + query
		}
		if contentType != "" {
			r = r.with("content-type", contentType)
		}
		return r
	}
	either := func(contentType, body string) req {
		r := req{method: "POST", host: "api.example.com", path: "/either", body: body}.with("authorization", bearer)
		if contentType != "" {
			r = r.with("content-type", contentType)
		}
		return r
	}
	two := invalidRequest(check.ReasonTwoCredentials)
	var attacks []attack

	// Any Authorization beside an assertion.
	for _, v := range []string{"Basic\tdTpw", "Basic  dTpw", "basic dTpw"} {
		attacks = append(attacks, attack{name: "assertion and Authorization " + strings.ReplaceAll(v, "\t", "<TAB>"), req: assertionReq(signEC(h.ecClaims())).with("authorization", v), want: invalidRequest(check.ReasonSecretAndAssert)})
	}
	for _, v := range []string{"Bearer\tabc", "Token abc", "Digest x", "abc", "DPoP abc"} {
		attacks = append(attacks, attack{name: "assertion and Authorization " + strings.ReplaceAll(v, "\t", "<TAB>"), req: assertionReq(signEC(h.ecClaims())).with("authorization", v), want: two})
	}
	// An access token beside an assertion.
	attacks = append(attacks,
		attack{name: "assertion and form access_token", req: assertionReq(signEC(h.ecClaims()), "access_token", "x"), want: two},
		attack{name: "assertion and query access.token", req: func() req {
			r := assertionReq(signEC(h.ecClaims()))
			r.path += "?access.token=x"
			return r
		}(), want: two},
	)
	// Client credentials in the URI beside an assertion.
	for _, q := range []string{"client_secret=s", "client_id=ec-client", "client.id=x", "CLIENT_SECRET=s", "client_assertion=x", "client_id%5B%5D=x"} {
		r := assertionReq(signEC(h.ecClaims()))
		r.path += "?" + q
		attacks = append(attacks, attack{name: "assertion and query " + q, req: r, want: invalidRequest(check.ReasonCredentialsInQuery)})
	}
	// A second credential beside a bearer token, in the query.
	for _, q := range []string{
		"access_token=x", "access.token=x", "access+token=x", "access%20token=x", "access[token=x", "access_token[]=x",
		"access_token[0]=x", "ACCESS_TOKEN=x", "access%5Ftoken=x", "a=1;access_token=x", "client_secret=s", "client.secret=s",
		"client_assertion=x",
	} {
		attacks = append(attacks, attack{name: "bearer and query " + q, req: api("GET", q, "", ""), want: two})
	}
	// In a form body.
	for _, name := range []string{"access_token", "access.token", "access token", "access[token", "access_token[]", "Access_Token", "client_secret", "client_assertion"} {
		attacks = append(attacks, attack{name: "bearer and form " + name, req: api("POST", "", formType, url.QueryEscape(name)+"=x"), want: two})
	}
	// client_secret beside a bearer token at a rule taking either kind
	// (RFC 6749 §2.3: one client authentication method per request).
	for _, body := range []string{"client_secret=s", "grant_type=client_credentials&client_secret=s", "client.secret=s"} {
		attacks = append(attacks, attack{name: "either rule, bearer and " + body, req: either(formType, body), want: two})
	}
	// In a multipart body.
	const boundary = "XyZ"
	part := func(name, value string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	for _, name := range []string{"access_token", "access.token", "access_token[]", "client_secret"} {
		body := part("title", "q1") + part(name, "x") + "--" + boundary + "--\r\n"
		attacks = append(attacks, attack{name: "bearer and multipart " + name, req: api("POST", "", "multipart/form-data; boundary="+boundary, body), want: two})
	}
	attacks = append(attacks,
		attack{name: "bearer and a multipart body that does not parse", req: api("POST", "", "multipart/form-data; boundary="+boundary, "--"+boundary+"\r\nno headers end"), want: two},
		attack{name: "bearer and multipart without a boundary", req: api("POST", "", "multipart/form-data", part("x", "y")), want: two},
	)
	// In a JSON body.
	for _, body := range []string{`{"access_token":"x"}`, `{"report":1,"access.token":"x"}`, `{"Client_Secret":"s"}`, ` {"a":{"b":[1,2]},"access_token":null}`} {
		attacks = append(attacks, attack{name: "bearer and JSON " + body, req: api("POST", "", "application/json", body), want: two})
	}
	attacks = append(attacks, attack{name: "bearer and +json", req: api("POST", "", "application/problem+json; charset=utf-8", `{"access_token":"x"}`), want: two})
	// In a body without Content-Type, read as a form and as JSON.
	for _, body := range []string{"access_token=x", "a=1&access.token=x", `{"access_token":"x"}`} {
		attacks = append(attacks, attack{name: "bearer and untyped body " + body, req: api("POST", "", "", body), want: two})
	}
	h.run(t, attacks)

	// What carries no second credential passes.
	set := map[string]string{"x-client-id": "reporting-app", "x-user": "alice"}
	for name, r := range map[string]req{
		"a JSON body":                     api("POST", "", "application/json", `{"report":"q1","token_count":3,"nested":{"access_token":"x"}}`),
		"a multipart upload":              api("POST", "", "multipart/form-data; boundary="+boundary, part("file", "\x00\x01binary")+"--"+boundary+"--\r\n"),
		"a form":                          api("POST", "", formType, "year=2030&access=x&token=y"),
		"a query":                         api("GET", "year=2030&access_tokens=1&my_access_token=1", "", ""),
		"a text body naming access_token": api("POST", "", "text/plain", "access_token=x"),
		"an untyped body of plain text":   api("POST", "", "", "hello, world"),
	} {
		t.Run("allow "+name, func(t *testing.T) { assertAllow(t, h.check(t, r), set, removeAllBut(set)) })
	}
}
