package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// stepUpPolicy is an MCP resource whose rule asks for a step-up.
const stepUpPolicy = `version: v1
issuers:
  - name: login
    issuer: https://login.example.com
    jwks_file: {{KEYS}}/login.jwks.json
    algorithms: [EdDSA]
rules:
  - name: mcp
    match: {hosts: [mcp.example.com]}
    bearer:
      issuers: [login]
      audiences: [https://mcp.example.com/mcp]
      acr_values: [phr]
      max_age: 600s
    protected_resource:
      resource: https://mcp.example.com/mcp
      authorization_servers: [https://login.example.com]
  - name: other
    match: {hosts: [other.example.com]}
    bearer:
      issuers: [login]
      audiences: [https://other.example.com/mcp]
    protected_resource:
      resource: https://other.example.com
      authorization_servers: [https://login.example.com]
  - name: third
    match: {hosts: [third.example.com]}
    bearer:
      issuers: [login]
      audiences: [https://third.example.com]
    protected_resource:
      resource: https://third.example.com
      authorization_servers: [https://as.third.example.com]
`

// TestCheckExplainStepUp: --explain shows the step-up decision and the
// challenge it leads to.
func TestCheckExplainStepUp(t *testing.T) {
	f := newCheckFixture(t)
	p := f.write(t, "stepup.yaml", strings.ReplaceAll(stepUpPolicy, "{{KEYS}}", f.keys))
	tok := f.sign(t, "login.private.jwk.json", jwa.EdDSA(), map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": "https://mcp.example.com/mcp", "acr": "pwd",
	})
	out := expectCheck(t, 1, "", "--policy", p, "--explain", "--url", "https://mcp.example.com/mcp", "--bearer", tok)
	for _, want := range []string{
		"FAIL step-up: acr \"pwd\" is not one of [phr]\n",
		"FAIL decision: deny: HTTP 401 (acr_insufficient)\n",
		`response   www-authenticate: Bearer realm="extauthz", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="phr", max_age="600", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks\n%s\n---- output:\n%s", want, out)
		}
	}
	tok = f.sign(t, "login.private.jwk.json", jwa.EdDSA(), map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": "https://mcp.example.com/mcp", "acr": "phr",
	})
	out = expectCheck(t, 1, "", "--policy", p, "--explain", "--url", "https://mcp.example.com/mcp", "--bearer", tok)
	for _, want := range []string{
		"ok   step-up: acr \"phr\" is one of [phr]\n",
		"FAIL step-up: auth_time is absent or not a NumericDate; the rule wants an authentication at most 10m0s old\n",
		"FAIL decision: deny: HTTP 401 (auth_time_missing)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks\n%s\n---- output:\n%s", want, out)
		}
	}
	out = expectCheck(t, 1, "", "--policy", p, "--explain", "--url", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
	if want := `ok   resource metadata: https://mcp.example.com/.well-known/oauth-protected-resource/mcp is the RFC 9728 document of https://mcp.example.com/mcp (rule "mcp"); answered with HTTP 200` + "\n"; !strings.Contains(out, want) {
		t.Errorf("--explain output lacks\n%s\n---- output:\n%s", want, out)
	}
}

// TestResourceMetadataHandler: the HTTP port's documents, by path alone
// when one host has the path, by Host when several do; never one for a
// path no resource names.
func TestResourceMetadataHandler(t *testing.T) {
	f := newCheckFixture(t)
	p := f.write(t, "stepup.yaml", strings.ReplaceAll(stepUpPolicy, "{{KEYS}}", f.keys))
	snap, err := policy.Load([]string{p}, policy.Options{Keys: offlineKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(resourceMetadataHandler(policy.NewStore(snap)))
	t.Cleanup(srv.Close)
	const (
		mcpDoc   = `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://login.example.com"],"bearer_methods_supported":["header"]}`
		otherDoc = `{"resource":"https://other.example.com","authorization_servers":["https://login.example.com"],"bearer_methods_supported":["header"]}`
		thirdDoc = `{"resource":"https://third.example.com","authorization_servers":["https://as.third.example.com"],"bearer_methods_supported":["header"]}`
	)
	for _, c := range []struct {
		host, path string
		status     int
		body       string
	}{
		{"", "/.well-known/oauth-protected-resource/mcp", 200, mcpDoc},
		{"extauthz.internal:9090", "/.well-known/oauth-protected-resource/mcp", 200, mcpDoc},
		{"other.example.com", "/.well-known/oauth-protected-resource", 200, otherDoc},
		{"THIRD.example.com:443", "/.well-known/oauth-protected-resource", 200, thirdDoc},
		{"extauthz.internal", "/.well-known/oauth-protected-resource", 404, ""},
		{"mcp.example.com", "/.well-known/oauth-protected-resource/other", 404, ""},
	} {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || c.status == 200 && string(body) != c.body {
			t.Errorf("GET %s (Host %s) = %d %s, want %d %s", c.path, c.host, resp.StatusCode, body, c.status, c.body)
		}
	}
}

func offlineKeys(t *testing.T) *keys.Plane {
	t.Helper()
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	return plane
}

// TestResourceMetadataHandlerReload: a reload that drops the resource takes
// its document away at once, and one that changes it serves the new one.
func TestResourceMetadataHandlerReload(t *testing.T) {
	f := newCheckFixture(t)
	load := func(yaml string) *policy.Snapshot {
		t.Helper()
		p := f.write(t, "reload.yaml", strings.ReplaceAll(yaml, "{{KEYS}}", f.keys))
		snap, err := policy.Load([]string{p}, policy.Options{Keys: offlineKeys(t)})
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	store := policy.NewStore(load(stepUpPolicy))
	srv := httptest.NewServer(resourceMetadataHandler(store))
	t.Cleanup(srv.Close)
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource/mcp")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("before the reload: %d", code)
	}
	store.Swap(load(strings.Replace(stepUpPolicy, "authorization_servers: [https://login.example.com]\n  - name: other", "authorization_servers: [https://new.example.com]\n  - name: other", 1)))
	if code, body := get(); code != 200 || !strings.Contains(body, `"authorization_servers":["https://new.example.com"]`) {
		t.Errorf("after a change: %d %s", code, body)
	}
	store.Swap(load(strings.Replace(stepUpPolicy, "    protected_resource:\n      resource: https://mcp.example.com/mcp\n      authorization_servers: [https://login.example.com]\n", "", 1)))
	if code, body := get(); code != 404 {
		t.Errorf("after the resource was dropped: %d %s, want 404", code, body)
	}
}
