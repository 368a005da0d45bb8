package e2e_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/envoytest"
	"github.com/extauthz/extauthz/test/jose"
)

const mintPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks: {{JWKS}}
rules:
  - name: orders
    match: {path_prefixes: [/orders/]}
    bearer:
      issuers: [login]
      audiences: [api.example.com]
    internal_token:
      audience: orders-svc
      purpose: orders.read
      claims:
        user: claims.sub
`

const mintIssuer = "https://extauthz.test"

// replaceKey writes k's PEM to path atomically (a rename), as a
// configuration tool replaces a mounted file.
func replaceKey(t *testing.T, path string, k any) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestInternalTokenJoseRotation: an upstream verifying with npm jose and
// a remote JWKS served by the binary accepts the minted token; after the
// mounted key is replaced, a token of the old key is refused and a newly
// minted one accepted. A client-sent x-extauthz-token never passes.
func TestInternalTokenJoseRotation(t *testing.T) {
	t.Parallel()
	node := jose.NodeSigner(t)
	login := jose.P256(t)
	jwks := string(jose.JWKS(jose.PublicJWK("login-1", "ES256", login.Public())))
	policy := writeFile(t, "policy.yaml", strings.ReplaceAll(mintPolicy, "{{JWKS}}", jwks))
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	oldKey, newKey := jose.P256(t), jose.P256(t)
	replaceKey(t, keyFile, oldKey)
	srv := startServer(t, policy, "--token-keys", keyFile, "--token-issuer", mintIssuer,
		"--token-publish-delay", "300ms", "--token-refresh", "20ms")
	jwksURL := "http://" + srv.HTTPAddr + "/.well-known/jwks.json"

	now := time.Now().Unix()
	access := jose.MustSign(t, "ES256", login, map[string]any{"kid": "login-1", "typ": "at+jwt"}, map[string]any{
		"iss": "https://login.example.com", "sub": "user-1", "aud": "api.example.com", "client_id": "shop",
		"scope": "orders", "jti": "at-1", "iat": now, "exp": now + 300,
	})
	check := func() *authv3.CheckResponse {
		return srv.check(t, envoytest.Request{
			Method: "GET", Host: "api.example.com", Path: "/orders/1",
			Headers: [][2]string{{"authorization", "Bearer " + access}, {"x-extauthz-token", "forged"}, {"x_extauthz_token", "forged"}},
		}.Proto())
	}
	minted := func(resp *authv3.CheckResponse) string {
		t.Helper()
		ok := resp.GetOkResponse()
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK || ok == nil {
			t.Fatalf("not allowed: %v; log:\n%s", resp, srv.Logs)
		}
		var tok string
		for _, h := range ok.GetHeaders() {
			if h.GetHeader().GetKey() == "x-extauthz-token" {
				tok = h.GetHeader().GetValue()
			}
		}
		if tok == "" || tok == "forged" || !slices.Contains(ok.GetHeadersToRemove(), "x_extauthz_token") || slices.Contains(ok.GetHeadersToRemove(), "x-extauthz-token") {
			t.Fatalf("token %q, headers_to_remove %q", tok, ok.GetHeadersToRemove())
		}
		return tok
	}

	t1 := minted(check())
	v := node.VerifyRemote(t, jwksURL, t1, mintIssuer, "orders-svc", "txntoken+jwt")
	if !v.OK || v.KID != jose.Thumbprint(oldKey.Public()) {
		t.Fatalf("jose refused the minted token: %+v", v)
	}
	p := v.Payload
	if p["sub"] != "shop" || p["client_id"] != "shop" || p["user"] != "user-1" || p["purp"] != "orders.read" ||
		p["orig_iss"] != "https://login.example.com" || p["orig_jti"] != "at-1" || p["scope"] != "orders" ||
		p["txn"] != p["jti"] || p["exp"].(float64)-p["iat"].(float64) != 60 {
		t.Fatalf("claims = %v", p)
	}

	// Rotate: the new key replaces the old in the mounted file.
	replaceKey(t, keyFile, newKey)
	want := []string{jose.Thumbprint(newKey.Public())}
	eventually(t, "the JWKS lists only the new key", func() bool { return slices.Equal(publishedKIDs(t, jwksURL), want) })
	if v := node.VerifyRemote(t, jwksURL, t1, mintIssuer, "orders-svc", "txntoken+jwt"); v.OK || v.Code != "ERR_JWKS_NO_MATCHING_KEY" {
		t.Fatalf("jose on the withdrawn key's token: %+v, want ERR_JWKS_NO_MATCHING_KEY", v)
	}
	// The new key signs once its publish delay has passed; until then the
	// rule denies with 503.
	var t2 string
	eventually(t, "a token minted with the new key", func() bool {
		resp := check()
		if resp.GetOkResponse() == nil {
			if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 503 {
				t.Fatalf("during the publish delay: %v", resp)
			}
			return false
		}
		t2 = minted(resp)
		return true
	})
	if v := node.VerifyRemote(t, jwksURL, t2, mintIssuer, "orders-svc", "txntoken+jwt"); !v.OK || v.KID != jose.Thumbprint(newKey.Public()) {
		t.Fatalf("jose refused the new key's token: %+v", v)
	}

	resp, err := http.Get("http://" + srv.HTTPAddr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc["issuer"] != mintIssuer || doc["jwks_uri"] != mintIssuer+"/.well-known/jwks.json" {
		t.Fatalf("discovery = %v, %v", doc, err)
	}
}

func publishedKIDs(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=1" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	b, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("jwks %s: %v", b, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

// TestInternalTokenNeedsKeys: a policy with internal_token is refused at
// startup by a server without --token-keys, naming the field.
func TestInternalTokenNeedsKeys(t *testing.T) {
	t.Parallel()
	policy := writeFile(t, "policy.yaml", strings.ReplaceAll(mintPolicy, "{{JWKS}}", string(jose.JWKS(jose.PublicJWK("k", "ES256", jose.P256(t).Public())))))
	code, _, stderr := run(t, "serve", "--policy", policy, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "rules[0].internal_token: this server has no signing keys; start it with --token-keys and --token-issuer") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = run(t, "serve", "--policy", policy, "--token-keys", "/nonexistent")
	if code != 2 || !strings.Contains(stderr, "--token-keys and --token-issuer go together") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}
