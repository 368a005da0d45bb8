package check_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/test/jose"
)

// introspectPolicy has an API taking opaque tokens of the authorization
// server "as" (introspected) beside the login issuer's JWTs.
const introspectPolicy = `version: v1
issuers:
  - name: as
    issuer: https://as.example.com
    introspection:
      endpoint: {{INTROSPECT}}
      client:
        client_id: extauthz
{{CLIENT}}
      cache_ttl: 30s
{{TUNING}}  - name: login
    issuer: https://login.example.com
    jwks_uri: {{JWKS}}/login
rules:
  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [as, login]
      audiences: [api.example.com]
      scopes: [reports]
    headers:
      x-client-id: client_id
      x-user: claims.sub
      x-issuer: issuer
  - name: dpop-opaque
    match:
      path_prefixes: [/dpop/]
    bearer:
      issuers: [as]
      audiences: [api.example.com]
      dpop: {mode: required}
    headers:
      x-client-id: client_id
      x-dpop-jkt: dpop_jkt
default_action: deny
`

// introspectionServer is an RFC 7662 endpoint on loopback: each token
// maps to the response members it answers with (active added), or to
// inactive when absent; down makes it answer 500.
type introspectionServer struct {
	url  string
	hits atomic.Int64
	down atomic.Bool
	mu   sync.Mutex
	toks map[string]map[string]any
	// certPEM is the server's certificate when it serves TLS.
	certPEM string
}

// endpointOpts shape the endpoint and the policy's use of it.
type endpointOpts struct {
	// client is the policy's client block less client_id (indented 8);
	// "" is client_secret_basic with the secret "s3cret".
	client string
	// tuning are more introspection fields (indented 6), each line ending
	// in a newline.
	tuning string
	// authOK judges the request's client authentication; nil: Basic
	// extauthz:s3cret.
	authOK func(r *http.Request) bool
	// tls serves TLS with this config (client certificates).
	tls *tls.Config
	// hold, when set, is waited on (or the request's end) before
	// answering a token with the prefix "slow-".
	hold <-chan struct{}
	// arrived gets a value when a "slow-" request arrives.
	arrived chan<- struct{}
}

func newIntrospectionServerWith(t *testing.T, o endpointOpts) *introspectionServer {
	t.Helper()
	s := &introspectionServer{toks: map[string]map[string]any{}}
	authOK := o.authOK
	if authOK == nil {
		authOK = func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "extauthz" && p == "s3cret"
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		r.ParseForm()
		if !authOK(r) {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.PostForm.Get("token"), "slow-") && o.hold != nil {
			o.arrived <- struct{}{}
			select {
			case <-o.hold:
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		members, ok := s.toks[r.PostForm.Get("token")]
		s.mu.Unlock()
		out := map[string]any{"active": false}
		if ok {
			out = map[string]any{"active": true}
			for k, v := range members {
				out[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	if o.tls != nil {
		srv.TLS = o.tls
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		s.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// issue makes tok active with members; nil revokes it.
func (s *introspectionServer) issue(tok string, members map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if members == nil {
		delete(s.toks, tok)
		return
	}
	s.toks[tok] = members
}

// opaqueMembers is what the endpoint says of a good token.
func opaqueMembers() map[string]any {
	return map[string]any{
		"iss": "https://as.example.com", "sub": "user-9", "aud": "api.example.com", "client_id": "reporting-app",
		"scope": "reports openid", "exp": unix(time.Hour), "iat": unix(-time.Minute), "token_type": "Bearer",
	}
}

// movingClock is the server's clock, moved by tests.
type movingClock struct{ off atomic.Int64 }

func (c *movingClock) now() time.Time      { return now.Add(time.Duration(c.off.Load())) }
func (c *movingClock) add(d time.Duration) { c.off.Add(int64(d)) }
func (c *movingClock) option() func(*check.Config) {
	return func(cfg *check.Config) { cfg.Now = c.now }
}

// newIntrospectHarness serves introspectPolicy against a fresh endpoint.
func newIntrospectHarness(t *testing.T) (*harness, *introspectionServer, *movingClock) {
	return newIntrospectHarnessWith(t, endpointOpts{})
}

func newIntrospectHarnessWith(t *testing.T, o endpointOpts) (*harness, *introspectionServer, *movingClock) {
	t.Helper()
	as := newIntrospectionServerWith(t, o)
	client := o.client
	if client == "" {
		client = "        method: client_secret_basic\n        client_secret_file: " + writeTemp(t, "secret", "s3cret\n")
	}
	tuning := o.tuning
	if as.certPEM != "" {
		// The issuer's ca_file trusts the endpoint's certificate.
		tuning += "    ca_file: " + writeTemp(t, "ca.pem", as.certPEM) + "\n"
	}
	p := strings.NewReplacer("{{INTROSPECT}}", as.url, "{{CLIENT}}", client, "{{TUNING}}", tuning).Replace(introspectPolicy)
	clock := &movingClock{}
	return newHarness(t, p, clock.option()), as, clock
}

// writeTemp writes content to a file of a fresh directory.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var opaqueManaged = policy.AllSpellings("x-client-id", "x-dpop-jkt", "x-issuer", "x-user")

func opaqueAllowed(user string) want {
	return want{
		code: codes.OK, headers: map[string]string{"x-client-id": "reporting-app", "x-user": user, "x-issuer": "as"},
		rule: "reports-api", reason: "allowed",
	}.by("as", "reporting-app", "")
}

func opaqueReq(tok string) httpReq {
	return reportsReq("GET", "authorization", "Bearer "+tok, "x-user", "forged", "x_client_id", "forged")
}

func opaqueDenied(code codes.Code, status int, challenge, reason, clientID string) want {
	return bearerChallenge(code, status, challenge, reason).by("as", clientID, "")
}

// TestIntrospectAllow: an opaque token the endpoint calls active is
// allowed with the rule's headers from the response (client_id, a claim,
// the issuer), forged copies removed; N Checks of it make one request.
func TestIntrospectAllow(t *testing.T) {
	h, as, _ := newIntrospectHarness(t)
	as.issue("opaque-good", opaqueMembers())
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	for range 10 {
		assertResponse(t, h.check(t, opaqueReq("opaque-good")), w)
	}
	if n := as.hits.Load(); n != 1 {
		t.Fatalf("10 Checks of one token made %d introspection requests, want 1", n)
	}
	// Concurrent Checks of a new token: one request between them.
	as.issue("opaque-burst", opaqueMembers())
	var wg sync.WaitGroup
	denied := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := h.client.Check(ctx, opaqueReq("opaque-burst").proto())
			if err != nil || resp.GetOkResponse() == nil {
				denied <- fmt.Sprintf("%v %v", err, resp.GetDeniedResponse())
			}
		})
	}
	wg.Wait()
	close(denied)
	for d := range denied {
		t.Errorf("a concurrent Check was denied: %s", d)
	}
	if n := as.hits.Load(); n != 2 {
		t.Fatalf("20 concurrent Checks of a new token made %d introspection requests, want 1", n-1)
	}
	// A JWT of the rule's other issuer is verified locally, never sent to
	// the introspection endpoint.
	jwt := signLogin(t, loginClaims())
	resp := h.check(t, reportsReq("GET", "authorization", "Bearer "+jwt))
	if resp.GetOkResponse() == nil {
		t.Fatalf("login JWT: %v", resp.GetDeniedResponse())
	}
	if n := as.hits.Load(); n != 2 {
		t.Fatalf("a JWT of another issuer was introspected (%d requests, want the 2 above)", n)
	}
}

// removedBut is every managed name the allow does not set.
func removedBut(all []string, set map[string]string) []string {
	var out []string
	for _, m := range all {
		if _, ok := set[m]; !ok {
			out = append(out, m)
		}
	}
	return out
}

// TestIntrospectRevoked: a revoked token keeps passing while its cache
// entry lasts (cache_ttl 30s) and is refused, 401 token_inactive, once it
// expires; the refusal is cached for negative_cache_ttl.
func TestIntrospectRevoked(t *testing.T) {
	h, as, clock := newIntrospectHarness(t)
	as.issue("opaque-rev", opaqueMembers())
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	assertResponse(t, h.check(t, opaqueReq("opaque-rev")), w)
	as.issue("opaque-rev", nil)
	clock.add(29 * time.Second)
	assertResponse(t, h.check(t, opaqueReq("opaque-rev")), w)
	clock.add(time.Second)
	inactive := opaqueDenied(codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token"`, "token_inactive", "")
	assertResponse(t, h.check(t, opaqueReq("opaque-rev")), inactive)
	assertResponse(t, h.check(t, opaqueReq("opaque-rev")), inactive)
	if n := as.hits.Load(); n != 2 {
		t.Fatalf("%d introspection requests, want 2 (one per cache entry)", n)
	}
}

// TestIntrospectNegativeCache: an inactive answer is reused for
// negative_cache_ttl (10s), then asked again.
func TestIntrospectNegativeCache(t *testing.T) {
	h, as, clock := newIntrospectHarness(t)
	inactive := opaqueDenied(codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token"`, "token_inactive", "")
	for range 5 {
		assertResponse(t, h.check(t, opaqueReq("opaque-unknown")), inactive)
	}
	if n := as.hits.Load(); n != 1 {
		t.Fatalf("5 Checks of an inactive token made %d requests, want 1", n)
	}
	as.issue("opaque-unknown", opaqueMembers())
	clock.add(9 * time.Second)
	assertResponse(t, h.check(t, opaqueReq("opaque-unknown")), inactive)
	clock.add(time.Second)
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	assertResponse(t, h.check(t, opaqueReq("opaque-unknown")), w)
	if n := as.hits.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestIntrospectOutage: with the endpoint down, a token not in the cache is
// 503 temporarily_unavailable with Retry-After (fail closed), and a cached
// one is still allowed until its entry expires.
func TestIntrospectOutage(t *testing.T) {
	h, as, clock := newIntrospectHarness(t)
	as.issue("opaque-cached", opaqueMembers())
	as.issue("opaque-new", opaqueMembers())
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	assertResponse(t, h.check(t, opaqueReq("opaque-cached")), w)
	as.down.Store(true)
	unavailable := want{
		code: codes.PermissionDenied, status: 503,
		headers: map[string]string{"retry-after": "5", "content-type": "application/json", "cache-control": "no-store"},
		body:    `{"error":"temporarily_unavailable"}`, rule: "reports-api", reason: "introspection_unavailable", issuer: "as",
	}
	assertResponse(t, h.check(t, opaqueReq("opaque-new")), unavailable)
	assertResponse(t, h.check(t, opaqueReq("opaque-cached")), w)
	clock.add(30 * time.Second)
	assertResponse(t, h.check(t, opaqueReq("opaque-cached")), unavailable)
	as.down.Store(false)
	assertResponse(t, h.check(t, opaqueReq("opaque-new")), w)
}

// TestIntrospectRuleChecks: the response feeds the rule's checks exactly
// as JWT claims do: scopes, audience (required: the rule lists
// audiences), exp, iss and cnf binding.
func TestIntrospectRuleChecks(t *testing.T) {
	h, as, _ := newIntrospectHarness(t)
	invalid := func(reason, clientID string) want {
		return opaqueDenied(codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token"`, reason, clientID)
	}
	for i, tc := range []struct {
		name string
		mod  map[string]any // nil value: member removed
		want want
	}{
		{"scope missing", map[string]any{"scope": "openid profile"}, opaqueDenied(codes.PermissionDenied, 403, `Bearer realm="extauthz", error="insufficient_scope", scope="reports"`, "insufficient_scope", "reporting-app")},
		{"no scope", map[string]any{"scope": nil}, opaqueDenied(codes.PermissionDenied, 403, `Bearer realm="extauthz", error="insufficient_scope", scope="reports"`, "insufficient_scope", "reporting-app")},
		{"another audience", map[string]any{"aud": "other-api.example.com"}, invalid("audience_invalid", "")},
		{"no audience", map[string]any{"aud": nil}, invalid("audience_invalid", "")},
		{"expired", map[string]any{"exp": unix(-time.Hour)}, invalid("token_expired", "")},
		{"another issuer", map[string]any{"iss": "https://login.example.com"}, invalid("issuer_unknown", "")},
		{"bound to a DPoP key, no proof", map[string]any{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}, invalid("bound_token_without_proof", "reporting-app")},
		{"bound to a certificate, none forwarded", map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, invalid("peer_certificate_missing", "reporting-app")},
		{"malformed scope", map[string]any{"scope": "reports  openid"}, invalid("scope_malformed", "reporting-app")},
		{"a refresh token", map[string]any{"token_type": "refresh_token"}, invalid("token_type_invalid", "")},
		{"a refresh token by its URN", map[string]any{"token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, invalid("token_type_invalid", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := opaqueMembers()
			for k, v := range tc.mod {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			tok := fmt.Sprintf("opaque-case-%d", i)
			as.issue(tok, m)
			assertResponse(t, h.check(t, opaqueReq(tok)), tc.want)
		})
	}
	t.Run("malformed response", func(t *testing.T) {
		// scope as an array is the endpoint's fault: fail closed.
		m := opaqueMembers()
		m["scope"] = []string{"reports"}
		as.issue("opaque-array-scope", m)
		resp := h.check(t, opaqueReq("opaque-array-scope"))
		if s := resp.GetDeniedResponse().GetStatus().GetCode(); s != 503 {
			t.Fatalf("status %v, want 503", s)
		}
	})
}

// TestIntrospectTokenRouting: only what is not a JWS, or a JWS of the
// introspection issuer itself (which has no keys here), goes to the
// endpoint. An unsigned or forged JWT in a rule with an introspection
// issuer is refused locally as it would be anywhere, never laundered
// through the endpoint.
func TestIntrospectTokenRouting(t *testing.T) {
	h, as, clock := newIntrospectHarness(t)
	invalid := func(reason, issuer string) want {
		return bearerChallenge(codes.Unauthenticated, 401, `Bearer realm="extauthz", error="invalid_token"`, reason).by(issuer, "", "")
	}
	none := jose.MustSign(t, "none", nil, map[string]any{"typ": "JWT"}, loginClaims())
	assertResponse(t, h.check(t, opaqueReq(none)), invalid("algorithm_not_allowed", ""))
	_, forger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := jose.MustSign(t, "EdDSA", forger, map[string]any{"kid": "login-1", "typ": "at+jwt"}, loginClaims())
	assertResponse(t, h.check(t, opaqueReq(forged)), invalid("signature_invalid", "login"))
	if n := as.hits.Load(); n != 0 {
		t.Fatalf("refused JWTs reached the introspection endpoint (%d requests)", n)
	}

	// A JWT whose iss is the introspection issuer's is the endpoint's to
	// judge: the issuer has no keys to verify it with.
	asJWT := signLogin(t, loginClaims().set("iss", "https://as.example.com"))
	assertResponse(t, h.check(t, opaqueReq(asJWT)), invalid("token_inactive", "as"))
	as.issue(asJWT, opaqueMembers())
	clock.add(10 * time.Second) // past the negative cache entry
	w := opaqueAllowed("user-9")
	w.remove = removedBut(opaqueManaged, w.headers)
	assertResponse(t, h.check(t, opaqueReq(asJWT)), w)
	if n := as.hits.Load(); n != 2 {
		t.Fatalf("%d introspection requests, want 2", n)
	}
}

// TestIntrospectDPoP: an answer with cnf.jkt binds the opaque token to a
// DPoP key, exactly as a JWT's cnf does: in the DPoP scheme with a proof by
// that key (whose ath hashes the opaque token) it is allowed; a proof by
// another key, or one for another token, is refused.
func TestIntrospectDPoP(t *testing.T) {
	h, as, _ := newIntrospectHarness(t)
	pub := &clientKey().PublicKey
	jkt := jose.Thumbprint(pub)
	m := opaqueMembers()
	m["cnf"] = map[string]any{"jkt": jkt}
	as.issue("opaque-bound", m)
	const uri = "https://api.example.com/dpop/q1"
	set := map[string]string{"x-client-id": "reporting-app", "x-dpop-jkt": jkt}
	ok := want{code: codes.OK, headers: set, remove: removedBut(opaqueManaged, set), rule: "dpop-opaque", reason: "allowed"}.by("as", "reporting-app", "")
	assertResponse(t, h.check(t, dpopReq("/dpop/q1", "opaque-bound", proof(t, proofClaims("GET", uri, "opaque-bound")))), ok)

	dpopDeny := func(reason, challenge string) want {
		return want{code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": challenge}, rule: "dpop-opaque", reason: reason}.by("as", "reporting-app", "")
	}
	algs := `algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"`
	other := jose.P256(t)
	assertResponse(t, h.check(t, dpopReq("/dpop/q1", "opaque-bound", jose.MustDPoPProof(t, "ES256", other, nil, nil, proofClaims("GET", uri, "opaque-bound")))),
		dpopDeny("dpop_key_mismatch", `DPoP realm="extauthz", error="invalid_token", `+algs))
	assertResponse(t, h.check(t, dpopReq("/dpop/q1", "opaque-bound", proof(t, proofClaims("GET", uri, "another-token")))),
		dpopDeny("dpop_ath_mismatch", `DPoP realm="extauthz", error="invalid_dpop_proof", `+algs))
	// In the Bearer scheme at a rule that takes DPoP only.
	resp := h.check(t, httpReq{method: "GET", host: "api.example.com", path: "/dpop/q1", headers: [][2]string{{"authorization", "Bearer opaque-bound"}}})
	if r := resp.GetDeniedResponse(); r == nil || r.GetStatus().GetCode() != 401 {
		t.Fatalf("a bound opaque token in the Bearer scheme: %v", resp)
	}
}
