package spire_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/test/spire"
)

// svidKeys are the signing keys of a fake SPIRE server, one per key type.
type svidKeys struct {
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
	ed  ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *svidKeys {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &svidKeys{ec: ec, rsa: rk, ed: ed}
})

// jwks is the JWK Set of the keys, each with the given extra members.
func (k *svidKeys) jwks(t *testing.T, extra map[string]any) []byte {
	t.Helper()
	var keys []any
	for kid, pub := range map[string]crypto.PublicKey{"ec": k.ec.Public(), "rsa": k.rsa.Public(), "ed": k.ed.Public()} {
		j, err := jwk.Import(pub)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(j)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["kid"] = kid
		for k, v := range extra {
			m[k] = v
		}
		keys = append(keys, m)
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes a compact JWS. typ "" leaves the header without typ.
func (k *svidKeys) sign(t *testing.T, alg, typ string, claims map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": alg}
	switch alg[:2] {
	case "ES":
		hdr["kid"] = "ec"
	case "RS", "PS", "HS":
		hdr["kid"] = "rsa"
	default:
		hdr["kid"] = "ed"
	}
	if typ != "" {
		hdr["typ"] = typ
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(hdr) + "." + enc(claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	switch alg {
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k.ec, sum[:])
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, sum[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, k.rsa, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "EdDSA":
		sig = ed25519.Sign(k.ed, []byte(input))
	case "HS256":
		sig = sum[:] // never verified: the algorithm is refused first
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// svid is the claims of a JWT-SVID as SPIRE issues them (no iss, no jti),
// changed by edits: a nil value deletes the claim.
func svid(aud any, edits map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"sub": spire.WorkloadID, "aud": aud, "iat": now, "exp": now + 300}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func reason(resp *authv3.CheckResponse) string {
	return resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
}

// TestJWTSVIDRules sends JWT-SVIDs that break one rule each of the JWT-SVID
// standard through the real binary: the issuer is SPIRE's OIDC discovery
// provider shape (jwks_uri with spiffe_trust_domain). With a `spiffe`
// bundle file issuer too, once the policy loader takes it. No SPIRE needed.
func TestJWTSVIDRules(t *testing.T) {
	k := testKeys()
	var (
		mu   sync.Mutex
		keys = k.jwks(t, nil)
	)
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(keys)
	}))
	t.Cleanup(keySrv.Close)
	bin := buildExtauthz(t)
	dir := t.TempDir()

	servers := map[string]*server{}
	oidc := writePolicy(t, dir, "oidc.yaml", strings.NewReplacer(
		"{{KEYS}}", keySrv.URL+"/keys", "{{RULES}}", rules("spire")).Replace(oidcPolicy))
	servers["spire"] = startServer(t, bin, oidc)

	// The same keys as a SPIFFE bundle file: use "jwt-svid", as SPIRE
	// writes them.
	bundleFile := filepath.Join(dir, "bundle.json")
	writeAtomic(t, bundleFile, k.jwks(t, map[string]any{"use": "jwt-svid"}))
	filePolicy := writePolicy(t, dir, "file.yaml", strings.NewReplacer(
		"{{BUNDLE}}", bundleFile, "{{RULES}}", rules("mesh-file")).Replace(fileOnlyPolicy))
	if out, ok := validate(t, bin, filePolicy); ok {
		servers["mesh-file"] = startServer(t, bin, filePolicy)
	} else if !strings.Contains(out, "not supported yet") {
		t.Fatalf("extauthz validate %s:\n%s", filePolicy, out)
	}

	type tc struct {
		name   string
		token  string
		assert bool   // as a client assertion, else a bearer token
		want   string // reason; "allowed" when allowed
	}
	api := func(aud any, edits map[string]any) map[string]any { return svid(aud, edits) }
	cases := []tc{
		{"ES256", k.sign(t, "ES256", "JWT", api(apiAudience, nil)), false, "allowed"},
		{"RS256", k.sign(t, "RS256", "JWT", api(apiAudience, nil)), false, "allowed"},
		{"PS256", k.sign(t, "PS256", "JWT", api(apiAudience, nil)), false, "allowed"},
		{"EdDSA is not a JWT-SVID algorithm", k.sign(t, "EdDSA", "JWT", api(apiAudience, nil)), false, "algorithm_not_allowed"},
		{"HS256 never", k.sign(t, "HS256", "JWT", api(apiAudience, nil)), false, "algorithm_not_allowed"},
		{"typ JOSE", k.sign(t, "ES256", "JOSE", api(apiAudience, nil)), false, "allowed"},
		{"typ absent", k.sign(t, "ES256", "", api(apiAudience, nil)), false, "allowed"},
		{"typ at+jwt", k.sign(t, "ES256", "at+jwt", api(apiAudience, nil)), false, "token_type_invalid"},
		{"aud array", k.sign(t, "ES256", "JWT", api([]any{apiAudience, "other"}, nil)), false, "allowed"},
		{"aud missing", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"aud": nil})), false, "audience_invalid"},
		{"aud another", k.sign(t, "ES256", "JWT", api("other.example.com", nil)), false, "audience_invalid"},
		{"exp missing", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"exp": nil})), false, "exp_missing"},
		{"expired", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"exp": time.Now().Unix() - 120})), false, "token_expired"},
		{"iss set by SPIRE", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"iss": "https://oidc.example.org"})), false, "allowed"},
		{"sub missing", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"sub": nil})), false, "issuer_unknown"},
		{"sub not a SPIFFE ID", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"sub": "workload-client"})), false, "issuer_unknown"},
		{"sub of another trust domain", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"sub": "spiffe://example.com/ns/applications/sa/workload-client"})), false, "issuer_unknown"},
		{"sub an invalid SPIFFE ID", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"sub": "spiffe://example.org/ns//sa/x"})), false, "issuer_unknown"},
		{"sub upper-case trust domain", k.sign(t, "ES256", "JWT", api(apiAudience, map[string]any{"sub": "spiffe://EXAMPLE.org/ns/applications/sa/workload-client"})), false, "issuer_unknown"},
		{"assertion", k.sign(t, "ES256", "JWT", svid(tokenEndpoint, nil)), true, "allowed"},
		{"assertion with two audiences", k.sign(t, "ES256", "JWT", svid([]any{tokenEndpoint, apiAudience}, nil)), true, "audience_invalid"},
		{"assertion of an unmapped SPIFFE ID", k.sign(t, "ES256", "JWT", svid(tokenEndpoint, map[string]any{"sub": "spiffe://example.org/ns/applications/sa/other"})), true, "subject_invalid"},
		{"assertion living too long", k.sign(t, "ES256", "JWT", svid(tokenEndpoint, map[string]any{"exp": time.Now().Unix() + 3600})), true, "lifetime_too_long"},
	}
	for issuer, srv := range servers {
		t.Run(issuer, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					req := apiRequest(c.token, "api-"+issuer)
					if c.assert {
						req = tokenRequest(c.token, "token-endpoint-"+issuer)
					}
					// Twice: SVIDs carry no jti, and the agent hands the same
					// one out repeatedly, so a JWT-SVID issuer has no replay
					// protection unless the rule asks for it.
					for range 2 {
						resp := srv.check(t, req)
						if got := reason(resp); got != c.want {
							t.Fatalf("reason %q, want %q (status %d)", got, c.want, resp.GetStatus().GetCode())
						}
						if c.want == "allowed" {
							want := map[string]string{"x-spiffe-id": spire.WorkloadID}
							if c.assert {
								want["x-client-id"] = clientID
							}
							wantAllowed(t, resp, want)
						} else {
							wantDenied(t, resp, codes.Unauthenticated)
						}
					}
				})
			}
		})
	}

	// Bundle keys with another use than jwt-svid never verify, and a bundle
	// update without keys revokes every key at once.
	if srv := servers["mesh-file"]; srv != nil {
		tok := k.sign(t, "ES256", "JWT", api(apiAudience, nil))
		for _, step := range []struct {
			name   string
			bundle []byte
			want   string
		}{
			{"keys for another use", k.jwks(t, map[string]any{"use": "sig"}), "kid_unknown"},
			{"keys back", k.jwks(t, map[string]any{"use": "jwt-svid"}), "allowed"},
			{"bundle without keys", []byte(`{"keys":[]}`), "kid_unknown"},
		} {
			writeAtomic(t, bundleFile, step.bundle)
			deadline := time.Now().Add(10 * time.Second)
			for {
				got := reason(srv.check(t, apiRequest(tok, "api-mesh-file")))
				if got == step.want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: reason %q, want %q", step.name, got, step.want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// fileOnlyPolicy is a `spiffe` issuer with a bundle file.
const fileOnlyPolicy = `version: v1
issuers:
  - name: mesh-file
    spiffe:
      trust_domain: example.org
      bundle_file: {{BUNDLE}}
    client_ids:
      spiffe://example.org/ns/applications/sa/workload-client: jwt_assertion_client
rules:
{{RULES}}default_action: deny
`
