package e2e_test

// Operations through the real binary: metrics, live policy reload. The
// helpers here (an identity provider with a key server, request builders,
// a /metrics scraper) serve the other ops_*_test.go files too.

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/extauthz/extauthz/test/jose"
)

const (
	opsAPIAudience = "https://api.example.com"
	opsIdPIssuer   = "https://idp.example.com"
	opsPartnerKID  = "ops-partner-1"
	opsIdPKID      = "ops-idp-1"
)

// opsPolicy has a client-assertion rule (the partner, replay protected)
// and a bearer rule (an identity provider's access tokens), both with
// remote keys from {{JWKS}}; anything else is denied.
const opsPolicy = `version: v1
issuers:
  - name: partner
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner/jwks
    algorithms: [ES256]
  - name: idp
    issuer: https://idp.example.com
    jwks_uri: {{JWKS}}/idp/jwks
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
  - name: orders
    match:
      hosts: [api.example.com]
      path_prefixes: [/orders/]
    bearer:
      issuers: [idp]
      audiences: [https://api.example.com]
    headers:
      x-client-id: client_id
default_action: deny
`

// opsIdP holds the partner's and the identity provider's ES256 keys and
// serves their public keys over HTTP on a free loopback port.
type opsIdP struct {
	URL     string
	partner *ecdsa.PrivateKey
	idp     *ecdsa.PrivateKey
}

func newOpsIdP(t *testing.T) *opsIdP {
	t.Helper()
	k := &opsIdP{partner: jose.P256(t), idp: jose.P256(t)}
	docs := map[string][]byte{
		"/partner/jwks": jose.JWKS(jose.PublicJWK(opsPartnerKID, "ES256", k.partner.Public())),
		"/idp/jwks":     jose.JWKS(jose.PublicJWK(opsIdPKID, "ES256", k.idp.Public())),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	k.URL = srv.URL
	return k
}

// policyFile writes opsPolicy pointing at this key server.
func (k *opsIdP) policyFile(t *testing.T) string {
	t.Helper()
	return writeFile(t, "policy.yaml", strings.ReplaceAll(opsPolicy, "{{JWKS}}", k.URL))
}

// assertion is a fresh partner client assertion (new jti, two minutes to
// live) signed with the partner's key; mod may change its claims.
func (k *opsIdP) assertion(t *testing.T, mod func(claims map[string]any)) string {
	t.Helper()
	return k.assertionSignedBy(t, k.partner, opsPartnerKID, mod)
}

// assertionSignedBy is assertion signed by key under kid.
func (k *opsIdP) assertionSignedBy(t *testing.T, key *ecdsa.PrivateKey, kid string, mod func(claims map[string]any)) string {
	t.Helper()
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": partnerID, "sub": partnerID, "aud": tokenEndpoint,
		"jti": newJTI(), "iat": now, "exp": now + 120,
	}
	if mod != nil {
		mod(claims)
	}
	return jose.MustSign(t, "ES256", key, map[string]any{"kid": kid, "typ": "JWT"}, claims)
}

// expired is an assertion that expired two minutes ago, well beyond the
// default 30s clock skew.
func (k *opsIdP) expired(t *testing.T) string {
	t.Helper()
	return k.assertion(t, func(c map[string]any) {
		now := time.Now().Unix()
		c["iat"], c["exp"] = now-240, now-120
	})
}

// badSignature is an assertion with the partner's kid signed by another key.
func (k *opsIdP) badSignature(t *testing.T) string {
	t.Helper()
	return k.assertionSignedBy(t, jose.P256(t), opsPartnerKID, nil)
}

// accessToken is an access token of the identity provider for the orders
// API, issued to client "orders-app"; key signs it (the provider's key when
// nil).
func (k *opsIdP) accessToken(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	if key == nil {
		key = k.idp
	}
	now := time.Now().Unix()
	return jose.MustSign(t, "ES256", key, map[string]any{"kid": opsIdPKID, "typ": "at+jwt"}, map[string]any{
		"iss": opsIdPIssuer, "sub": "user-1", "aud": opsAPIAudience, "client_id": "orders-app",
		"scope": "orders:read", "jti": newJTI(), "iat": now, "exp": now + 300,
	})
}

// withRequestID sets Envoy's x-request-id on req.
func withRequestID(req *authv3.CheckRequest, id string) *authv3.CheckRequest {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h.Headers == nil {
		h.Headers = map[string]string{}
	}
	h.Headers["x-request-id"] = id
	return req
}

// noCredentialRequest is a token request without a client assertion.
func noCredentialRequest() *authv3.CheckRequest {
	body := "grant_type=client_credentials&client_id=" + partnerID
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Host: "login.example.com", Path: "/oauth/v2/oauth-token", Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{
				":authority": "login.example.com", ":method": "POST", ":path": "/oauth/v2/oauth-token",
				"content-type": "application/x-www-form-urlencoded",
			},
			Body: body, Size: int64(len(body)),
		}},
	}}
}

// plainRequest is a GET of host and path with no credential.
func plainRequest(host, path string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: host, Path: path, Scheme: "https", Protocol: "HTTP/2",
			Headers: map[string]string{":authority": host, ":method": "GET", ":path": path},
		}},
	}}
}

// bearerRequest is a GET of the orders API with the token.
func bearerRequest(tok string) *authv3.CheckRequest {
	req := plainRequest("api.example.com", "/orders/42")
	req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + tok
	return req
}

// dial opens one gRPC connection to the server, closed when t ends.
func dial(t *testing.T, s *server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// checkOn sends one Check on c and fails t on a gRPC error.
func checkOn(t *testing.T, c authv3.AuthorizationClient, s *server, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v; log:\n%s", err, s.Logs)
	}
	return resp
}

// expectDecision checks the gRPC status, the HTTP status of a deny (0 for
// an allow) and the decision metadata that matter to these tests.
func expectDecision(t *testing.T, resp *authv3.CheckResponse, code codes.Code, httpStatus int, decision, rule, reason string) {
	t.Helper()
	defer logOnFailure(t, resp)
	if c := codes.Code(resp.GetStatus().GetCode()); c != code {
		t.Errorf("status = %v, want %v", c, code)
	}
	if httpStatus == 0 {
		if resp.GetOkResponse() == nil {
			t.Errorf("want an ok_response")
		}
	} else if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != httpStatus {
		t.Errorf("HTTP status = %d, want %d", got, httpStatus)
	}
	f := resp.GetDynamicMetadata().GetFields()
	got := [3]string{f["decision"].GetStringValue(), f["rule"].GetStringValue(), f["reason"].GetStringValue()}
	if want := [3]string{decision, rule, reason}; got != want {
		t.Errorf("metadata decision, rule, reason = %q, want %q", got, want)
	}
}

// deniedHeader returns a header of a denied response.
func deniedHeader(resp *authv3.CheckResponse, name string) (string, bool) {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue(), true
		}
	}
	return "", false
}

// metrics is a scrape of /metrics: every sample by its series,
// `name{label="value",...}` with labels sorted; a histogram gives its
// _count and _sum.
type metrics map[string]float64

func scrape(t *testing.T, s *server) metrics {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: status %d: %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	m := metrics{}
	for name, fam := range fams {
		for _, mt := range fam.GetMetric() {
			labels := seriesLabels(mt.GetLabel())
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				m[name+labels] = mt.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				m[name+labels] = mt.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				m[name+labels] = mt.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				m[name+"_count"+labels] = float64(mt.GetHistogram().GetSampleCount())
				m[name+"_sum"+labels] = mt.GetHistogram().GetSampleSum()
			case dto.MetricType_SUMMARY:
				m[name+"_count"+labels] = float64(mt.GetSummary().GetSampleCount())
				m[name+"_sum"+labels] = mt.GetSummary().GetSampleSum()
			}
		}
	}
	return m
}

func seriesLabels(pairs []*dto.LabelPair) string {
	kv := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		kv = append(kv, p.GetName(), p.GetValue())
	}
	return series(kv...)
}

// series writes a label set as scrape keys it: series("b", "2", "a", "1")
// is `{a="1",b="2"}`.
func series(kv ...string) string {
	if len(kv)%2 != 0 {
		panic("series: odd number of arguments")
	}
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+strconv.Quote(kv[i+1]))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// family returns the series of one metric name, by label set.
func (m metrics) family(name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, name+"{"); ok {
			out["{"+rest] = v
		}
	}
	return out
}

// expectFamily compares every series of name with want exactly.
func expectFamily(t *testing.T, m metrics, name string, want map[string]float64) {
	t.Helper()
	got := m.family(name)
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s%s missing; have %v", name, k, got)
		} else if g != w {
			t.Errorf("%s%s = %v, want %v", name, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s%s = %v", name, k, g)
		}
	}
}

// readyz returns /readyz's status and policy_hash.
func readyz(t *testing.T, s *server) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.HTTPAddr + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		PolicyHash string `json:"policy_hash"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz is not JSON: %v", err)
	}
	return resp.StatusCode, body.PolicyHash
}

// eventually polls cond every 20ms for at most 10s, then fails t with what.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		<-tick.C
	}
}

// ---- metrics ------------------------------------------------------------

// TestOpsMetrics scripts a mix of decisions through the binary and checks
// every series /metrics then shows, with exact counts.
func TestOpsMetrics(t *testing.T) {
	t.Parallel()
	idp := newOpsIdP(t)
	// A long refetch cooldown makes the unknown kid's suppressed refetch
	// independent of how long the test takes.
	srv := startServer(t, idp.policyFile(t), "--jwks-refetch-cooldown", "1h")
	c := authv3.NewAuthorizationClient(dial(t, srv))

	first := idp.assertion(t, nil)
	const te = "token-endpoint"
	for i, step := range []struct {
		req    *authv3.CheckRequest
		code   codes.Code
		status int
		rule   string
		reason string
	}{
		{tokenRequest(first), codes.OK, 0, te, "allowed"},
		{tokenRequest(idp.assertion(t, nil)), codes.OK, 0, te, "allowed"},
		{tokenRequest(idp.assertion(t, nil)), codes.OK, 0, te, "allowed"},
		{tokenRequest(first), codes.Unauthenticated, 401, te, "replayed"},
		{tokenRequest(idp.expired(t)), codes.Unauthenticated, 401, te, "token_expired"},
		{tokenRequest(idp.expired(t)), codes.Unauthenticated, 401, te, "token_expired"},
		{tokenRequest(idp.badSignature(t)), codes.Unauthenticated, 401, te, "signature_invalid"},
		{tokenRequest(idp.assertionSignedBy(t, idp.partner, "no-such-kid", nil)), codes.Unauthenticated, 401, te, "kid_unknown"},
		{noCredentialRequest(), codes.Unauthenticated, 401, te, "credential_missing"},
		{plainRequest("other.example.com", "/"), codes.PermissionDenied, 403, "", "no_rule_matched"},
		{bearerRequest(idp.accessToken(t, nil)), codes.OK, 0, "orders", "allowed"},
	} {
		decision := "deny"
		if step.code == codes.OK {
			decision = "allow"
		}
		t.Run(fmt.Sprintf("%d-%s", i, step.reason), func(t *testing.T) {
			expectDecision(t, checkOn(t, c, srv, step.req), step.code, step.status, decision, step.rule, step.reason)
		})
	}

	m := scrape(t, srv)
	expectFamily(t, m, "extauthz_decisions_total", map[string]float64{
		series("decision", "allow", "rule", te, "reason", "allowed"):           3,
		series("decision", "deny", "rule", te, "reason", "replayed"):           1,
		series("decision", "deny", "rule", te, "reason", "token_expired"):      2,
		series("decision", "deny", "rule", te, "reason", "signature_invalid"):  1,
		series("decision", "deny", "rule", te, "reason", "kid_unknown"):        1,
		series("decision", "deny", "rule", te, "reason", "credential_missing"): 1,
		series("decision", "deny", "rule", "", "reason", "no_rule_matched"):    1,
		series("decision", "allow", "rule", "orders", "reason", "allowed"):     1,
	})
	expectFamily(t, m, "extauthz_check_duration_seconds_count", map[string]float64{
		series("decision", "allow", "rule", te):       3,
		series("decision", "deny", "rule", te):        6,
		series("decision", "deny", "rule", ""):        1,
		series("decision", "allow", "rule", "orders"): 1,
	})
	expectFamily(t, m, "extauthz_token_verifications_total", map[string]float64{
		series("issuer", "partner", "result", "allowed"):           3,
		series("issuer", "partner", "result", "replayed"):          1,
		series("issuer", "partner", "result", "token_expired"):     2,
		series("issuer", "partner", "result", "signature_invalid"): 1,
		series("issuer", "partner", "result", "kid_unknown"):       1,
		series("issuer", "idp", "result", "allowed"):               1,
	})
	expectFamily(t, m, "extauthz_replay_operations_total", map[string]float64{
		series("result", "ok"):       3,
		series("result", "replayed"): 1,
	})
	expectFamily(t, m, "extauthz_replay_fail_open_total", map[string]float64{series(): 0})
	expectFamily(t, m, "extauthz_policy_reload_total", map[string]float64{
		series("result", "success"): 0,
		series("result", "failure"): 0,
	})
	_, hash := readyz(t, srv)
	if got := m.family("extauthz_policy_loaded_timestamp_seconds"); len(got) != 1 || got[series("hash", hash)] <= 0 {
		t.Errorf("extauthz_policy_loaded_timestamp_seconds = %v, want one series with hash %s", got, hash)
	}

	// extauthz_build_info names the version `extauthz version` prints.
	code, stdout, _ := run(t, "version")
	v := strings.TrimSpace(strings.TrimPrefix(stdout, "extauthz "))
	if code != 0 || v == "" {
		t.Fatalf("extauthz version: exit %d, %q", code, stdout)
	}
	expectFamily(t, m, "extauthz_build_info", map[string]float64{series("version", v): 1})

	// The key plane: each issuer's keys fetched once at startup (prefetch);
	// the unknown kid is counted, its refetch suppressed by the cooldown.
	expectFamily(t, m, "extauthz_keys_fetches_total", map[string]float64{
		series("issuer", "partner", "outcome", "success"): 1,
		series("issuer", "idp", "outcome", "success"):     1,
	})
	expectFamily(t, m, "extauthz_keys_fetch_duration_seconds_count", map[string]float64{
		series("issuer", "partner"): 1,
		series("issuer", "idp"):     1,
	})
	expectFamily(t, m, "extauthz_keys_loaded", map[string]float64{
		series("issuer", "partner"): 1,
		series("issuer", "idp"):     1,
	})
	expectFamily(t, m, "extauthz_keys_consecutive_failures", map[string]float64{
		series("issuer", "partner"): 0,
		series("issuer", "idp"):     0,
	})
	expectFamily(t, m, "extauthz_keys_cache_entries", map[string]float64{series(): 2})
	expectFamily(t, m, "extauthz_keys_unknown_kid_total", map[string]float64{series("issuer", "partner"): 1})
	expectFamily(t, m, "extauthz_keys_refetch_suppressed_total", map[string]float64{series("issuer", "partner"): 1})
	expectFamily(t, m, "extauthz_keys_unavailable_total", map[string]float64{})
	expectFamily(t, m, "extauthz_keys_cache_evictions_total", map[string]float64{series(): 0})
	age := m.family("extauthz_keys_set_age_seconds")
	for _, is := range []string{"partner", "idp"} {
		if a, ok := age[series("issuer", is)]; !ok || a < 0 || a > 300 {
			t.Errorf("extauthz_keys_set_age_seconds{issuer=%q} = %v (present %v), want 0..300s", is, a, ok)
		}
	}
	// The process and Go collectors are registered too.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if len(m.family(name)) == 0 {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", srv.Logs)
	}
}

// ---- live policy reload -------------------------------------------------

// reloadPolicy is a policy with one public route, /NAME, under NAME-route.
func reloadPolicy(name string) string {
	return fmt.Sprintf(`version: v1
rules:
  - name: %s-route
    match:
      hosts: [api.example.com]
      paths: [/%s]
default_action: deny
`, name, name)
}

// invalidReloadPolicy fails to compile: an undeclared CEL variable.
const invalidReloadPolicy = `version: v1
rules:
  - name: broken-route
    match:
      hosts: [api.example.com]
      paths: [/broken]
    headers:
      x-broken: 'clams.x'
default_action: deny
`

// replaceFile writes content beside path and renames it over path, as
// configuration management does.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".policy.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var hashRE = regexp.MustCompile(`\(sha256 ([0-9a-f]{64})\)`)

// policyHash is the hash `extauthz validate` reports for the policy now at
// path, which /readyz must show once the server has loaded it.
func policyHash(t *testing.T, path string) string {
	t.Helper()
	code, stdout, stderr := run(t, "validate", path)
	if code != 0 {
		t.Fatalf("validate %s exited %d: %s", path, code, stderr)
	}
	m := hashRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("validate printed no hash: %q", stdout)
	}
	return m[1]
}

// routeDecisions asserts which of the routes the server allows: allowed
// ones as public routes of their rule, the others as no_rule_matched.
func routeDecisions(t *testing.T, c authv3.AuthorizationClient, s *server, allowed string, others ...string) {
	t.Helper()
	expectDecision(t, checkOn(t, c, s, plainRequest("api.example.com", "/"+allowed)), codes.OK, 0, "allow", allowed+"-route", "public_route")
	for _, o := range others {
		expectDecision(t, checkOn(t, c, s, plainRequest("api.example.com", "/"+o)), codes.PermissionDenied, 403, "deny", "", "no_rule_matched")
	}
}

// reloadCount returns extauthz_policy_reload_total{result}.
func reloadCount(t *testing.T, s *server, result string) float64 {
	t.Helper()
	v, ok := scrape(t, s)["extauthz_policy_reload_total"+series("result", result)]
	if !ok {
		t.Fatalf(`extauthz_policy_reload_total{result=%q} missing`, result)
	}
	return v
}

// TestOpsPolicyReloadPoll: a policy file rewritten (write and rename) is
// picked up by the poll; an invalid rewrite is rejected and counted, and
// the last valid policy keeps serving.
func TestOpsPolicyReloadPoll(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "policy.yaml", reloadPolicy("v1"))
	h1 := policyHash(t, path)
	srv := startServer(t, path, "--policy-poll-interval", "100ms")
	c := authv3.NewAuthorizationClient(dial(t, srv))
	if _, h := readyz(t, srv); h != h1 {
		t.Fatalf("/readyz policy_hash = %s, want %s", h, h1)
	}
	routeDecisions(t, c, srv, "v1", "v2")

	replaceFile(t, path, reloadPolicy("v2"))
	h2 := policyHash(t, path)
	eventually(t, "/readyz shows the new policy_hash", func() bool {
		_, h := readyz(t, srv)
		return h == h2
	})
	routeDecisions(t, c, srv, "v2", "v1")
	if got := reloadCount(t, srv, "success"); got != 1 {
		t.Errorf("reload successes = %v, want 1", got)
	}

	replaceFile(t, path, invalidReloadPolicy)
	eventually(t, "a failed reload is counted", func() bool {
		return reloadCount(t, srv, "failure") >= 1
	})
	routeDecisions(t, c, srv, "v2", "v1", "broken")
	if st, h := readyz(t, srv); st != http.StatusOK || h != h2 {
		t.Errorf("/readyz after a failed reload = %d, hash %s; want 200, %s (the last valid policy)", st, h, h2)
	}
	// The cause under "error", the one key every package logs a failure with.
	if rec := srv.Logs.WaitJSON(t, "policy reload rejected; the previous policy keeps serving"); rec["error"] == nil {
		t.Errorf("the failed reload's record has no error member: %v", rec)
	}

	// Fixing the file is picked up again.
	replaceFile(t, path, reloadPolicy("v3"))
	h3 := policyHash(t, path)
	eventually(t, "the fixed policy is loaded", func() bool {
		_, h := readyz(t, srv)
		return h == h3
	})
	routeDecisions(t, c, srv, "v3", "v1", "v2")
}

// TestOpsPolicyReloadSIGHUP: with polling far off, SIGHUP alone reloads,
// both a valid change and an invalid one (rejected, counted once).
func TestOpsPolicyReloadSIGHUP(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "policy.yaml", reloadPolicy("v1"))
	srv := startServer(t, path, "--policy-poll-interval", "1h")
	c := authv3.NewAuthorizationClient(dial(t, srv))
	hup := func() {
		t.Helper()
		if err := srv.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	}

	replaceFile(t, path, reloadPolicy("v2"))
	h2 := policyHash(t, path)
	routeDecisions(t, c, srv, "v1", "v2") // not polled for an hour
	hup()
	eventually(t, "SIGHUP reloads the policy", func() bool {
		_, h := readyz(t, srv)
		return h == h2
	})
	routeDecisions(t, c, srv, "v2", "v1")

	replaceFile(t, path, invalidReloadPolicy)
	hup()
	eventually(t, "the invalid policy is rejected on SIGHUP", func() bool {
		return reloadCount(t, srv, "failure") == 1
	})
	routeDecisions(t, c, srv, "v2", "v1", "broken")
	if got := reloadCount(t, srv, "success"); got != 1 {
		t.Errorf("reload successes = %v, want 1", got)
	}
	if _, h := readyz(t, srv); h != h2 {
		t.Errorf("/readyz policy_hash = %s after a rejected reload, want %s", h, h2)
	}
}
