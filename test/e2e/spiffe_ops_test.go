package e2e_test

// SPIFFE bundle files through the real binary (issue #19, items 1 and 2):
// `extauthz validate` catches a bundle key of "use": "sig" with the message
// docs/spiffe.md shows, and `extauthz serve` lists a spiffe bundle_file
// source in /debug/keys and the extauthz_keys_* metrics as it lists a
// jwks_file beside it, and says the same words in its log when the bundle
// is rewritten with such a key while serving.

import (
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/test/jose"
)

const (
	spiffeOpsSVID     = "spiffe://example.org/ns/apps/sa/worker"
	spiffeOpsAudience = "api.example.com"
	spiffeOpsKID      = "k1"
	spiffeOpsFilesKID = "files-1"
	spiffeOpsFilesIss = "https://files.example.com"

	// spiffeUseWords is what docs/spiffe.md ("Bundle keys and `use`")
	// says about key k1 of "use": "sig", at load and in the log.
	spiffeUseWords = `key "k1" has "use": "sig"; in a SPIFFE bundle a JWT-SVID key has "use": "jwt-svid" (or no use); ` +
		`a JWK Set of "use": "sig" keys, as an OIDC discovery provider serves it, is a jwks_file issuer with spiffe_trust_domain`
)

// spiffeOpsPolicy has the spiffe issuer "mesh" on line 3, column 5, as in
// the documented message, reading {{BUNDLE}}, and beside it the jwks_file
// issuer "files" reading {{JWKS}}; one bearer rule takes both.
const spiffeOpsPolicy = `version: v1
issuers:
  - name: mesh
    spiffe:
      trust_domain: example.org
      bundle_file: {{BUNDLE}}
  - name: files
    issuer: https://files.example.com
    jwks_file: {{JWKS}}
rules:
  - name: api
    match:
      hosts: [api.example.com]
    bearer:
      issuers: [mesh, files]
      audiences: [api.example.com]
default_action: deny
`

// writeSPIFFEOpsPolicy writes spiffeOpsPolicy with the bundle file and key
// file in one new directory and returns the three paths.
func writeSPIFFEOpsPolicy(t *testing.T, bundle, jwks []byte) (policy, bundleFile, jwksFile string) {
	t.Helper()
	dir := t.TempDir()
	bundleFile, jwksFile = filepath.Join(dir, "jwt-bundle.json"), filepath.Join(dir, "keys.jwks.json")
	policy = filepath.Join(dir, "policy.yaml")
	for p, data := range map[string][]byte{
		bundleFile: bundle,
		jwksFile:   jwks,
		policy:     []byte(strings.NewReplacer("{{BUNDLE}}", bundleFile, "{{JWKS}}", jwksFile).Replace(spiffeOpsPolicy)),
	} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return policy, bundleFile, jwksFile
}

// TestSpiffeValidateBundleKeyUse: `extauthz validate` reads a spiffe
// issuer's bundle_file and refuses a key of "use": "sig" with exactly the
// documented line (file:line:col: issuers[N]: keys: ...); the same key
// with "use": "jwt-svid", or with no use, validates.
func TestSpiffeValidateBundleKeyUse(t *testing.T) {
	t.Parallel()
	jwks := jose.JWKS(jose.PublicJWK(spiffeOpsFilesKID, "ES256", jose.P256(t).Public()))
	for _, tc := range []struct {
		fixture string
		ok      bool
	}{
		{"use_sig.json", false},
		{"use_jwt_svid.json", true},
		{"no_use.json", true},
	} {
		t.Run(strings.TrimSuffix(tc.fixture, ".json"), func(t *testing.T) {
			t.Parallel()
			bundle, err := os.ReadFile(filepath.Join("testdata", "spiffe_ops", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			policy, bundleFile, _ := writeSPIFFEOpsPolicy(t, bundle, jwks)
			code, stdout, stderr := run(t, "validate", policy)
			if tc.ok {
				if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "ok: 1 files, 2 issuers, 1 rules (sha256 ") {
					t.Fatalf("validate exited %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
				}
				return
			}
			want := policy + ":3:5: issuers[0]: keys: issuer mesh: spiffe: bundle_file " + bundleFile + ": " + spiffeUseWords + "\n"
			if code != 1 || stdout != "" || stderr != want {
				t.Fatalf("validate exited %d, want 1\nstdout: %q\nstderr:\n%s\nwant exactly:\n%s", code, stdout, stderr, want)
			}
		})
	}
}

// debugIssuers is GET /debug/keys: every issuer's entry by name, each as
// its JSON fields.
func debugIssuers(t *testing.T, s *server) map[string]map[string]json.RawMessage {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.HTTPAddr + "/debug/keys")
	if err != nil {
		t.Fatalf("GET /debug/keys: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/keys: status %d: %s", resp.StatusCode, body)
	}
	var doc struct {
		Issuers []map[string]json.RawMessage `json:"issuers"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/debug/keys is not JSON: %v\n%s", err, body)
	}
	out := map[string]map[string]json.RawMessage{}
	for _, e := range doc.Issuers {
		var name string
		if err := json.Unmarshal(e["issuer"], &name); err != nil || name == "" {
			t.Fatalf("/debug/keys entry without an issuer name: %s", body)
		}
		out[name] = e
	}
	return out
}

// field decodes one field of a /debug/keys entry into v.
func field(t *testing.T, entry map[string]json.RawMessage, name string, v any) {
	t.Helper()
	raw, ok := entry[name]
	if !ok {
		t.Fatalf("/debug/keys entry has no %q: %v", name, slices.Sorted(maps.Keys(entry)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("/debug/keys %q = %s: %v", name, raw, err)
	}
}

// keysSeries is, for one issuer, every extauthz_keys_* series of a scrape
// labelled with it, by metric name plus the rest of its labels.
func keysSeries(m metrics, issuer string) map[string]float64 {
	label := `issuer="` + issuer + `"`
	out := map[string]float64{}
	for k, v := range m {
		name, labels, ok := strings.Cut(k, "{")
		if !ok || !strings.HasPrefix(name, "extauthz_keys_") {
			continue
		}
		labels = strings.TrimSuffix(labels, "}")
		var rest []string
		found := false
		for _, l := range strings.Split(labels, ",") {
			if l == label {
				found = true
			} else if l != "" {
				rest = append(rest, l)
			}
		}
		if found {
			out[name+"{"+strings.Join(rest, ",")+"}"] = v
		}
	}
	return out
}

// spiffeOpsSVIDToken is a JWT-SVID of the trust domain for the API,
// signed by key under kid k1; each call makes new bytes.
func spiffeOpsSVIDToken(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	now := time.Now().Unix()
	return jose.MustSign(t, "ES256", key, map[string]any{"kid": spiffeOpsKID, "typ": "JWT"}, map[string]any{
		"sub": spiffeOpsSVID, "aud": spiffeOpsAudience, "iat": now, "exp": now + 300, "jti": newJTI(),
	})
}

// bundleKey is key's public JWK under kid k1 with the given use ("" for
// none), as a SPIFFE bundle holds it.
func bundleKey(key *ecdsa.PrivateKey, use string) []byte {
	k := jose.PublicJWK(spiffeOpsKID, "", key.Public())
	delete(k, "use")
	if use != "" {
		k["use"] = use
	}
	b, err := json.Marshal(map[string]any{"spiffe_sequence": 1, "keys": []any{k}})
	if err != nil {
		panic(err)
	}
	return b
}

// logLines are the server's JSON log lines so far.
func logLines(s *server) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s.Logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestSpiffeServeBundleFileKeys: a spiffe bundle_file issuer in `extauthz
// serve` appears in /debug/keys with the fields of the jwks_file issuer
// beside it (plus its trust_domain) and has the same extauthz_keys_*
// series. Rewritten with its key as "use": "sig", the bundle verifies
// nothing: the issuer's keys-loaded gauge drops to 0, the key is skipped
// and counted with reason "use", the log says the documented words, and
// the SVID the key signed, allowed before, is denied 401 kid_unknown.
func TestSpiffeServeBundleFileKeys(t *testing.T) {
	t.Parallel()
	svidKey, filesKey := jose.P256(t), jose.P256(t)
	policy, bundleFile, jwksFile := writeSPIFFEOpsPolicy(t,
		bundleKey(svidKey, "jwt-svid"),
		jose.JWKS(jose.PublicJWK(spiffeOpsFilesKID, "ES256", filesKey.Public())))
	srv := startServer(t, policy)
	c := authv3.NewAuthorizationClient(dial(t, srv))

	svid := spiffeOpsSVIDToken(t, svidKey)
	now := time.Now().Unix()
	filesToken := jose.MustSign(t, "ES256", filesKey, map[string]any{"kid": spiffeOpsFilesKID, "typ": "at+jwt"}, map[string]any{
		"iss": spiffeOpsFilesIss, "sub": "user-1", "aud": spiffeOpsAudience, "client_id": "files-app",
		"jti": newJTI(), "iat": now, "exp": now + 300,
	})
	req := func(tok string) *authv3.CheckRequest {
		r := plainRequest(spiffeOpsAudience, "/things/1")
		r.Attributes.Request.Http.Headers["authorization"] = "Bearer " + tok
		return r
	}
	expectDecision(t, checkOn(t, c, srv, req(svid)), codes.OK, 0, "allow", "api", "allowed")
	expectDecision(t, checkOn(t, c, srv, req(filesToken)), codes.OK, 0, "allow", "api", "allowed")

	// /debug/keys: the SPIFFE entry has every field of the jwks_file entry,
	// and its trust_domain besides (docs/keys.md).
	dk := debugIssuers(t, srv)
	mesh, files := dk["mesh"], dk["files"]
	if mesh == nil || files == nil {
		t.Fatalf("/debug/keys issuers = %v, want mesh and files", slices.Sorted(maps.Keys(dk)))
	}
	meshFields, filesFields := slices.Sorted(maps.Keys(mesh)), slices.Sorted(maps.Keys(files))
	wantFields := slices.Sorted(slices.Values(append(slices.Clone(filesFields), "trust_domain")))
	if !slices.Equal(meshFields, wantFields) {
		t.Errorf("/debug/keys fields of the spiffe issuer = %v, want those of the jwks_file issuer %v plus trust_domain", meshFields, filesFields)
	}
	for _, want := range []struct {
		entry         map[string]json.RawMessage
		source, where string
	}{
		{mesh, "spiffe.bundle_file", bundleFile},
		{files, "jwks_file", jwksFile},
	} {
		var source, location string
		var servable bool
		var keys []struct {
			KID  string `json:"kid"`
			Type string `json:"type"`
		}
		field(t, want.entry, "source", &source)
		field(t, want.entry, "location", &location)
		field(t, want.entry, "servable", &servable)
		field(t, want.entry, "keys", &keys)
		if source != want.source || location != want.where || !servable || len(keys) != 1 || keys[0].Type != "EC P-256" {
			t.Errorf("/debug/keys entry: source %q, location %q, servable %v, keys %+v; want %q, %q, servable, one EC P-256 key",
				source, location, servable, keys, want.source, want.where)
		}
	}
	var td string
	field(t, mesh, "trust_domain", &td)
	if td != "example.org" {
		t.Errorf("/debug/keys trust_domain = %q, want example.org", td)
	}

	// /metrics: the same extauthz_keys_* series for both issuers.
	m := scrape(t, srv)
	meshSeries, filesSeries := keysSeries(m, "mesh"), keysSeries(m, "files")
	if got, want := slices.Sorted(maps.Keys(meshSeries)), slices.Sorted(maps.Keys(filesSeries)); !slices.Equal(got, want) {
		t.Errorf("extauthz_keys_* series of the spiffe issuer = %v, want those of the jwks_file issuer, %v", got, want)
	}
	for _, s := range []map[string]float64{meshSeries, filesSeries} {
		if s["extauthz_keys_loaded{}"] != 1 || s["extauthz_keys_consecutive_failures{}"] != 0 {
			t.Errorf("extauthz_keys_* = %v, want keys loaded 1, consecutive failures 0", s)
		}
		if age, ok := s["extauthz_keys_set_age_seconds{}"]; !ok || age < 0 || age > 300 {
			t.Errorf("extauthz_keys_set_age_seconds = %v (present %v), want 0..300s", age, ok)
		}
	}
	if t.Failed() {
		t.Fatalf("log:\n%s", srv.Logs)
	}

	// The bundle rewritten (write and rename, as spiffe-helper does) with
	// the same key marked "use": "sig". The file is looked at by the first
	// Check at least a second after the last look (docs/spiffe.md), so
	// each poll sends the SVID, then scrapes.
	tmp := filepath.Join(filepath.Dir(bundleFile), ".jwt-bundle.json.tmp")
	if err := os.WriteFile(tmp, bundleKey(svidKey, "sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bundleFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, `extauthz_keys_loaded{issuer="mesh"} drops to 0`, func() bool {
		checkOn(t, c, srv, req(svid))
		v, ok := scrape(t, srv)["extauthz_keys_loaded"+series("issuer", "mesh")]
		return ok && v == 0
	})
	wantLog := func(l map[string]any) bool {
		return l["level"] == "WARN" && l["msg"] == "keys: bundle key skipped" && l["issuer"] == "mesh" && l["key"] == spiffeUseWords
	}
	eventually(t, "the skipped key is logged with the documented words", func() bool {
		return slices.ContainsFunc(logLines(srv), wantLog)
	})

	// The SVID the key signed, and a new one, are denied as docs/spiffe.md
	// says; the jwks_file issuer is untouched.
	expectDecision(t, checkOn(t, c, srv, req(svid)), codes.Unauthenticated, 401, "deny", "api", "kid_unknown")
	expectDecision(t, checkOn(t, c, srv, req(spiffeOpsSVIDToken(t, svidKey))), codes.Unauthenticated, 401, "deny", "api", "kid_unknown")
	expectDecision(t, checkOn(t, c, srv, req(filesToken)), codes.OK, 0, "allow", "api", "allowed")

	m = scrape(t, srv)
	meshSeries = keysSeries(m, "mesh")
	if meshSeries[`extauthz_keys_skipped_keys_total{reason="use"}`] != 1 || meshSeries["extauthz_keys_unknown_kid_total{}"] < 1 {
		t.Errorf(`extauthz_keys_* of mesh = %v, want skipped_keys_total{reason="use"} 1 and unknown_kid_total >= 1`, meshSeries)
	}
	if v := keysSeries(m, "files")["extauthz_keys_loaded{}"]; v != 1 {
		t.Errorf(`extauthz_keys_loaded{issuer="files"} = %v, want 1`, v)
	}
	mesh = debugIssuers(t, srv)["mesh"]
	var keys []any
	var skipped []struct {
		KID    string `json:"kid"`
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}
	field(t, mesh, "keys", &keys)
	field(t, mesh, "skipped", &skipped)
	if len(keys) != 0 || len(skipped) != 1 || skipped[0].KID != spiffeOpsKID || skipped[0].Reason != "use" ||
		!strings.Contains(skipped[0].Detail, `"use": "sig"; in a SPIFFE bundle a JWT-SVID key has "use": "jwt-svid" (or no use)`) {
		t.Errorf("/debug/keys of mesh after the rewrite: keys %v, skipped %+v; want no keys, k1 skipped for its use", keys, skipped)
	}
	if t.Failed() {
		t.Logf("log:\n%s", srv.Logs)
	}
}
