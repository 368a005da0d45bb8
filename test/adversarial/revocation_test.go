package adversarial_test

// Revocation by key file (issue #16, finding 3) and HMAC secret length per
// algorithm (finding 6), through the real gRPC server: a harness over a
// policy whose issuers' keys are files beside it, which the tests rewrite.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/test/jose"
)

// filePolicyYAML has one issuer per kind of key file; every file lives
// beside the policy, where the tests rewrite it.
const filePolicyYAML = `version: v1
issuers:
  - name: jwks-file
    issuer: https://jwks-file.example
    jwks_file: keys.jwks.json
  - name: pem-file
    issuer: https://pem-file.example
    pem_file: keys.pem
  - name: bundle-file
    spiffe:
      trust_domain: example.org
      bundle_file: bundle.json
  # A 32-byte secret and no algorithms: HS256 only (RFC 7518 section 3.2).
  - name: hs32
    issuer: https://hs32.example
    hmac_secret_file: hs32.secret
  # A 64-byte secret: HS256, HS384 and HS512, while the file holds it.
  - name: hs64
    issuer: https://hs64.example
    hmac_secret_file: hs64.secret
rules:
  - name: api
    match:
      path_prefixes: [/api/]
    bearer:
      issuers: [jwks-file, pem-file, bundle-file, hs32, hs64]
      audiences: [api.example.com]
default_action: deny
`

const bundleSVID = "spiffe://example.org/ns/apps/sa/worker"

// fileHarness is a harness over filePolicyYAML, with the keys in its files.
type fileHarness struct {
	*harness
	jwksKey, pemKey, bundleKey *ecdsa.PrivateKey
	hs32, hs64                 []byte
}

func newFileHarness(t *testing.T) *fileHarness {
	t.Helper()
	h := &fileHarness{
		jwksKey:   jose.P256(t),
		pemKey:    jose.P256(t),
		bundleKey: jose.P256(t),
		hs32:      randomBytes(32),
		hs64:      randomBytes(64),
	}
	h.harness = newHarnessWith(t, harnessConfig{policy: filePolicyYAML, files: map[string][]byte{
		"keys.jwks.json": h.goodJWKS(),
		"keys.pem":       publicPEM(&h.pemKey.PublicKey),
		"bundle.json":    h.goodBundle(),
		"hs32.secret":    h.hs32,
		"hs64.secret":    h.hs64,
	}})
	return h
}

// replace swaps a key file atomically (as Kubernetes volume updates and
// spiffe-helper do) and moves the clock one poll interval on, so the next
// Check is the one that sees the change — no sleeping.
func (h *fileHarness) replace(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(h.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.dir, name)); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(keys.DefaultFilePollInterval)
}

// overwrite rewrites a key file in place, as a non-atomic writer does, and
// moves the clock one poll interval on.
func (h *fileHarness) overwrite(t *testing.T, name string, data []byte) {
	t.Helper()
	h.write(t, name, data)
	h.clock.Advance(keys.DefaultFilePollInterval)
}

func (h *fileHarness) goodJWKS() []byte {
	return jose.JWKS(jose.PublicJWK("file-1", "ES256", &h.jwksKey.PublicKey))
}

func (h *fileHarness) goodBundle() []byte {
	k := jose.PublicJWK("bundle-1", "", &h.bundleKey.PublicKey)
	k["use"] = "jwt-svid"
	return jose.JWKS(k)
}

// accessClaims is an access token of iss for the API; every call makes
// fresh bytes (a new jti), so the token is not in the token cache.
func (h *fileHarness) accessClaims(iss string) map[string]any {
	now := h.clock.Now()
	return map[string]any{
		"iss": iss, "sub": "user-1", "aud": "api.example.com", "client_id": "app", "jti": newJTI(),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func (h *fileHarness) jwksToken(t *testing.T) string {
	return jose.MustSign(t, "ES256", h.jwksKey, map[string]any{"kid": "file-1", "typ": "at+jwt"}, h.accessClaims("https://jwks-file.example"))
}

// pemToken has no kid: PEM keys have none.
func (h *fileHarness) pemToken(t *testing.T) string {
	return jose.MustSign(t, "ES256", h.pemKey, map[string]any{"typ": "at+jwt"}, h.accessClaims("https://pem-file.example"))
}

func (h *fileHarness) svidToken(t *testing.T) string {
	now := h.clock.Now()
	return jose.MustSign(t, "ES256", h.bundleKey, map[string]any{"kid": "bundle-1", "typ": "JWT"}, map[string]any{
		"sub": bundleSVID, "aud": "api.example.com", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": newJTI(),
	})
}

func (h *fileHarness) hmacToken(t *testing.T, alg string, secret []byte, iss string) string {
	return jose.MustSign(t, alg, secret, map[string]any{"typ": "at+jwt"}, h.accessClaims(iss))
}

// allowed fails t unless a bearer tok is allowed at the API.
func (h *fileHarness) allowed(t *testing.T, what, tok string) {
	t.Helper()
	resp := h.check(t, apiReq("Bearer "+tok))
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK || resp.GetOkResponse() == nil || metadata(resp)["decision"] != "allow" {
		js, _ := protojson.Marshal(resp)
		t.Fatalf("%s: want an allow, got\n%s", what, js)
	}
}

// denied fails t unless a bearer tok is denied at the API as reason.
func (h *fileHarness) denied(t *testing.T, what, tok, reason string) {
	t.Helper()
	resp := h.check(t, apiReq("Bearer "+tok))
	if t.Failed() {
		return
	}
	assertDeny(t, resp, invalidToken(reason))
	if t.Failed() {
		t.Fatalf("%s: not denied as %s", what, reason)
	}
}

// allowedCached is allowed, and then fails t unless tok is answered from
// the verified-token cache: otherwise a revocation test would not show that
// the cache drops it.
func (h *fileHarness) allowedCached(t *testing.T, what, tok string) {
	t.Helper()
	h.allowed(t, what, tok)
	if !h.cached(t, tok) {
		t.Fatalf("%s: the allowed token is not in the token cache; the test would not show that the cache drops it", what)
	}
}

// cached reports whether the server answers tok from its verified-token
// cache, as Explain's steps show.
func (h *fileHarness) cached(t *testing.T, tok string) bool {
	t.Helper()
	_, steps := h.srv.Explain(context.Background(), apiReq("Bearer "+tok).proto())
	for _, s := range steps {
		if s.Check == "token cache" && s.OK {
			return true
		}
	}
	return false
}

// keysStep is the detail of Explain's failed "keys" step for tok, "" when
// there is none.
func (h *fileHarness) keysStep(t *testing.T, tok string) string {
	t.Helper()
	_, steps := h.srv.Explain(context.Background(), apiReq("Bearer "+tok).proto())
	for _, s := range steps {
		if s.Check == "keys" && !s.OK {
			return s.Detail
		}
	}
	return ""
}

// TestRevocationByJWKSFile: a jwks_file replaced by an empty set, or by a
// set of keys none of which may verify, denies the removed key's tokens
// from the next Check on — the one in the token cache as much as a fresh
// one — as kid_unknown (401, the token's problem, not 503). A half-written
// file does not; a restored file allows again.
func TestRevocationByJWKSFile(t *testing.T) {
	t.Parallel()
	h := newFileHarness(t)
	tok := h.jwksToken(t)
	h.allowedCached(t, "before", tok)
	other := h.pemToken(t)
	h.allowed(t, "another issuer, before", other)

	h.replace(t, "keys.jwks.json", []byte(`{"keys":[]}`))
	h.denied(t, "the cached token after the file was emptied", tok, check.ReasonKID)
	h.denied(t, "a fresh token after the file was emptied", h.jwksToken(t), check.ReasonKID)
	if h.cached(t, tok) {
		t.Error("the revoked key's token is still answered from the token cache")
	}
	if d := h.keysStep(t, tok); !strings.Contains(d, "every key is revoked") || !strings.Contains(d, "keys.jwks.json") {
		t.Errorf("the keys step does not say the file revoked every key: %q", d)
	}
	h.allowed(t, "another issuer's token, unaffected", other)

	h.replace(t, "keys.jwks.json", h.goodJWKS())
	h.allowed(t, "the same token after the file was restored", tok)
	h.allowed(t, "a fresh token after the file was restored", h.jwksToken(t))

	// Every key unusable: a 1024-bit RSA key, an oct key, and the very
	// key that signed the tokens, now marked for encryption.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := jose.PublicJWK("file-1", "", &h.jwksKey.PublicKey)
	enc["use"] = "enc"
	unusable := jose.JWKS(
		jose.PublicJWK("weak-1", "RS256", &weak.PublicKey),
		map[string]any{"kty": "oct", "kid": "oct-1", "k": b64.EncodeToString(randomBytes(32))},
		enc,
	)
	h.allowed(t, "cached again before the unusable set", tok)
	h.replace(t, "keys.jwks.json", unusable)
	h.denied(t, "the cached token after an unusable set", tok, check.ReasonKID)
	h.denied(t, "a fresh token after an unusable set", h.jwksToken(t), check.ReasonKID)
	h.denied(t, "a token naming the weak key", jose.MustSign(t, "RS256", weak, map[string]any{"kid": "weak-1"}, h.accessClaims("https://jwks-file.example")), check.ReasonKID)

	h.replace(t, "keys.jwks.json", h.goodJWKS())
	h.allowed(t, "restored after the unusable set", tok)

	// A non-atomic writer caught halfway, or before it wrote anything:
	// the file is no JWK Set, and the keys stay.
	good := h.goodJWKS()
	h.overwrite(t, "keys.jwks.json", good[:len(good)/2])
	h.allowed(t, "while the file is half written", tok)
	h.overwrite(t, "keys.jwks.json", nil)
	h.allowed(t, "while the file is truncated", tok)
	h.allowed(t, "a fresh token while the file is truncated", h.jwksToken(t))
	h.overwrite(t, "keys.jwks.json", good)
	h.allowed(t, "once the write is done", tok)
}

// TestRevocationByPEMFile: an emptied pem_file denies its key's tokens,
// cached or fresh; a file cut short in a block keeps the key; restoring
// the file allows again.
func TestRevocationByPEMFile(t *testing.T) {
	t.Parallel()
	h := newFileHarness(t)
	tok := h.pemToken(t)
	h.allowedCached(t, "before", tok)

	good := publicPEM(&h.pemKey.PublicKey)
	h.overwrite(t, "keys.pem", good[:len(good)-20])
	h.allowed(t, "while the file is half written", tok)

	h.replace(t, "keys.pem", nil)
	h.denied(t, "the cached token after the file was emptied", tok, check.ReasonKID)
	h.denied(t, "a fresh token after the file was emptied", h.pemToken(t), check.ReasonKID)

	h.replace(t, "keys.pem", good)
	h.allowed(t, "the same token after the file was restored", tok)
	h.allowed(t, "a fresh token after the file was restored", h.pemToken(t))
}

// TestRevocationByBundleFile: a SPIFFE bundle_file without JWT-SVID keys
// denies the trust domain's tokens, as a bundle pushed without keys does.
func TestRevocationByBundleFile(t *testing.T) {
	t.Parallel()
	h := newFileHarness(t)
	tok := h.svidToken(t)
	h.allowedCached(t, "before", tok)

	h.replace(t, "bundle.json", []byte(`{"keys":[]}`))
	h.denied(t, "the cached SVID after the bundle was emptied", tok, check.ReasonKID)
	h.denied(t, "a fresh SVID after the bundle was emptied", h.svidToken(t), check.ReasonKID)

	h.replace(t, "bundle.json", h.goodBundle())
	h.allowed(t, "the same SVID after the bundle was restored", tok)
}

// TestHMACSecretLength: RFC 7518 section 3.2 — HS384 needs a 48-byte key,
// HS512 a 64-byte one. A 32-byte secret verifies HS256 only: its issuer's
// default allow-list holds nothing else, and a secret file later replaced
// by a shorter secret no longer verifies what it is too short for, cached
// tokens included.
func TestHMACSecretLength(t *testing.T) {
	t.Parallel()
	h := newFileHarness(t)
	const hs32, hs64 = "https://hs32.example", "https://hs64.example"

	h.allowed(t, "HS256, 32-byte secret", h.hmacToken(t, "HS256", h.hs32, hs32))
	for _, alg := range []string{"HS384", "HS512"} {
		h.denied(t, alg+" signed with the 32-byte secret", h.hmacToken(t, alg, h.hs32, hs32), check.ReasonAlgorithm)
	}

	old512 := h.hmacToken(t, "HS512", h.hs64, hs64)
	h.allowed(t, "HS512, 64-byte secret", old512)
	h.allowed(t, "HS384, 64-byte secret", h.hmacToken(t, "HS384", h.hs64, hs64))
	if !h.cached(t, old512) {
		t.Fatal("the allowed HS512 token is not in the token cache")
	}

	short := randomBytes(32)
	h.replace(t, "hs64.secret", short)
	for _, alg := range []string{"HS384", "HS512"} {
		h.denied(t, alg+" signed with the shorter secret now in the file", h.hmacToken(t, alg, short, hs64), check.ReasonNoKey)
	}
	h.denied(t, "the cached HS512 token of the old secret", old512, check.ReasonNoKey)
	h.allowed(t, "HS256 with the shorter secret", h.hmacToken(t, "HS256", short, hs64))
}
