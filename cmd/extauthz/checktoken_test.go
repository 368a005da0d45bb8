package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

const tokenCheckPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_file: {{KEYS}}/login.jwks.json
    algorithms: [EdDSA]
rules:
  - name: orders
    match: {hosts: [orders.example.com]}
    bearer: {issuers: [login], audiences: [orders.example.com]}
    internal_token:
      audience: orders-service
      purpose: orders.read
      claims: {user: claims.sub}
`

// TestCheckExplainInternalToken: check --explain shows the claims it would
// mint, unsigned without --token-keys and signed with them.
func TestCheckExplainInternalToken(t *testing.T) {
	f := newCheckFixture(t)
	policy := f.write(t, "token.yaml", strings.ReplaceAll(tokenCheckPolicy, "{{KEYS}}", f.keys))
	tok := f.sign(t, "login.private.jwk.json", jwa.EdDSA(), map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": "orders.example.com", "client_id": "shop", "jti": "at-1",
	})
	claims := func(iss string) *regexp.Regexp {
		return regexp.MustCompile(`claims \{"aud":"orders-service","client_id":"shop","exp":(\d+),"iat":\d+,"iss":"` + regexp.QuoteMeta(iss) +
			`","jti":"([\w-]{22})","orig_iss":"https://login.example.com","orig_jti":"at-1","purp":"orders.read","rctx":\{"authn":"bearer"\},"sub":"shop","tctx":\{"rule":"orders"\},"txn":"([\w-]{22})","user":"alice"\}\n`)
	}

	out := expectCheck(t, 0, "", "--policy", policy, "--explain", "--url", "https://orders.example.com/o/1", "--bearer", tok)
	if !strings.Contains(out, "ok   internal token: not signed (no --token-keys); header x-extauthz-token; ") || !claims("").MatchString(out) {
		t.Errorf("unsigned preview:\n%s", out)
	}
	if !strings.Contains(out, "set        x-extauthz-token: unsigned-preview\n") {
		t.Errorf("header:\n%s", out)
	}

	keyFile := f.keys + "/internal-token-signing.pem"
	out = expectCheck(t, 0, "", "--policy", policy, "--explain", "--token-keys", keyFile, "--token-issuer", "https://extauthz.example.com",
		"--url", "https://orders.example.com/o/1", "--bearer", tok)
	if !regexp.MustCompile(`ok   internal token: minted, kid [\w-]{43}, header x-extauthz-token; `).MatchString(out) || !claims("https://extauthz.example.com").MatchString(out) {
		t.Errorf("signed:\n%s", out)
	}
	if !regexp.MustCompile(`set        x-extauthz-token: eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{86}\n`).MatchString(out) {
		t.Errorf("header:\n%s", out)
	}
}

func TestCheckTokenKeysNeedPolicy(t *testing.T) {
	code, _, stderr := runCheck(t, "--addr", "127.0.0.1:1", "--token-keys", "k.pem", "--url", "https://orders.example.com/")
	if code != 2 || !strings.Contains(stderr, "--token-keys and --token-issuer need --policy") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
