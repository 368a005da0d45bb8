package e2e_test

// The replay namespace of a client assertion is what the token proves (its
// verified iss), not the name the policy gives the issuer (issue #18): two
// issuer entries sharing one iss, or an issuer renamed by a reload, must not
// give an assertion already used a fresh namespace. Proven through the
// binary, with replicas sharing a real redis-server and with the memory
// store across a live reload.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/redistest"
)

// sharedIssPolicy has two issuer entries, partner-a and partner-b, for the
// same iss and keys, each the only issuer of one token endpoint.
const sharedIssPolicy = `version: v1
issuers:
  - name: partner-a
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner/jwks
    algorithms: [ES256]
  - name: partner-b
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner/jwks
    algorithms: [ES256]
rules:
  - name: a-token
    match:
      hosts: [login.example.com]
      paths: [/a/token]
      methods: [POST]
    client_assertion:
      issuers: [partner-a]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
  - name: b-token
    match:
      hosts: [login.example.com]
      paths: [/b/token]
      methods: [POST]
    client_assertion:
      issuers: [partner-b]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
default_action: deny
`

// renamedIssuerPolicy is the token endpoint with the partner's issuer entry
// called name; versions differing only in name are one issuer renamed.
func renamedIssuerPolicy(jwks, name string) string {
	return fmt.Sprintf(`version: v1
issuers:
  - name: %[1]s
    issuer: partner-api-client
    jwks_uri: %[2]s/partner/jwks
    algorithms: [ES256]
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [%[1]s]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
default_action: deny
`, name, jwks)
}

// TestReplayNamespaceSharedIss: an assertion accepted under partner-a at
// replica A is a replay under partner-b (the same iss) at replica B and at
// replica A, and Redis holds one entry for it, under the iss.
func TestReplayNamespaceSharedIss(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	idp := newOpsIdP(t)
	policy := writeFile(t, "policy.yaml", strings.ReplaceAll(sharedIssPolicy, "{{JWKS}}", idp.URL))
	store := []string{"--replay-store", redis.URL(), "--replay-timeout", "500ms"}
	a := startServer(t, policy, store...)
	b := startServer(t, policy, store...)
	ca := authv3.NewAuthorizationClient(dial(t, a))
	cb := authv3.NewAuthorizationClient(dial(t, b))

	jti := newJTI()
	asn := idp.assertion(t, func(c map[string]any) { c["jti"] = jti })
	assertAllowedAssertion(t, checkOn(t, ca, a, tokenRequestAt("/a/token", asn)), "a-token", "partner-a")
	assertReplayStore(t, redis, jti)

	assertDenied(t, checkOn(t, cb, b, tokenRequestAt("/b/token", asn)), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		ruleMeta("b-token", "deny", "replayed", "partner-b"))
	assertDenied(t, checkOn(t, ca, a, tokenRequestAt("/b/token", asn)), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		ruleMeta("b-token", "deny", "replayed", "partner-b"))
	assertDenied(t, checkOn(t, cb, b, tokenRequestAt("/a/token", asn)), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		ruleMeta("a-token", "deny", "replayed", "partner-a"))
	// The refusals wrote nothing.
	assertReplayStore(t, redis, jti)

	// partner-b itself works: a fresh assertion is allowed at B on /b/token.
	assertAllowedAssertion(t, checkOn(t, cb, b, tokenRequestAt("/b/token", idp.assertion(t, nil))), "b-token", "partner-b")
}

// TestReplayNamespaceIssuerRenamedRedis: replicas A and B share Redis; an
// assertion accepted at A under partner-old is a replay at B and at A once
// both have reloaded the policy with the issuer renamed partner-new.
func TestReplayNamespaceIssuerRenamedRedis(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	idp := newOpsIdP(t)
	path := writeFile(t, "policy.yaml", renamedIssuerPolicy(idp.URL, "partner-old"))
	flags := []string{"--replay-store", redis.URL(), "--replay-timeout", "500ms", "--policy-poll-interval", "100ms"}
	a := startServer(t, path, flags...)
	b := startServer(t, path, flags...)
	ca := authv3.NewAuthorizationClient(dial(t, a))
	cb := authv3.NewAuthorizationClient(dial(t, b))

	jti := newJTI()
	req := tokenRequest(idp.assertion(t, func(c map[string]any) { c["jti"] = jti }))
	assertAllowedAssertion(t, checkOn(t, ca, a, req), "token-endpoint", "partner-old")
	assertReplayStore(t, redis, jti)

	renameIssuer(t, path, idp.URL, a, b)

	assertDenied(t, checkOn(t, cb, b, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		meta("deny", "replayed", "partner-new", partnerID, ""))
	assertDenied(t, checkOn(t, ca, a, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		meta("deny", "replayed", "partner-new", partnerID, ""))
	assertReplayStore(t, redis, jti)
	// The renamed issuer serves: a fresh assertion is allowed at B.
	assertAllowedAssertion(t, checkOn(t, cb, b, tokenRequest(idp.assertion(t, nil))), "token-endpoint", "partner-new")
}

// TestReplayNamespaceIssuerRenamedMemory: with the memory store, one
// replica refuses an assertion it accepted before a reload renamed its
// issuer.
func TestReplayNamespaceIssuerRenamedMemory(t *testing.T) {
	t.Parallel()
	idp := newOpsIdP(t)
	path := writeFile(t, "policy.yaml", renamedIssuerPolicy(idp.URL, "partner-old"))
	s := startServer(t, path, "--policy-poll-interval", "100ms")
	c := authv3.NewAuthorizationClient(dial(t, s))

	req := tokenRequest(idp.assertion(t, nil))
	assertAllowedAssertion(t, checkOn(t, c, s, req), "token-endpoint", "partner-old")

	renameIssuer(t, path, idp.URL, s)

	assertDenied(t, checkOn(t, c, s, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
		meta("deny", "replayed", "partner-new", partnerID, ""))
	assertAllowedAssertion(t, checkOn(t, c, s, tokenRequest(idp.assertion(t, nil))), "token-endpoint", "partner-new")
	expectFamily(t, scrape(t, s), "extauthz_replay_operations_total", map[string]float64{
		series("result", "ok"):       2,
		series("result", "replayed"): 1,
	})
}

// renameIssuer rewrites the policy at path with partner-old renamed
// partner-new and waits until every server has loaded it: /readyz shows its
// hash and one successful reload is counted.
func renameIssuer(t *testing.T, path, jwks string, servers ...*server) {
	t.Helper()
	before := policyHash(t, path)
	replaceFile(t, path, renamedIssuerPolicy(jwks, "partner-new"))
	after := policyHash(t, path)
	if after == before {
		t.Fatalf("the renamed policy has the old hash %s", before)
	}
	for i, s := range servers {
		eventually(t, fmt.Sprintf("server %d loads the renamed issuer's policy %s", i, after), func() bool {
			_, h := readyz(t, s)
			return h == after
		})
		if got := reloadCount(t, s, "success"); got != 1 {
			t.Errorf("server %d: reload successes = %v, want 1", i, got)
		}
	}
}

// tokenRequestAt is tokenRequest sent to another path of the token host.
func tokenRequestAt(path, assertion string) *authv3.CheckRequest {
	req := tokenRequest(assertion)
	h := req.GetAttributes().GetRequest().GetHttp()
	h.Path = path
	h.Headers[":path"] = path
	return req
}

// ruleMeta is meta for a partner assertion under another rule.
func ruleMeta(rule, decision, reason, issuer string) map[string]string {
	m := meta(decision, reason, issuer, partnerID, "")
	m["rule"] = rule
	return m
}

// assertAllowedAssertion checks the allow of a partner assertion under rule
// and the policy's issuer entry: x-client-id set, its other spelling
// removed, the metadata exact.
func assertAllowedAssertion(t *testing.T, resp *authv3.CheckResponse, rule, issuer string) {
	t.Helper()
	removed := slices.DeleteFunc(policy.AllSpellings("x-client-id"), func(s string) bool { return s == "x-client-id" })
	assertAllowed(t, resp, map[string]string{"x-client-id": partnerID}, removed, ruleMeta(rule, "allow", "allowed", issuer))
}

// assertReplayStore checks that Redis holds exactly one entry, the partner
// assertion's jti under the namespace of its iss, in the key format every
// version shares: the prefix, then hex(sha256("iss:" + iss + NUL + jti)).
func assertReplayStore(t *testing.T, r *redistest.Server, jti string) {
	t.Helper()
	sum := sha256.Sum256([]byte("iss:" + partnerID + "\x00" + jti))
	key := "extauthz:replay:" + hex.EncodeToString(sum[:])
	if got := redisDo(t, r.Addr(), "DBSIZE"); got != ":1" {
		t.Errorf("redis DBSIZE = %q, want :1 (one entry for the assertion)", got)
	}
	if got := redisDo(t, r.Addr(), "EXISTS", key); got != ":1" {
		t.Errorf("redis EXISTS %s = %q, want :1", key, got)
	}
}

// redisDo sends one command in RESP and returns the first line of the
// reply, without the client the binary uses.
func redisDo(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	return strings.TrimRight(line, "\r\n")
}
