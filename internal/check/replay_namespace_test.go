package check_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// nsPolicy has two issuer entries for one iss, each behind its own rule,
// and two JWT-SVID issuers of one trust domain that require a jti.
const nsPolicy = `version: v1
issuers:
  - name: {{A}}
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner
  - name: partner-b
    issuer: partner-api-client
    jwks_uri: {{JWKS}}/partner
  - name: mesh-a
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: mesh.example
  - name: mesh-b
    jwks_uri: {{JWKS}}/spire
    spiffe_trust_domain: mesh.example
rules:
  - name: token-a
    match: {paths: [/a/token]}
    client_assertion: {issuers: [{{A}}, mesh-a], audiences: [https://login.example.com/oauth/v2/oauth-token], replay_protection: true}
  - name: token-b
    match: {paths: [/b/token]}
    client_assertion: {issuers: [partner-b, mesh-b], audiences: [https://login.example.com/oauth/v2/oauth-token], replay_protection: true}
`

// TestReplayNamespace: a used jti stays used whatever the policy calls its
// issuer: under a second entry with the same iss, under a second JWT-SVID
// issuer of the same trust domain, and across a reload that renames the
// issuer (issue #18).
func TestReplayNamespace(t *testing.T) {
	var store *policy.Store
	h := newHarness(t, strings.ReplaceAll(nsPolicy, "{{A}}", "partner-a"), func(c *check.Config) { store = c.Policy })
	at := func(path, tok string) httpReq { return tokenReq(assertionBody(tok)).onPath(path) }
	allowedBy := func(rule, issuer, client, spiffeID string) want {
		return want{code: codes.OK, headers: map[string]string{}, rule: rule, reason: "allowed"}.by(issuer, client, spiffeID)
	}

	tok := signPartner(t, partnerClaims())
	assertResponse(t, h.check(t, at("/a/token", tok)), allowedBy("token-a", "partner-a", partnerIss, ""))
	assertResponse(t, h.check(t, at("/b/token", tok)), invalidClient("replayed").onRule("token-b").by("partner-b", partnerIss, ""))

	svid := signSpire(t, claims{"sub": meshWorkload, "aud": tokenEndpoint, "jti": newJTI(), "iat": unix(0), "exp": unix(5 * time.Minute)})
	assertResponse(t, h.check(t, at("/a/token", svid)), allowedBy("token-a", "mesh-a", meshWorkload, meshWorkload))
	assertResponse(t, h.check(t, at("/b/token", svid)), invalidClient("replayed").onRule("token-b").by("mesh-b", meshWorkload, meshWorkload))

	// The same policy with partner-a renamed, swapped in as a reload does.
	used := signPartner(t, partnerClaims())
	assertResponse(t, h.check(t, at("/a/token", used)), allowedBy("token-a", "partner-a", partnerIss, ""))
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	file := filepath.Join(t.TempDir(), "policy.yaml")
	renamed := strings.NewReplacer("{{A}}", "partner-renamed", "{{JWKS}}", h.jwks.URL).Replace(nsPolicy)
	if err := os.WriteFile(file, []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	plane.Prefetch(ctx, snap.RemoteSources())
	cancel()
	store.Swap(snap)
	assertResponse(t, h.check(t, at("/a/token", used)), invalidClient("replayed").onRule("token-a").by("partner-renamed", partnerIss, ""))
	// A fresh assertion still passes under the new name.
	assertResponse(t, h.check(t, at("/a/token", signPartner(t, partnerClaims()))), allowedBy("token-a", "partner-renamed", partnerIss, ""))
}
