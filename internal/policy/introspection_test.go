package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/introspect"
)

// issuerYAML is an introspection issuer block with introspection settings
// extra (indented under introspection) and a client secret file in dir.
func issuerYAML(t *testing.T, name, extra string) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(extra, "client:") {
		extra += "\n      client: {client_id: extauthz, method: client_secret_basic, client_secret_file: " + secret + "}"
	}
	if !strings.Contains(extra, "endpoint:") && !strings.Contains(extra, "discovery:") {
		extra += "\n      endpoint: https://" + name + ".example.com/introspect"
	}
	return "  - name: " + name + "\n    issuer: https://" + name + ".example.com\n    introspection:" + extra + "\n"
}

// TestIntrospectionLoads: an introspection issuer needs no key source and
// compiles with the defaults; one with a key source keeps it.
func TestIntrospectionLoads(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": "version: v1\nissuers:\n" +
		issuerYAML(t, "as", "") +
		"  - name: both\n    issuer: https://both.example.com\n    jwks_uri: https://both.example.com/jwks\n    introspection: {endpoint: https://both.example.com/i, jwt_response: true, client: {client_id: x, method: client_secret_basic, client_secret_file: " + writeSecret(t) + "}}\n" +
		"rules:\n  - name: r\n    bearer: {issuers: [as], audiences: [api]}\n"})
	snap, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	as := snap.Issuers["as"]
	if as.Introspect == nil || as.HasKeys() || as.Keys != nil {
		t.Fatalf("as: introspect %v, has keys %v", as.Introspect, as.HasKeys())
	}
	if both := snap.Issuers["both"]; both.Introspect == nil || !both.HasKeys() {
		t.Fatalf("both: introspect %v, has keys %v", both.Introspect, both.HasKeys())
	}
	if is := snap.Rules[0].Bearer.Introspector(); is != as {
		t.Fatalf("rule's introspection issuer = %v", is)
	}
}

func writeSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIntrospectionErrors: each setting that cannot work is a load error
// naming its field.
func TestIntrospectionErrors(t *testing.T) {
	rule := "rules:\n  - name: r\n    bearer: {issuers: [as], audiences: [api]}\n"
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"http endpoint", issuerYAML(t, "as", "\n      endpoint: http://as.example.com/introspect") + rule,
			"issuers[0].introspection.endpoint: must be an https:// URL"},
		{"no endpoint", issuerYAML(t, "as", "\n      discovery: false") + rule,
			"issuers[0].introspection.endpoint: required unless discovery is true"},
		{"endpoint and discovery", issuerYAML(t, "as", "\n      discovery: true\n      endpoint: https://as.example.com/i") + rule,
			"issuers[0].introspection.discovery: give endpoint or discovery, not both"},
		{"unknown method", issuerYAML(t, "as", "\n      client: {client_id: x, method: client_secret_post}") + rule,
			`issuers[0].introspection.client.method: must be one of client_secret_basic, private_key_jwt, tls_client_auth, got "client_secret_post"`},
		{"no method", issuerYAML(t, "as", "\n      client: {client_id: x}") + rule,
			"issuers[0].introspection.client.method: required"},
		{"no client id", issuerYAML(t, "as", "\n      client: {method: client_secret_basic, client_secret_file: /x}") + rule,
			"issuers[0].introspection.client.client_id: required"},
		{"secret file missing", issuerYAML(t, "as", "\n      client: {client_id: x, method: client_secret_basic, client_secret_file: /nonexistent/secret}") + rule,
			"issuers[0].introspection.client.client_secret_file: open /nonexistent/secret"},
		{"private key of another algorithm", issuerYAML(t, "as", "\n      client: {client_id: x, method: private_key_jwt, private_key_file: "+writeECKey(t)+", algorithm: RS256}") + rule,
			`issuers[0].introspection.client.private_key_file: algorithm "RS256" does not fit the key`},
		{"private key file missing", issuerYAML(t, "as", "\n      client: {client_id: x, method: private_key_jwt}") + rule,
			"issuers[0].introspection.client.private_key_file: required with private_key_jwt"},
		{"tls without files", issuerYAML(t, "as", "\n      client: {client_id: x, method: tls_client_auth}") + rule,
			"issuers[0].introspection.client: cert_file and key_file are required with tls_client_auth"},
		{"zero cache_ttl", issuerYAML(t, "as", "\n      cache_ttl: 0s") + rule,
			"issuers[0].introspection.cache_ttl: must be positive"},
		{"zero timeout", issuerYAML(t, "as", "\n      timeout: 0s") + rule,
			"issuers[0].introspection.timeout: must be positive"},
		{"negative cache_size", issuerYAML(t, "as", "\n      cache_size: -1") + rule,
			"issuers[0].introspection.cache_size: must be positive"},
		{"negative max_concurrency", issuerYAML(t, "as", "\n      max_concurrency: -2") + rule,
			"issuers[0].introspection.max_concurrency: must be positive"},
		{"jwt_response without keys", issuerYAML(t, "as", "\n      jwt_response: true") + rule,
			"issuers[0].introspection.jwt_response: needs the issuer's key source"},
		{"two introspection issuers in a rule", issuerYAML(t, "as", "") + issuerYAML(t, "as2", "") +
			"rules:\n  - name: r\n    bearer: {issuers: [as, as2], audiences: [api]}\n",
			`rules[0].bearer.issuers: issuers "as" and "as2" both introspect`},
		{"client assertion from an issuer without keys", issuerYAML(t, "as", "") +
			"rules:\n  - name: r\n    client_assertion: {issuers: [as], audiences: [api]}\n",
			`rules[0].client_assertion.issuers: issuer "as" has no key source`},
		{"authorization grant from an issuer without keys", issuerYAML(t, "as", "") +
			"rules:\n  - name: r\n    authorization_grant: {issuers: [as], audiences: [api]}\n",
			`rules[0].authorization_grant.issuers: issuer "as" has no key source; authorization grants are verified`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := loadErrors(t, "version: v1\nissuers:\n"+tc.policy)
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Fatalf("load errors:\n%s\nwant one containing %q", strings.Join(errs, "\n"), tc.want)
			}
		})
	}
}

// TestIntrospectionReloadKeepsClient: loading the same policy again with
// the same introspection plane keeps the issuer's client, and so its cache;
// a changed setting makes a new one.
func TestIntrospectionReloadKeepsClient(t *testing.T) {
	ip, err := introspect.NewPlane(introspect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rule := "rules:\n  - name: r\n    bearer: {issuers: [as], audiences: [api]}\n"
	block := issuerYAML(t, "as", "")
	load := func(extra string) *Issuer {
		t.Helper()
		dir := writePolicy(t, map[string]string{"p.yaml": "version: v1\nissuers:\n" + block + extra + rule})
		snap, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t), Introspection: ip})
		if err != nil {
			t.Fatal(err)
		}
		return snap.Issuers["as"]
	}
	a, b := load(""), load("")
	if a.Introspect != b.Introspect {
		t.Fatal("a reload of the same policy made a new introspection client")
	}
	if c := load("      cache_ttl: 5s\n"); c.Introspect == a.Introspect {
		t.Fatal("a changed cache_ttl kept the old client")
	}
}

// writeECKey writes a fresh P-256 private key as PKCS #8 PEM.
func writeECKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
