// Package jose holds the signing side of extauthz's tests: JWK encoding of
// Go keys and their RFC 7638 thumbprints, a small stdlib JWS signer (which
// can also sign what a real library refuses to: alg none, HS256 keyed with a
// public key), DPoP proofs (RFC 9449) made with it, well-formed or hostile,
// and a bridge to the npm jose library (sign.mjs and dpop.mjs beside this
// file), an independent implementation that proves interop: it signs JWTs
// and makes DPoP proofs as a real client does.
//
// It is a test helper: nothing outside tests imports it.
package jose

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/jws"
)

var b64 = base64.RawURLEncoding

// PublicJWK returns the public JWK of pub (*rsa.PublicKey, *ecdsa.PublicKey
// on P-256/384/521, or ed25519.PublicKey) with use "sig". kid and alg are
// left out when empty.
func PublicJWK(kid, alg string, pub crypto.PublicKey) map[string]any {
	jwk, err := jws.PublicJWK(pub)
	if err != nil {
		panic(err)
	}
	jwk["use"] = "sig"
	if kid != "" {
		jwk["kid"] = kid
	}
	if alg != "" {
		jwk["alg"] = alg
	}
	return jwk
}

// PrivateJWK returns the private JWK of priv (*rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey), for the npm signer.
func PrivateJWK(priv crypto.Signer) map[string]any {
	jwk := PublicJWK("", "", priv.Public())
	delete(jwk, "use")
	switch priv := priv.(type) {
	case *rsa.PrivateKey:
		if len(priv.Primes) != 2 {
			panic("jose: multi-prime RSA keys are not supported")
		}
		priv.Precompute()
		jwk["d"] = b64.EncodeToString(priv.D.Bytes())
		jwk["p"] = b64.EncodeToString(priv.Primes[0].Bytes())
		jwk["q"] = b64.EncodeToString(priv.Primes[1].Bytes())
		jwk["dp"] = b64.EncodeToString(priv.Precomputed.Dp.Bytes())
		jwk["dq"] = b64.EncodeToString(priv.Precomputed.Dq.Bytes())
		jwk["qi"] = b64.EncodeToString(priv.Precomputed.Qinv.Bytes())
	case *ecdsa.PrivateKey:
		d, err := priv.Bytes()
		if err != nil {
			panic(fmt.Sprintf("jose: EC private key: %v", err))
		}
		jwk["d"] = b64.EncodeToString(d)
	case ed25519.PrivateKey:
		jwk["d"] = b64.EncodeToString(priv.Seed())
	default:
		panic(fmt.Sprintf("jose: unsupported private key %T", priv))
	}
	return jwk
}

// JWKS marshals a JWK Set of keys.
func JWKS(keys ...map[string]any) []byte {
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// Sign makes a compact JWS in Go. header may override anything, alg
// included; alg selects how key signs: RS*, PS* (*rsa.PrivateKey), ES*
// (*ecdsa.PrivateKey), EdDSA (ed25519.PrivateKey), HS* ([]byte, any bytes),
// and "none" (no key, empty signature).
func Sign(alg string, key any, header, claims map[string]any) (string, error) {
	h := map[string]any{"alg": alg}
	maps.Copy(h, header)
	return sign(alg, key, h, claims)
}

// sign makes a compact JWS of claims with exactly the protected header h,
// signed as alg says.
func sign(alg string, key any, h, claims map[string]any) (string, error) {
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return jws.Compact(alg, key, h, cb)
}

// MustSign is Sign for tests: it fails t on error.
func MustSign(t testing.TB, alg string, key any, header, claims map[string]any) string {
	t.Helper()
	s, err := Sign(alg, key, header, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// P256 returns a new P-256 key, for ES256.
func P256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Node signs with the npm jose library through sign.mjs.
type Node struct {
	node string // the node binary
	dir  string // test/jose, holding sign.mjs and node_modules
}

// NodeSigner finds node and test/jose/node_modules (installed by
// `npm ci --prefix test/jose`). When either is missing the test is skipped,
// or fails when CI is "true", so that CI never silently skips interop.
func NodeSigner(t testing.TB) *Node {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; run `npm ci --prefix test/jose --no-audit --no-fund`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("jose: cannot locate test/jose")
	}
	dir := filepath.Dir(self)
	node, err := exec.LookPath("node")
	if err != nil {
		missing("jose: node not found in PATH")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose", "package.json")); err != nil {
		missing("jose: %s/node_modules/jose is not installed", dir)
	}
	return &Node{node: node, dir: dir}
}

// Sign returns the compact JWS that the npm jose library makes of claims
// with priv, header (extra protected header members such as kid and typ)
// and alg.
func (n *Node) Sign(t testing.TB, alg string, priv crypto.Signer, header, claims map[string]any) string {
	t.Helper()
	jws := strings.TrimSpace(string(n.run(t, "sign.mjs", map[string]any{
		"alg":        alg,
		"privateJwk": PrivateJWK(priv),
		"header":     header,
		"claims":     claims,
	})))
	if strings.Count(jws, ".") != 2 {
		t.Fatalf("jose: sign.mjs printed %q, not a compact JWS", jws)
	}
	return jws
}

// DPoPProof returns a DPoP proof (RFC 9449) made by the npm jose library as
// a DPoP client makes one: protected header {alg, typ "dpop+jwt", jwk: the
// public JWK that jose derives from priv}, plus the members of header (which
// may replace typ and jwk, not alg), and claims as given (jti, htm, htu, iat,
// nonce, ath: whatever the test wants). A claims["ath"] of true is replaced
// by node's base64url SHA-256 of accessToken, which must then not be empty.
// jkt is jose's RFC 7638 SHA-256 thumbprint of that public JWK. Hostile
// proofs come from the Go DPoPProof instead.
func (n *Node) DPoPProof(t testing.TB, alg string, priv crypto.Signer, accessToken string, header, claims map[string]any) (proof, jkt string) {
	t.Helper()
	in := map[string]any{
		"alg":        alg,
		"privateJwk": PrivateJWK(priv),
		"header":     header,
		"claims":     claims,
	}
	if accessToken != "" {
		in["accessToken"] = accessToken
	}
	var out struct {
		Proof string `json:"proof"`
		JKT   string `json:"jkt"`
	}
	b := n.run(t, "dpop.mjs", in)
	if err := json.Unmarshal(b, &out); err != nil || strings.Count(out.Proof, ".") != 2 || out.JKT == "" {
		t.Fatalf("jose: dpop.mjs printed %q, not {proof, jkt}", b)
	}
	return out.Proof, out.JKT
}

// run runs script (beside this file) under node with in as JSON on stdin
// and returns its stdout; it fails t when node does.
func (n *Node) run(t testing.TB, script string, in any) []byte {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.node, filepath.Join(n.dir, script))
	cmd.Dir = n.dir
	cmd.Stdin = bytes.NewReader(b)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("jose: node %s: %v\n%s", script, err, stderr.String())
	}
	return stdout.Bytes()
}
