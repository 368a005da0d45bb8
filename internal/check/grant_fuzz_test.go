package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/test/jose"
)

// fzGrantPolicy has both shapes of JWT bearer grant rule. Each requires a
// claim no seed has, so any allow is a bug: the fuzzer cannot forge a
// signature.
const fzGrantPolicy = `version: v1
issuers:
  - name: client
    issuer: ec-client
    jwks: {{EC}}
  - name: idp
    issuer: https://idp.example
    jwks: {{IDP}}
rules:
  - name: combined
    match: {paths: [/token]}
    client_assertion:
      issuers: [client]
      audiences: [https://as.example/token]
      replay_protection: false
    authorization_grant:
      issuers: [idp]
      audiences: [https://as.example/token]
      replay_protection: false
    require: ['grant.claims.?fuzz.orValue("") == "allow" && form.?scope.orValue("") != ""']
    headers:
      x-user-id: grant.sub
    metadata:
      user: grant.sub
      scope: form.scope
  - name: grant-only
    match: {paths: [/grant]}
    authorization_grant:
      issuers: [idp]
      audiences: [https://as.example/token]
      replay_protection: false
    require: ['grant.claims.?fuzz.orValue("") == "allow"']
default_action: deny
`

// FuzzGrantCheck sends token requests built around a genuine client
// assertion and a genuine grant (which the policy still denies) through the
// Check server: no panic, no gRPC error, never an allow, and a deny of one
// of the shapes the grant rules can give.
func FuzzGrantCheck(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	idp, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	doc := strings.NewReplacer(
		"{{EC}}", string(jose.JWKS(jose.PublicJWK("ec-1", "ES256", &ec.PublicKey))),
		"{{IDP}}", string(jose.JWKS(jose.PublicJWK("idp-1", "ES256", &idp.PublicKey))),
	).Replace(fzGrantPolicy)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(doc), 0o600); err != nil {
		f.Fatal(err)
	}
	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { plane.Close() })
	snap, err := policy.Load([]string{filepath.Join(dir, "policy.yaml")}, policy.Options{Keys: plane})
	if err != nil {
		f.Fatal(err)
	}
	clock := func() time.Time { return fzNow }
	srv := New(Config{
		Policy: policy.NewStore(snap),
		Replay: replay.NewMemory(replay.MemoryConfig{MaxEntries: 1000, Clock: clock}),
		Now:    clock,
	})
	now := fzNow.Unix()
	sign := func(key *ecdsa.PrivateKey, kid string, c map[string]any) string {
		s, err := jose.Sign("ES256", key, map[string]any{"kid": kid, "typ": "JWT"}, c)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	client := sign(ec, "ec-1", map[string]any{"iss": "ec-client", "sub": "ec-client", "aud": "https://as.example/token", "iat": now, "exp": now + 60})
	grant := sign(idp, "idp-1", map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": "https://as.example/token", "iat": now, "exp": now + 60})
	jwtBearer := url.QueryEscape(grantTypeJWTBearer)
	urn := url.QueryEscape(assertionTypeJWT)
	for _, body := range []string{
		"grant_type=" + jwtBearer + "&assertion=" + grant + "&scope=a&client_assertion_type=" + urn + "&client_assertion=" + client,
		"grant_type=" + jwtBearer + "&assertion=" + grant,
		"grant_type=" + jwtBearer + "&assertion=" + grant + "&assertion=" + grant,
		"grant_type=" + jwtBearer + "&assertion=" + client + "&client_assertion_type=" + urn + "&client_assertion=" + grant,
		"grant_type=client_credentials&assertion=" + grant,
		"grant_type=" + jwtBearer,
		"Grant_Type=" + jwtBearer + "&ASSERTION=" + grant + "&client_secret=s&Client-Secret=s",
		"grant_type=" + jwtBearer + "&assertion=" + grant + "&access_token=x",
	} {
		for _, path := range []string{"/token", "/grant"} {
			f.Add(path, "", []byte(body))
			f.Add(path, "Basic YTpi", []byte(body))
		}
	}
	reasons := map[string]bool{}
	for _, r := range []string{
		ReasonNoRule, ReasonMissing, ReasonMalformedReq, ReasonBadForm, ReasonDuplicateParam, ReasonTwoCredentials,
		ReasonSecretAndAssert, ReasonCredentialsInQuery, ReasonAssertionType, ReasonClientIDParam, ReasonMalformedToken,
		ReasonAlgorithm, ReasonCritical, ReasonClaimType, ReasonTokenType, ReasonIssuer, ReasonSubject, ReasonKID,
		ReasonNoKey, ReasonSignature, ReasonExpired, ReasonNotYetValid, ReasonIssuedInFuture, ReasonExpMissing,
		ReasonLifetime, ReasonAudience, ReasonRequire, ReasonBodyTooLarge, ReasonPartialBody,
		ReasonGrantMalformed, ReasonGrantRequired, ReasonAssertionNotAccepted,
	} {
		reasons[r] = true
	}
	f.Fuzz(func(t *testing.T, path, authorization string, body []byte) {
		req := fzRequest("POST", path, authorization, formContentType, body, "", "", false, false)
		resp, err := srv.Check(context.Background(), req)
		if err != nil {
			srv.Explain(context.Background(), req)
			t.Fatalf("Check returned an error: %v", err)
		}
		md := resp.GetDynamicMetadata().GetFields()
		if code := codes.Code(resp.GetStatus().GetCode()); code == codes.OK || resp.GetOkResponse() != nil {
			t.Fatalf("allowed: %v", md)
		}
		if r := md["reason"].GetStringValue(); !reasons[r] {
			t.Fatalf("reason %q is not one the grant rules can give", r)
		}
		if _, ok := md["user"]; ok {
			t.Fatal("a deny carries a rule's metadata member")
		}
	})
}
