package check_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

// partnerAllowed is the allow of a valid partner assertion.
func partnerAllowed(agent string) want {
	return allowed("token-endpoint", "allowed", map[string]string{
		"x-client-id": partnerIss, "x-is-agent": agent,
	}).by("partner", partnerIss, "")
}

// TestClientAssertion covers the RFC 7521/7523 rules one row each, through
// the real server: every row asserts the exact status, response and reason.
func TestClientAssertion(t *testing.T) {
	h := newHarness(t, basePolicy)
	k := testKeys()
	tests := []struct {
		name string
		req  func(t *testing.T) httpReq
		want want
	}{
		{
			name: "valid PS256 assertion",
			req:  func(t *testing.T) httpReq { return tokenReq(assertionBody(signPartner(t, partnerClaims()))) },
			want: partnerAllowed("false"),
		},
		{
			name: "valid, raw_body and header_map",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.rawBody, r.headerMap = true, true
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "form content type with charset",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.headers = [][2]string{{"Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"}}
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "client_type ai-agent sets x-is-agent true",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("client_type", "ai-agent"))))
			},
			want: partnerAllowed("true"),
		},
		{
			name: "other client_type is not an agent",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("client_type", "confidential"))))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "client-sent managed headers are overwritten or removed",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()))).with(
					"x-is-agent", "true", "x-client-id", "admin", "x_client_id", "admin",
					"x-spiffe-id", "spiffe://example.org/ns/admin/sa/root", "x-internal-user", "root")
			},
			want: partnerAllowed("false"),
		},
		{
			name: "client-sent managed headers in any case, header_map",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims()))).with(
					"X-Is-Agent", "true", "X-CLIENT-ID", "admin", "X_Client_Id", "admin", "X-Spiffe-Id", "spiffe://evil/x")
				r.headerMap = true
				return r
			},
			want: partnerAllowed("false"),
		},
		{
			name: "RS256 assertion of an issuer with the default algorithms",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signOther(t, partnerClaims().set("iss", otherIss, "sub", otherIss))))
			},
			want: allowed("token-endpoint", "allowed", map[string]string{"x-client-id": otherIss, "x-is-agent": "false"}).by("other", otherIss, ""),
		},
		{
			name: "aud as a one-element array",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("aud", []any{tokenEndpoint}))))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "client_id parameter that matches",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()), "client_id", partnerIss))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "client_id parameter that does not match",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()), "client_id", "someone-else"))
			},
			want: invalidClient("client_id_mismatch").by("partner", partnerIss, ""),
		},
		{
			name: "wrong client_assertion_type",
			req: func(t *testing.T) httpReq {
				return tokenReq(form("grant_type", "client_credentials",
					"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
					"client_assertion", signPartner(t, partnerClaims())))
			},
			want: invalidClient("assertion_type_unsupported"),
		},
		{
			name: "missing client_assertion_type",
			req: func(t *testing.T) httpReq {
				return tokenReq(form("grant_type", "client_credentials", "client_assertion", signPartner(t, partnerClaims())))
			},
			want: invalidRequest("malformed_request"),
		},
		{
			name: "client_assertion_type without client_assertion",
			req: func(t *testing.T) httpReq {
				return tokenReq(form("grant_type", "client_credentials", "client_assertion_type", assertionURN))
			},
			want: invalidRequest("malformed_request"),
		},
		{
			name: "duplicate client_assertion",
			req: func(t *testing.T) httpReq {
				tok := signPartner(t, partnerClaims())
				return tokenReq(assertionBody(tok, "client_assertion", tok))
			},
			want: invalidRequest("duplicate_parameter"),
		},
		{
			name: "duplicate client_assertion_type",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()), "client_assertion_type", assertionURN))
			},
			want: invalidRequest("duplicate_parameter"),
		},
		{
			name: "semicolon separator",
			req: func(t *testing.T) httpReq {
				return tokenReq("grant_type=client_credentials;scope=x&" + form("client_assertion_type", assertionURN, "client_assertion", signPartner(t, partnerClaims())))
			},
			want: invalidRequest("bad_form_encoding"),
		},
		{
			name: "bad percent-encoding",
			req: func(t *testing.T) httpReq {
				return tokenReq("grant_type=client%ZZcredentials&" + form("client_assertion_type", assertionURN, "client_assertion", signPartner(t, partnerClaims())))
			},
			want: invalidRequest("bad_form_encoding"),
		},
		{
			name: "no kid: every key of the issuer is tried",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.partner, nil, partnerClaims())))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "alg that the JWK's alg does not allow",
			req: func(t *testing.T) httpReq {
				c := partnerClaims().set("iss", otherIss, "sub", otherIss)
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.other, map[string]any{"kid": "other-1"}, c)))
			},
			want: invalidClient("no_fitting_key").by("other", "", ""),
		},
		{
			name: "EC signature under an RSA key's kid",
			req: func(t *testing.T) httpReq {
				c := partnerClaims().set("iss", otherIss, "sub", otherIss)
				return tokenReq(assertionBody(jose.MustSign(t, "ES256", k.spire, map[string]any{"kid": "other-1"}, c)))
			},
			want: invalidClient("no_fitting_key").by("other", "", ""),
		},
		{
			name: "token over the size limit",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("pad", strings.Repeat("p", 20<<10)))))
			},
			want: invalidClient("token_malformed"),
		},
		{
			name: "aud array with two values",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("aud", []any{tokenEndpoint, "https://other.example.com/token"}))))
			},
			want: invalidClient("audience_invalid").by("partner", "", ""),
		},
		{
			name: "aud wrong",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("aud", "https://login.example.com/oauth/v2/oauth-authorize"))))
			},
			want: invalidClient("audience_invalid").by("partner", "", ""),
		},
		{
			name: "expired",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iat", unix(-5*time.Minute), "exp", unix(-time.Minute)))))
			},
			want: invalidClient("token_expired").by("partner", "", ""),
		},
		{
			name: "nbf ahead",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("nbf", unix(time.Minute)))))
			},
			want: invalidClient("token_not_yet_valid").by("partner", "", ""),
		},
		{
			name: "iat in the future",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iat", unix(2*time.Minute), "exp", unix(4*time.Minute)))))
			},
			want: invalidClient("issued_in_future").by("partner", "", ""),
		},
		{
			name: "lifetime longer than max_lifetime",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", unix(31*time.Minute)))))
			},
			want: invalidClient("lifetime_too_long").by("partner", partnerIss, ""),
		},
		{
			name: "lifetime too long counted from now when iat is absent",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iat", nil, "exp", unix(31*time.Minute)))))
			},
			want: invalidClient("lifetime_too_long").by("partner", partnerIss, ""),
		},
		{
			name: "expired, but within the clock skew",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iat", unix(-90*time.Second), "exp", unix(-29*time.Second)))))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "expired by exactly the clock skew",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iat", unix(-90*time.Second), "exp", unix(-30*time.Second)))))
			},
			want: invalidClient("token_expired").by("partner", "", ""),
		},
		{
			name: "nbf ahead, but within the clock skew",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("nbf", unix(29*time.Second)))))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "lifetime of exactly max_lifetime",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", unix(30*time.Minute)))))
			},
			want: partnerAllowed("false"),
		},
		{
			name: "lifetime one second over max_lifetime",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", unix(30*time.Minute+time.Second)))))
			},
			want: invalidClient("lifetime_too_long").by("partner", partnerIss, ""),
		},
		{
			name: "exp as a string",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", "1900000120"))))
			},
			want: invalidClient("claim_type_invalid"),
		},
		{
			name: "aud an empty array",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("aud", []any{}))))
			},
			want: invalidClient("claim_type_invalid"),
		},
		{
			name: "missing iss",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iss", nil))))
			},
			want: invalidClient("issuer_unknown"),
		},
		{
			name: "missing sub",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("sub", nil))))
			},
			want: invalidClient("subject_invalid").by("partner", "", ""),
		},
		{
			name: "crit header",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.partner, map[string]any{"kid": "partner-1", "crit": []any{"exp"}}, partnerClaims())))
			},
			want: invalidClient("crit_unsupported"),
		},
		{
			name: "embedded jwk header is not trusted",
			req: func(t *testing.T) httpReq {
				hdr := map[string]any{"kid": "partner-1", "jwk": jose.PublicJWK("partner-1", "PS256", &k.other.PublicKey)}
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.other, hdr, partnerClaims())))
			},
			want: invalidClient("signature_invalid").by("partner", "", ""),
		},
		{
			name: "jku header is not fetched",
			req: func(t *testing.T) httpReq {
				hdr := map[string]any{"kid": "attacker-1", "jku": h.jwks.URL + "/attacker", "x5u": h.jwks.URL + "/attacker-x5u"}
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.other, hdr, partnerClaims())))
			},
			want: invalidClient("kid_unknown").by("partner", "", ""),
		},
		{
			name: "body over the size limit",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()), "padding", strings.Repeat("a", check.DefaultMaxBodyBytes)))
			},
			want: invalidRequest("body_too_large"),
		},
		{
			name: "missing exp",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", nil))))
			},
			want: invalidClient("exp_missing").by("partner", "", ""),
		},
		{
			name: "bad signature",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(tamper(signPartner(t, partnerClaims()))))
			},
			want: invalidClient("signature_invalid").by("partner", "", ""),
		},
		{
			name: "signed by another key under the issuer's kid",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.other, map[string]any{"kid": "partner-1"}, partnerClaims())))
			},
			want: invalidClient("signature_invalid").by("partner", "", ""),
		},
		{
			name: "alg none",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "none", nil, map[string]any{"kid": "partner-1"}, partnerClaims())))
			},
			want: invalidClient("algorithm_not_allowed"),
		},
		{
			name: "alg NoNe with a signature",
			req: func(t *testing.T) httpReq {
				tok := signPartner(t, partnerClaims())
				hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NoNe","kid":"partner-1"}`))
				return tokenReq(assertionBody(hdr + tok[strings.IndexByte(tok, '.'):]))
			},
			want: invalidClient("algorithm_not_allowed"),
		},
		{
			name: "HS256 keyed with the issuer's RSA public key PEM",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "HS256", publicPEM(t, &k.partner.PublicKey), map[string]any{"kid": "partner-1"}, partnerClaims())))
			},
			want: invalidClient("algorithm_not_allowed").by("partner", "", ""),
		},
		{
			name: "HS256 keyed with the public key PEM, issuer with default algorithms",
			req: func(t *testing.T) httpReq {
				c := partnerClaims().set("iss", otherIss, "sub", otherIss)
				return tokenReq(assertionBody(jose.MustSign(t, "HS256", publicPEM(t, &k.other.PublicKey), map[string]any{"kid": "other-1"}, c)))
			},
			want: invalidClient("algorithm_not_allowed").by("other", "", ""),
		},
		{
			name: "key of another issuer",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(jose.MustSign(t, "PS256", k.other, map[string]any{"kid": "other-1"}, partnerClaims())))
			},
			want: invalidClient("kid_unknown").by("partner", "", ""),
		},
		{
			name: "unknown issuer",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("iss", "stranger", "sub", "stranger"))))
			},
			want: invalidClient("issuer_unknown"),
		},
		{
			name: "sub differs from iss",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("sub", "someone-else"))))
			},
			want: invalidClient("subject_invalid").by("partner", "", ""),
		},
		{
			name: "missing jti",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims().set("jti", nil))))
			},
			want: invalidClient("jti_missing").by("partner", partnerIss, ""),
		},
		{
			name: "partial body",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()))).with("x-envoy-auth-partial-body", "true")
			},
			want: invalidRequest("partial_body"),
		},
		{
			name: "assertion and client_secret",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()), "client_secret", "s3cr3t"))
			},
			want: invalidRequest("assertion_with_client_secret"),
		},
		{
			name: "assertion and Authorization Basic",
			req: func(t *testing.T) httpReq {
				basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(partnerIss+":s3cr3t"))
				return tokenReq(assertionBody(signPartner(t, partnerClaims()))).with("authorization", basic)
			},
			want: invalidRequest("assertion_with_client_secret"),
		},
		{
			name: "assertion and bearer token",
			req: func(t *testing.T) httpReq {
				return tokenReq(assertionBody(signPartner(t, partnerClaims()))).with("authorization", "Bearer "+signLogin(t, loginClaims()))
			},
			want: invalidRequest("multiple_credentials"),
		},
		{
			name: "no credential",
			req:  func(t *testing.T) httpReq { return tokenReq(form("grant_type", "client_credentials")) },
			want: invalidClient("credential_missing"),
		},
		{
			name: "JSON body carrying an assertion",
			req: func(t *testing.T) httpReq {
				r := tokenReq(`{"grant_type":"client_credentials","client_assertion_type":"` + assertionURN + `","client_assertion":"` + signPartner(t, partnerClaims()) + `"}`)
				r.headers = [][2]string{{"content-type", "application/json"}}
				return r
			},
			want: invalidClient("credential_missing"),
		},
		{
			name: "multipart body carrying an assertion",
			req: func(t *testing.T) httpReq {
				body := "--b0undary\r\nContent-Disposition: form-data; name=\"client_assertion_type\"\r\n\r\n" + assertionURN +
					"\r\n--b0undary\r\nContent-Disposition: form-data; name=\"client_assertion\"\r\n\r\n" + signPartner(t, partnerClaims()) +
					"\r\n--b0undary--\r\n"
				r := tokenReq(body)
				r.headers = [][2]string{{"content-type", "multipart/form-data; boundary=b0undary"}}
				return r
			},
			want: invalidClient("credential_missing"),
		},
		{
			name: "form body without a content type",
			req: func(t *testing.T) httpReq {
				r := tokenReq(assertionBody(signPartner(t, partnerClaims())))
				r.headers = nil
				return r
			},
			want: invalidClient("credential_missing"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResponse(t, h.check(t, tt.req(t)), tt.want)
		})
	}
	for _, p := range []string{"/attacker", "/attacker-x5u"} {
		if n := h.jwks.Count(p); n != 0 {
			t.Errorf("a URL named by a token header (%s) was fetched %d times", p, n)
		}
	}
}

// TestLifetimeDenyNamesTheField: the explanation of a lifetime deny names
// the field an operator changes.
func TestLifetimeDenyNamesTheField(t *testing.T) {
	h := newHarness(t, basePolicy)
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(basePolicy, "{{JWKS}}", h.jwks.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	srv := check.New(check.Config{Policy: policy.NewStore(snap), Replay: replay.NewMemory(replay.MemoryConfig{MaxEntries: 10, Clock: clock}), Now: clock})
	_, steps := srv.Explain(context.Background(), tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", unix(time.Hour))))).proto())
	var got []string
	for _, st := range steps {
		got = append(got, st.Check+": "+st.Detail)
	}
	want := "lifetime: the assertion lives 1h0m0s, over this rule's client_assertion.max_lifetime of 30m0s"
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Fatalf("the explanation does not name client_assertion.max_lifetime:\n%s", strings.Join(got, "\n"))
	}
}
