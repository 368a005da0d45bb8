package adversarial_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/test/jose"
)

// TestEmbeddedKeys: keys the token names or carries — jwk, jku, x5u, x5c —
// are never fetched or trusted. The attacker's servers (and the /evil path
// beside the real JWKS) must see no request at all; the harness fails the
// test when they do.
func TestEmbeddedKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	_, evilEd, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evilJWK := jose.PublicJWK("ec-1", "ES256", &k.evilEC.PublicKey)
	certDER := evilCertDER()
	thumb := sha256.Sum256(certDER)
	evilEC := func(hdr map[string]any) string { return sign("ES256", k.evilEC, hdr, h.ecClaims()) }
	attacks := []attack{
		{name: "jwk, real kid", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jwk": evilJWK})), want: invalidClient(check.ReasonSignature)},
		{name: "jwk, no kid", req: assertionReq(evilEC(map[string]any{"jwk": evilJWK})), want: invalidClient(check.ReasonSignature)},
		{name: "jwk, its own kid", req: assertionReq(evilEC(map[string]any{"kid": "evil-1", "jwk": jose.PublicJWK("evil-1", "ES256", &k.evilEC.PublicKey)})), want: invalidClient(check.ReasonKID)},
		{name: "jwk is the issuer's own public key", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jwk": jose.PublicJWK("ec-1", "ES256", &k.ec.PublicKey)})), want: invalidClient(check.ReasonSignature)},
		{name: "jwk with the attacker's RSA key", req: assertionReq(sign("RS256", k.evilRSA, map[string]any{"kid": "rsa-1", "jwk": jose.PublicJWK("rsa-1", "RS256", &k.evilRSA.PublicKey)}, h.rsaClaims())), want: invalidClient(check.ReasonSignature)},
		{name: "jku, real kid", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jku": h.evil.URL + "/jwks.json"})), want: invalidClient(check.ReasonSignature)},
		{name: "jku, attacker's kid", req: assertionReq(evilEC(map[string]any{"kid": "evil-1", "jku": h.evil.URL + "/jwks.json"})), want: invalidClient(check.ReasonKID)},
		{name: "jku, no kid", req: assertionReq(evilEC(map[string]any{"jku": h.evil.URL + "/jwks.json"})), want: invalidClient(check.ReasonSignature)},
		{name: "jku on the issuer's own JWKS host", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jku": h.jwks.URL + "/evil"})), want: invalidClient(check.ReasonSignature)},
		{name: "jku of the wrong type", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jku": []any{h.evil.URL + "/jwks.json"}})), want: invalidClient(check.ReasonSignature)},
		{name: "x5u, real kid", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "x5u": h.evil.URL + "/cert.pem"})), want: invalidClient(check.ReasonSignature)},
		{name: "x5u, no kid", req: assertionReq(evilEC(map[string]any{"x5u": h.evil.URL + "/cert.pem"})), want: invalidClient(check.ReasonSignature)},
		{name: "x5c self-signed, no kid", req: assertionReq(evilEC(map[string]any{"x5c": []any{base64.StdEncoding.EncodeToString(certDER)}})), want: invalidClient(check.ReasonSignature)},
		{name: "x5c self-signed, real kid, x5t#S256", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "x5c": []any{base64.StdEncoding.EncodeToString(certDER)}, "x5t#S256": b64.EncodeToString(thumb[:])})), want: invalidClient(check.ReasonSignature)},
		{name: "x5c at the PEM issuer", req: assertionReq(sign("RS256", k.evilRSA, map[string]any{"x5c": []any{base64.StdEncoding.EncodeToString(certDER)}}, with(h.rsaClaims(), "iss", "pem-client", "sub", "pem-client"))), want: invalidClient(check.ReasonSignature)},
		{name: "all of them", req: assertionReq(evilEC(map[string]any{"kid": "ec-1", "jwk": evilJWK, "jku": h.evil.URL + "/jwks.json", "x5u": h.evil.URL + "/cert.pem", "x5c": []any{base64.StdEncoding.EncodeToString(certDER)}})), want: invalidClient(check.ReasonSignature)},
		{name: "bearer jwk", req: apiReq("Bearer " + sign("EdDSA", evilEd, map[string]any{"kid": "login-1", "jwk": jose.PublicJWK("login-1", "EdDSA", evilEd.Public())}, h.loginClaims())), want: invalidToken(check.ReasonSignature)},
		{name: "bearer jku", req: apiReq("Bearer " + sign("EdDSA", evilEd, map[string]any{"kid": "login-1", "jku": h.evil.URL + "/jwks.json"}, h.loginClaims())), want: invalidToken(check.ReasonSignature)},
	}
	h.run(t, attacks)
}

// TestKIDInjection: kid values aimed at file, SQL, template or URL lookups,
// with NULs, control characters, look-alikes, the wrong type and a kid of
// another issuer. A kid only selects among the issuer's own keys: unknown
// ones are denied without a fetch inside the refetch cooldown, and at the
// keyless PEM issuer every kid reaches the signature check.
func TestKIDInjection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	kids := []string{
		"../../../../etc/passwd", "..\\..\\windows\\win.ini", "/dev/zero", "/proc/self/environ", "file:///etc/passwd",
		"http://169.254.169.254/latest/meta-data/", h.evil.URL + "/jwks.json",
		"' OR '1'='1", "ec-1' OR '1'='1' --", "1; DROP TABLE keys;--", `ec-1"; --`,
		"ec-1\x00", "\x00", "ec-1\x00evil", "ec-1%00", "ec-1\r\nx-client-id: admin", "ec-1\n",
		"ec-1 ", " ec-1", "EC-1", "ec-1\u200b", "\uff45\uff43-1", "ec\u20101",
		"{{.}}", "${jndi:ldap://evil/x}", "<script>alert(1)</script>", "*", "%", "ec-*",
		strings.Repeat("k", 8<<10),
		"rsa-1", "login-1", "spire-1",
	}
	var attacks []attack
	for _, kid := range kids {
		name := fmt.Sprintf("%.40q", kid)
		attacks = append(attacks,
			attack{name: "ec/" + name, req: assertionReq(sign("ES256", k.evilEC, map[string]any{"kid": kid}, h.ecClaims())), want: invalidClient(check.ReasonKID)},
			attack{name: "pem/" + name, req: assertionReq(sign("RS256", k.evilRSA, map[string]any{"kid": kid}, with(h.rsaClaims(), "iss", "pem-client", "sub", "pem-client"))), want: invalidClient(check.ReasonSignature)},
		)
	}
	// Another issuer's kid, genuinely signed by that issuer's key, finds
	// nothing in this issuer's set.
	attacks = append(attacks,
		attack{name: "rsa-1 signed by the rsa issuer, iss ec-client", req: assertionReq(signRSA(h.ecClaims())), want: invalidClient(check.ReasonKID)},
		// Under the default limits a 64 KiB kid never reaches the parser:
		// the body (64 KiB) or the token (16 KiB) is too large first.
		attack{name: "64 KiB kid, assertion", req: assertionReq(sign("ES256", k.evilEC, map[string]any{"kid": strings.Repeat("k", 64<<10)}, h.ecClaims())), want: invalidRequest(check.ReasonBodyTooLarge)},
		attack{name: "64 KiB kid, bearer", req: apiReq("Bearer " + sign("EdDSA", k.login, map[string]any{"kid": strings.Repeat("k", 64<<10)}, h.loginClaims())), want: invalidToken(check.ReasonMalformedToken)},
	)
	for _, kid := range []any{1, 1.5, true, nil, []any{"ec-1"}, map[string]any{"$ne": ""}} {
		attacks = append(attacks, attack{
			name: fmt.Sprintf("kid of type %T", kid),
			req:  assertionReq(compact(js(map[string]any{"alg": "ES256", "kid": kid}), js(h.ecClaims()), randomBytes(64))),
			want: invalidClient(check.ReasonMalformedToken),
		})
	}
	h.run(t, attacks)
}

// TestKIDOversized: with the token limit raised to let a 64 KiB kid
// through to the key lookup, it is an unknown kid like any other: no fetch
// inside the cooldown.
func TestKIDOversized(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withLimits(1<<20, 4<<20))
	tok := sign("ES256", testKeys().evilEC, map[string]any{"kid": strings.Repeat("k", 64<<10)}, h.ecClaims())
	h.run(t, []attack{{name: "64 KiB kid", req: assertionReq(tok), want: invalidClient(check.ReasonKID)}})
}

// TestUnknownKIDFetchBound: a flood of tokens with random kids costs at
// most one JWKS fetch per issuer per refetch cooldown (30s by default),
// however many arrive and however concurrently.
func TestUnknownKIDFetchBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	flood := func(n int, iss string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for range n {
			wg.Go(func() {
				c := with(h.ecClaims(), "iss", iss, "sub", iss)
				tok := sign("ES256", k.evilEC, map[string]any{"kid": newJTI()}, c)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				resp, err := h.client.Check(ctx, assertionReq(tok).proto())
				switch {
				case err != nil:
					errs <- err.Error()
				case codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated || metadata(resp)["reason"] != check.ReasonKID:
					errs <- fmt.Sprintf("got %v %v", resp.GetStatus(), metadata(resp))
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
	step := func(name string, n int, iss, path string, want int) {
		t.Helper()
		before := h.jwks.Count(path)
		flood(n, iss)
		if got := h.jwks.Count(path) - before; got != want {
			t.Errorf("%s: %d tokens with unknown kids caused %d fetches of %s, want %d", name, n, got, path, want)
		}
	}
	step("inside the cooldown of the prefetch", 50, "ec-client", "/ec", 0)
	h.clock.Advance(31 * time.Second)
	step("cooldown over", 50, "ec-client", "/ec", 1)
	step("right after the refetch", 50, "ec-client", "/ec", 0)
	h.clock.Advance(10 * time.Second)
	step("10s later", 50, "ec-client", "/ec", 0)
	step("another issuer has its own cooldown", 50, "rsa-client", "/rsa", 1)
	if n := h.fetches(); n != 4+2 {
		t.Errorf("%d fetches in all, want 4 prefetches + 2 refetches", n)
	}
}

// TestCrit: crit naming unknown or registered header parameters, crit of
// any type (even empty), and b64 without crit are refused: extauthz
// understands no extension, so it may ignore none. A genuine signature
// does not help.
func TestCrit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	k := testKeys()
	var attacks []attack
	for _, hdr := range []map[string]any{
		{"crit": []any{"urn:example:ext"}, "urn:example:ext": true},
		{"crit": []any{"urn:example:ext"}},
		{"crit": []any{"exp"}, "exp": 1},
		{"crit": []any{"alg"}},
		{"crit": []any{"kid"}},
		{"crit": []any{"typ"}},
		{"crit": []any{"b64"}, "b64": false},
		{"crit": []any{"b64"}, "b64": true},
		{"b64": false},
		{"crit": []any{}},
		{"crit": "exp"},
		{"crit": nil},
		{"crit": []any{"iat", "nbf", "exp", "urn:example:ext"}},
	} {
		hdr["kid"] = "ec-1"
		name := js(hdr)
		attacks = append(attacks, attack{name: name, req: assertionReq(rawJWS("ES256", k.ec, js(mergeHeader("ES256", hdr)), js(h.ecClaims()))), want: invalidClient(check.ReasonCritical)})
	}
	attacks = append(attacks, attack{
		name: "bearer",
		req:  apiReq("Bearer " + rawJWS("EdDSA", k.login, js(map[string]any{"alg": "EdDSA", "kid": "login-1", "crit": []any{"urn:example:ext"}, "urn:example:ext": 1}), js(h.loginClaims()))),
		want: invalidToken(check.ReasonCritical),
	})
	h.run(t, attacks)
}

// mergeHeader is {"alg": alg} with hdr's members, nil ones kept as null.
func mergeHeader(alg string, hdr map[string]any) map[string]any {
	out := map[string]any{"alg": alg}
	for k, v := range hdr {
		out[k] = v
	}
	return out
}
