package check_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/txtoken"
	"github.com/extauthz/extauthz/test/jose"
)

const tokenIssuer = "https://extauthz.internal.example"

// tokenPolicy has one rule that mints an internal token, one that reads the
// request in a claim, and one plain rule.
const tokenPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: orders
    match: {path_prefixes: [/orders/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    headers:
      x-client-id: client_id
    internal_token:
      audience: orders-svc
      purpose: order.read
      lifetime: 40s
      claims:
        user: claims.sub
        tier: 'claims.?tier.orValue("basic")'
        evil: 'claims.?evil.orValue("")'
        groups: '["a", "b"]'
  - name: per-request
    match: {path_prefixes: [/pr/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    internal_token:
      audience: pr-svc
      header: X-Upstream-Token
      claims:
        path: request.path
  - name: broken-claim
    match: {path_prefixes: [/broken/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    internal_token:
      audience: b
      claims:
        needs: claims.missing
  - name: plain
    match: {path_prefixes: [/plain/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
`

// tokenManaged is every header tokenPolicy manages, in every spelling.
var tokenManaged = policy.AllSpellings("x-client-id", "x-extauthz-token", "x-upstream-token")

// mintEnv is a harness serving tokenPolicy with a real keyring and its
// JWKS on loopback.
type mintEnv struct {
	*harness
	ring    *txtoken.Keyring
	dir     string
	jwksURL string
	clock   *atomic.Int64 // seconds since now
}

func newMintEnv(t *testing.T) *mintEnv {
	t.Helper()
	e := &mintEnv{dir: t.TempDir(), clock: new(atomic.Int64)}
	writePEM(t, filepath.Join(e.dir, "1.pem"), jose.P256(t))
	clock := func() time.Time { return now.Add(time.Duration(e.clock.Load()) * time.Second) }
	ring, err := txtoken.Open(txtoken.Config{Path: e.dir, PublishDelay: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	e.ring = ring
	srv := httptest.NewServer(ring.JWKSHandler())
	t.Cleanup(srv.Close)
	e.jwksURL = srv.URL
	e.harness = newHarness(t, tokenPolicy, func(c *check.Config) {
		c.Now = clock
		c.Tokens = &txtoken.Minter{Issuer: tokenIssuer, Keys: ring}
	})
	return e
}

func writePEM(t *testing.T, path string, k any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verify checks tok against the JWKS the keyring publishes over HTTP and
// returns its claims; it also checks the protected header.
func (e *mintEnv) verify(t *testing.T, tok string) map[string]any {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), e.jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set))
	if err != nil {
		t.Fatalf("the published JWKS does not verify the token: %v", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil || h["typ"] != "txntoken+jwt" || h["alg"] != "ES256" {
		t.Fatalf("header %s", hdr)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// upstream returns the value of name set upstream by an allow.
func upstream(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

func except(all []string, set ...string) []string {
	var out []string
next:
	for _, m := range all {
		for _, s := range set {
			if m == s {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func ordersReq(tok string, kv ...string) httpReq {
	return httpReq{method: "GET", host: "api.example.com", path: "/orders/7"}.with(append([]string{"authorization", "Bearer " + tok}, kv...)...)
}

// TestInternalTokenMinted: an allow carries a token the published JWKS
// verifies, with exactly the claims the rule says; a client's own
// x-extauthz-token, in either spelling, is overwritten or removed.
func TestInternalTokenMinted(t *testing.T) {
	e := newMintEnv(t)
	c := loginClaims().set("tier", "gold", "evil", "line1\r\nline2\x00")
	tok := signLogin(t, c)
	resp := e.check(t, ordersReq(tok, "x-extauthz-token", "forged", "x_extauthz_token", "forged", "X-Extauthz-Token", "forged"))
	minted := upstream(resp, "x-extauthz-token")
	assertResponse(t, resp, want{
		code:    codes.OK,
		headers: map[string]string{"x-client-id": "reporting-app", "x-extauthz-token": minted},
		remove:  except(tokenManaged, "x-client-id", "x-extauthz-token"),
		rule:    "orders", reason: "allowed",
	}.by("login", "reporting-app", ""))
	if minted == "forged" || minted == "" {
		t.Fatalf("token = %q", minted)
	}
	got := e.verify(t, minted)
	jti, _ := got["jti"].(string)
	wantClaims := map[string]any{
		"iss": tokenIssuer, "aud": "orders-svc", "iat": float64(unix(0)), "exp": float64(unix(40 * time.Second)),
		"jti": jti, "txn": jti, "sub": "reporting-app", "client_id": "reporting-app",
		"scope": "openid reports", "orig_iss": loginIss, "orig_jti": c["jti"], "purp": "order.read",
		"rctx": map[string]any{"authn": "bearer"}, "tctx": map[string]any{"rule": "orders"},
		"user": "user-7", "tier": "gold", "evil": "line1\r\nline2\x00", "groups": []any{"a", "b"},
	}
	if !reflect.DeepEqual(got, wantClaims) {
		t.Fatalf("claims =\n%v\nwant\n%v", got, wantClaims)
	}
	// A claim with CR/LF stays inside the JSON: no header carries one.
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if strings.ContainsAny(h.GetHeader().GetValue(), "\r\n\x00") {
			t.Fatalf("header %s carries a control character", h.GetHeader().GetKey())
		}
	}
}

// TestInternalTokenStrippedElsewhere: a rule without internal_token strips
// every spelling of the managed header, so a forged one never passes.
func TestInternalTokenStrippedElsewhere(t *testing.T) {
	e := newMintEnv(t)
	req := httpReq{method: "GET", host: "api.example.com", path: "/plain/x"}.with(
		"authorization", "Bearer "+signLogin(t, loginClaims()), "x-extauthz-token", "forged", "x_extauthz_token", "forged")
	assertResponse(t, e.check(t, req), want{
		code: codes.OK, headers: map[string]string{}, remove: tokenManaged, rule: "plain", reason: "allowed",
	}.by("login", "reporting-app", ""))
}

// TestInternalTokenReuse: the same credential gets the same token while
// three quarters of its lifetime remain; a claim that reads the request
// makes every token fresh.
func TestInternalTokenReuse(t *testing.T) {
	e := newMintEnv(t)
	tok := signLogin(t, loginClaims())
	jti := func(resp *authv3.CheckResponse, header string) string {
		t.Helper()
		v := upstream(resp, header)
		if v == "" {
			t.Fatalf("no %s: %v", header, resp)
		}
		return e.verify(t, v)["jti"].(string)
	}
	first := jti(e.check(t, ordersReq(tok)), "x-extauthz-token")
	e.clock.Store(29) // 40 s lifetime: reused until 30 s
	if again := jti(e.check(t, ordersReq(tok)), "x-extauthz-token"); again != first {
		t.Fatalf("second Check minted %s, want the cached %s", again, first)
	}
	if other := jti(e.check(t, ordersReq(signLogin(t, loginClaims()))), "x-extauthz-token"); other == first {
		t.Fatal("another credential got the same token")
	}
	e.clock.Store(30)
	if late := jti(e.check(t, ordersReq(tok)), "x-extauthz-token"); late == first {
		t.Fatal("token reused past three quarters of its lifetime")
	}

	pr := func() httpReq {
		return httpReq{method: "GET", host: "api.example.com", path: "/pr/1"}.with("authorization", "Bearer "+tok)
	}
	a, b := jti(e.check(t, pr()), "x-upstream-token"), jti(e.check(t, pr()), "x-upstream-token")
	if a == b {
		t.Fatal("a request-dependent token was reused")
	}
}

// TestInternalTokenMintFailures: no key that may sign, or a claim that
// fails, denies with 503 rather than allow without the token.
func TestInternalTokenMintFailures(t *testing.T) {
	e := newMintEnv(t)
	unavailable := func(rule, reason string) want {
		return want{code: codes.PermissionDenied, status: 503,
			headers: map[string]string{"content-type": "application/json", "cache-control": "no-store", "retry-after": "5"},
			body:    `{"error":"temporarily_unavailable"}`, rule: rule, reason: reason}
	}
	tok := signLogin(t, loginClaims())
	req := httpReq{method: "GET", host: "api.example.com", path: "/broken/x"}.with("authorization", "Bearer "+tok)
	assertResponse(t, e.check(t, req), unavailable("broken-claim", "internal_token_claims_failed").by("login", "reporting-app", ""))

	// Rotate to a key that has not waited its publish delay, the old one
	// withdrawn: nothing may sign.
	os.Remove(filepath.Join(e.dir, "1.pem"))
	writePEM(t, filepath.Join(e.dir, "2.pem"), jose.P256(t))
	e.ring.Refresh()
	assertResponse(t, e.check(t, ordersReq(tok)), unavailable("orders", "internal_token_unavailable").by("login", "reporting-app", ""))
	e.clock.Store(60)
	if resp := e.check(t, ordersReq(tok)); upstream(resp, "x-extauthz-token") == "" {
		t.Fatalf("after the publish delay: %v", resp)
	}
}

// TestInternalTokenRotationEndsReuse: a cached token signed by a key that
// no longer signs is not handed out again.
func TestInternalTokenRotationEndsReuse(t *testing.T) {
	e := newMintEnv(t)
	tok := signLogin(t, loginClaims())
	first := upstream(e.check(t, ordersReq(tok)), "x-extauthz-token")
	writePEM(t, filepath.Join(e.dir, "2.pem"), jose.P256(t))
	e.ring.Refresh()
	e.clock.Store(1)
	if got := upstream(e.check(t, ordersReq(tok)), "x-extauthz-token"); got != first {
		t.Fatal("the old key still signs during the delay; its token should be reused")
	}
	os.Remove(filepath.Join(e.dir, "1.pem"))
	e.ring.Refresh()
	e.clock.Store(2)
	resp := e.check(t, ordersReq(tok))
	if upstream(resp, "x-extauthz-token") != "" || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Fatalf("withdrawn key's token reused or minted: %v", resp)
	}
}
