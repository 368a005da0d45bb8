package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/extauthz/extauthz/internal/keys"
)

const prmIssuers = `version: v1
issuers:
  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}
rules:
`

// TestProtectedResourceErrors: every way a protected_resource or step-up
// block is wrong is a load error naming the field.
func TestProtectedResourceErrors(t *testing.T) {
	bearer := "bearer: {issuers: [a], audiences: [x]}"
	rule := func(name, pr string) string {
		return "  - {name: " + name + ", " + bearer + ", protected_resource: " + pr + "}\n"
	}
	as := "authorization_servers: [https://as.example]"
	cases := []struct {
		name, rules string
		want        string
	}{
		{"http resource", rule("r", "{resource: http://api.example/mcp, "+as+"}"), `rules[0].protected_resource.resource: must be an absolute https:// URL, got "http://api.example/mcp"`},
		{"relative resource", rule("r", "{resource: /mcp, "+as+"}"), `rules[0].protected_resource.resource: must be an absolute https:// URL, got "/mcp"`},
		{"no resource", rule("r", "{"+as+"}"), `rules[0].protected_resource.resource: required: the resource's https URL`},
		{"fragment", rule("r", "{resource: 'https://api.example/mcp#x', "+as+"}"), `rules[0].protected_resource.resource: "https://api.example/mcp#x" has a fragment; leave it out`},
		{"query", rule("r", "{resource: 'https://api.example/mcp?x=1', "+as+"}"), `rules[0].protected_resource.resource: "https://api.example/mcp?x=1" has a query; leave it out`},
		{"quote", rule("r", `{resource: 'https://api.example/m"cp', `+as+"}"), `rules[0].protected_resource.resource: "https://api.example/m\"cp" has a character a URL may not hold ('"'); percent-encode it`},
		{"userinfo", rule("r", "{resource: 'https://u@api.example/mcp', "+as+"}"), `rules[0].protected_resource.resource: "https://u@api.example/mcp" has user information; leave it out`},
		{"bad port", rule("r", "{resource: 'https://api.example:x/mcp', "+as+"}"), `rules[0].protected_resource.resource: "https://api.example:x/mcp" has a bad port`},
		{"no host", rule("r", "{resource: 'https:///mcp', "+as+"}"), `rules[0].protected_resource.resource: "https:///mcp" has no host name`},
		{"dot segment", rule("r", "{resource: 'https://api.example/a/../mcp', "+as+"}"), `rules[0].protected_resource.resource: "https://api.example/a/../mcp" has a dot segment; Envoy normalises those away, so no request would reach the resource as named`},
		{"no authorization server", rule("r", "{resource: https://api.example/mcp}"), `rules[0].protected_resource.authorization_servers: at least one authorization server is required: it is what a client reads the document for`},
		{"http authorization server", rule("r", "{resource: https://api.example/mcp, authorization_servers: [http://as.example]}"), `rules[0].protected_resource.authorization_servers[0]: must be an absolute https:// URL, got "http://as.example"`},
		{"authorization server with query", rule("r", "{resource: https://api.example/mcp, authorization_servers: ['https://as.example?x']}"), `rules[0].protected_resource.authorization_servers[0]: "https://as.example?x" has a query; leave it out`},
		{"bad scope", rule("r", "{resource: https://api.example/mcp, "+as+", scopes_supported: ['a b']}"), `rules[0].protected_resource.scopes_supported[0]: not a valid scope token (RFC 6749 §3.3: printable ASCII without space, '"' or '\'): "a b"`},
		{"bad documentation", rule("r", "{resource: https://api.example/mcp, "+as+", resource_documentation: docs}"), `rules[0].protected_resource.resource_documentation: must be an absolute http(s) URL, got "docs"`},
		{"no bearer", "  - {name: r, protected_resource: {resource: https://api.example/mcp, " + as + "}}\n", `rules[0].protected_resource: needs a bearer credential on the rule: RFC 9728 metadata tells clients where to get the access token the rule takes`},
		{
			"conflicting duplicate",
			rule("r1", "{resource: https://api.example/mcp, "+as+"}") + rule("r2", "{resource: https://api.example/mcp, authorization_servers: [https://other.example]}"),
			`rules[1].protected_resource: differs from rule "r1"'s block for the same resource; every rule of one resource publishes one document, so the blocks must be equal`,
		},
		{
			"two identifiers, one document",
			rule("r1", "{resource: https://api.example/mcp, "+as+"}") + rule("r2", "{resource: 'https://API.example:8443/mcp', "+as+"}"),
			`rules[1].protected_resource.resource: "https://API.example:8443/mcp" has its metadata at the same place as rule "r1"'s "https://api.example/mcp" (https://api.example/.well-known/oauth-protected-resource/mcp); use one resource identifier`,
		},
		{
			"same resource, other dpop",
			rule("r1", "{resource: https://api.example/mcp, "+as+"}") + "  - {name: r2, bearer: {issuers: [a], audiences: [x], dpop: {mode: required}}, protected_resource: {resource: https://api.example/mcp, " + as + "}}\n",
			`rules[1].protected_resource: rule "r1" of the same resource has other dpop settings; the document states one DPoP policy per resource (dpop_bound_access_tokens_required, dpop_signing_alg_values_supported)`,
		},
		{"empty acr", "  - {name: r, bearer: {issuers: [a], audiences: [x], acr_values: ['']}}\n", `rules[0].bearer.acr_values[0]: must be a non-empty value without spaces, quotes, backslashes or control characters, got ""`},
		{"acr with space", "  - {name: r, bearer: {issuers: [a], audiences: [x], acr_values: ['a b']}}\n", `rules[0].bearer.acr_values[0]: must be a non-empty value without spaces, quotes, backslashes or control characters, got "a b"`},
		{"acr with quote", "  - {name: r, bearer: {issuers: [a], audiences: [x], acr_values: ['a\"']}}\n", `rules[0].bearer.acr_values[0]: must be a non-empty value without spaces, quotes, backslashes or control characters, got "a\""`},
		{"zero max_age", "  - {name: r, bearer: {issuers: [a], audiences: [x], max_age: 0s}}\n", `rules[0].bearer.max_age: must be positive`},
		{"fractional max_age", "  - {name: r, bearer: {issuers: [a], audiences: [x], max_age: 1.5s}}\n", `rules[0].bearer.max_age: must be whole seconds: the challenge's max_age is an integer, got 1.5s`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := loadErrors(t, prmIssuers+tc.rules)
			var found bool
			for _, e := range errs {
				// Drop "p.yaml:line:col: ".
				if _, msg, ok := strings.Cut(e, ": "); ok && msg == tc.want {
					found = true
				}
			}
			if !found || len(errs) != 1 {
				t.Fatalf("load errors =\n  %s\nwant exactly one:\n  %s", strings.Join(errs, "\n  "), tc.want)
			}
		})
	}
}

func loadSnapshot(t *testing.T, body string) *Snapshot {
	t.Helper()
	dir := writePolicy(t, map[string]string{"p.yaml": body})
	snap, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestProtectedResourceDocument: the rendered documents, exactly, and where
// they are found; rules of one resource share one document whose default
// scopes_supported is the union of their scopes.
func TestProtectedResourceDocument(t *testing.T) {
	snap := loadSnapshot(t, prmIssuers+`
  - name: mcp-read
    match: {paths: [/mcp], methods: [GET]}
    bearer: {issuers: [a], audiences: [https://mcp.example.com/mcp], scopes: [mcp:read]}
    protected_resource: &mcp
      resource: https://mcp.example.com/mcp
      authorization_servers: [https://as.example.com]
      resource_name: Example MCP server
      resource_documentation: https://docs.example.com/mcp?lang=en&x=1
  - name: mcp-write
    match: {paths: [/mcp]}
    bearer: {issuers: [a], audiences: [https://mcp.example.com/mcp], scopes: [mcp:read, mcp:write]}
    protected_resource: *mcp
  - name: dpop-root
    match: {hosts: [api.example.com]}
    bearer:
      issuers: [a]
      audiences: [x]
      dpop: {mode: required, algorithms: [ES256, EdDSA]}
    protected_resource:
      resource: https://api.example.com
      authorization_servers: [https://as.example.com, https://as2.example.com]
      scopes_supported: [api]
  - name: no-resource
    match: {hosts: [hidden.example.com]}
    bearer: {issuers: [a], audiences: [x]}
  - name: trailing
    match: {hosts: [t.example.com]}
    bearer: {issuers: [a], audiences: [x], dpop: {mode: optional}}
    protected_resource: {resource: 'https://T.example.com:8443/', authorization_servers: [https://as.example.com]}
`)
	mcp := snap.ResourceAt("mcp.example.com", "/.well-known/oauth-protected-resource/mcp")
	if mcp == nil {
		t.Fatal("no document for the MCP resource")
	}
	if want := `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://as.example.com"],"scopes_supported":["mcp:read","mcp:write"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server","resource_documentation":"https://docs.example.com/mcp?lang=en&x=1"}`; string(mcp.Document) != want {
		t.Errorf("MCP document =\n  %s\nwant\n  %s", mcp.Document, want)
	}
	if want := `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`; mcp.Challenge != want {
		t.Errorf("challenge = %s, want %s", mcp.Challenge, want)
	}
	for _, name := range []string{"mcp-read", "mcp-write"} {
		if r, _ := snap.Select(name, nil); r.Resource != mcp {
			t.Errorf("rule %s does not share the document", name)
		}
	}
	if mcp.Rule.Name != "mcp-read" {
		t.Errorf("Rule = %s, want the first rule", mcp.Rule.Name)
	}

	root := snap.ResourceAt("api.example.com", "/.well-known/oauth-protected-resource")
	if root == nil {
		t.Fatal("no document for the resource without a path")
	}
	if want := `{"resource":"https://api.example.com","authorization_servers":["https://as.example.com","https://as2.example.com"],"scopes_supported":["api"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","EdDSA"],"dpop_bound_access_tokens_required":true}`; string(root.Document) != want {
		t.Errorf("DPoP document =\n  %s\nwant\n  %s", root.Document, want)
	}

	tr := snap.ResourceAt("t.example.com", "/.well-known/oauth-protected-resource")
	if tr == nil {
		t.Fatal("no document for the resource with a trailing slash (RFC 9728 §3.1 drops it)")
	}
	if want := `{"resource":"https://T.example.com:8443/","authorization_servers":["https://as.example.com"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","RS256","RS384","RS512","EdDSA"]}`; string(tr.Document) != want {
		t.Errorf("optional-DPoP document =\n  %s\nwant\n  %s", tr.Document, want)
	}
	if want := "https://T.example.com:8443/.well-known/oauth-protected-resource"; tr.MetadataURL != want {
		t.Errorf("MetadataURL = %s, want %s", tr.MetadataURL, want)
	}

	// Never a document for a rule without a resource, nor at a path or
	// host that no resource names.
	for _, c := range [][2]string{
		{"hidden.example.com", "/.well-known/oauth-protected-resource"},
		{"mcp.example.com", "/.well-known/oauth-protected-resource"},
		{"mcp.example.com", "/.well-known/oauth-protected-resource/mcp/"},
		{"mcp.example.com", "/.well-known/oauth-protected-resource/MCP"},
		{"api.example.com", "/.well-known/oauth-protected-resource/mcp"},
		{"evil.example.com", "/.well-known/oauth-protected-resource/mcp"},
	} {
		if pr := snap.ResourceAt(c[0], c[1]); pr != nil {
			t.Errorf("ResourceAt(%s, %s) = %s, want none", c[0], c[1], pr.Resource)
		}
	}
	// By path alone (the HTTP port): unique paths need no host; the root
	// path has two documents, so the host picks.
	if pr := snap.ResourceForPath("/.well-known/oauth-protected-resource/mcp", "internal:9090"); pr != mcp {
		t.Errorf("ResourceForPath(mcp) = %v, want the MCP document", pr)
	}
	if pr := snap.ResourceForPath("/.well-known/oauth-protected-resource", "api.example.com"); pr != root {
		t.Errorf("ResourceForPath(root, api.example.com) = %v, want the api document", pr)
	}
	if pr := snap.ResourceForPath("/.well-known/oauth-protected-resource", "internal"); pr != nil {
		t.Errorf("ResourceForPath(root, internal) = %s, want none: two documents share the path", pr.Resource)
	}
	if r, _ := snap.Select("no-resource", nil); r.Resource != nil {
		t.Error("a rule without protected_resource has a Resource")
	}
}

// TestStepUpCompiled: acr_values and max_age become the rule's StepUp and
// its challenge parameters, exactly those set.
func TestStepUpCompiled(t *testing.T) {
	snap := loadSnapshot(t, prmIssuers+`
  - {name: both, bearer: {issuers: [a], audiences: [x], acr_values: [urn:mace:incommon:iap:silver, phr], max_age: 5m}}
  - {name: acr, bearer: {issuers: [a], audiences: [x], acr_values: [phr]}}
  - {name: age, bearer: {issuers: [a], audiences: [x], max_age: 90s}}
  - {name: none, bearer: {issuers: [a], audiences: [x]}}
`)
	for name, want := range map[string]string{
		"both": `acr_values="urn:mace:incommon:iap:silver phr", max_age="300"`,
		"acr":  `acr_values="phr"`,
		"age":  `max_age="90"`,
	} {
		r, _ := snap.Select(name, nil)
		if r.Bearer.StepUp == nil || r.Bearer.StepUp.Params != want {
			t.Errorf("%s: StepUp = %+v, want params %s", name, r.Bearer.StepUp, want)
		}
	}
	if r, _ := snap.Select("both", nil); !slices.Equal(r.Bearer.StepUp.ACRValues, []string{"urn:mace:incommon:iap:silver", "phr"}) || r.Bearer.StepUp.MaxAge != 5*time.Minute {
		t.Errorf("both: StepUp = %+v", r.Bearer.StepUp)
	}
	if r, _ := snap.Select("none", nil); r.Bearer.StepUp != nil {
		t.Errorf("none: StepUp = %+v, want nil", r.Bearer.StepUp)
	}
}

// FuzzResourceAt: whatever host and path a request names, a document
// comes back only for exactly the place a resource names.
func FuzzResourceAt(f *testing.F) {
	dir := f.TempDir()
	snap, err := loadFuzzSnapshot(dir, prmIssuers+`
  - name: mcp
    bearer: {issuers: [a], audiences: [x]}
    protected_resource: {resource: https://mcp.example.com/mcp, authorization_servers: [https://as.example.com]}
  - name: hidden
    bearer: {issuers: [a], audiences: [x]}
`)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("mcp.example.com", "/.well-known/oauth-protected-resource/mcp")
	f.Add("mcp.example.com", "/.well-known/oauth-protected-resource")
	f.Add("", "/.well-known/oauth-protected-resource/mcp")
	f.Fuzz(func(t *testing.T, host, path string) {
		pr := snap.ResourceAt(host, path)
		exact := host == "mcp.example.com" && path == "/.well-known/oauth-protected-resource/mcp"
		if (pr != nil) != exact {
			t.Fatalf("ResourceAt(%q, %q) = %v", host, path, pr)
		}
		if pr := snap.ResourceForPath(path, host); (pr != nil) != (path == "/.well-known/oauth-protected-resource/mcp") {
			t.Fatalf("ResourceForPath(%q, %q) = %v", path, host, pr)
		}
	})
}

// loadFuzzSnapshot loads body from dir without a *testing.T; the plane is
// offline and never closed, as fuzz workers end with the process.
func loadFuzzSnapshot(dir, body string) (*Snapshot, error) {
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		return nil, err
	}
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		return nil, err
	}
	return Load([]string{file}, Options{Keys: plane})
}
