package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/keys"
)

func offlinePlane(t *testing.T) *keys.Plane {
	t.Helper()
	p, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// writePolicy writes files into a fresh directory and returns its path.
func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The spec's complete example, as written there.
const specExample = `version: v1

issuers:
  - name: partner-acme
    issuer: partner-api-client
    jwks_uri: https://keys.acme.example/.well-known/jwks
    algorithms: [PS256]

  - name: spire
    issuer: https://oidc-discovery.example.org
    jwks_uri: https://spire-oidc.spire-server/keys
    spiffe_trust_domain: example.org
    client_ids:
      spiffe://example.org/ns/applications/sa/workload-client: jwt_assertion_client

  - name: mesh
    spiffe:
      trust_domain: example.org
      workload_api_socket: unix:///run/spire/sockets/agent.sock

  - name: login
    issuer: https://login.example.com
    discovery: true

rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner-acme, spire]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
      x-spiffe-id: spiffe_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'

  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [login, mesh]
      audiences: [api.example.com]
      scopes: [reports]
    require:
      - 'request.method == "GET" || "reports:write" in scopes'
    headers:
      x-client-id: client_id

default_action: deny
`

func TestLoadSpecExample(t *testing.T) {
	dir := writePolicy(t, map[string]string{"policy.yaml": specExample})
	snap, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(snap.Rules); got != 2 {
		t.Fatalf("rules = %d, want 2", got)
	}
	if got := len(snap.RemoteSources()); got != 4 {
		t.Errorf("remote sources = %d, want 4", got)
	}
	if mesh := snap.Issuers["mesh"]; mesh.TrustDomain != "example.org" || mesh.Iss != "" {
		t.Errorf("mesh issuer compiled as %+v", mesh)
	}
	want := []string{"x-client-id", "x-client_id", "x-is-agent", "x-is_agent", "x-spiffe-id", "x-spiffe_id", "x_client-id", "x_client_id", "x_is-agent", "x_is_agent", "x_spiffe-id", "x_spiffe_id"}
	if strings.Join(snap.Managed, " ") != strings.Join(want, " ") {
		t.Errorf("managed = %v, want %v", snap.Managed, want)
	}
	if snap.Realm != "extauthz" || snap.DefaultAllow {
		t.Errorf("realm %q default allow %v", snap.Realm, snap.DefaultAllow)
	}
	spire := snap.Issuers["spire"]
	if !spire.IssuesSVIDs() || spire.ClockSkew.Seconds() != 30 || len(spire.Algorithms) != 10 {
		t.Errorf("spire issuer compiled as %+v", spire)
	}
	ca := snap.Rules[0].ClientAssertion
	if ca.MaxLifetime.Seconds() != 1800 || !ca.ReplayProtected(snap.Issuers["partner-acme"]) || ca.ReplayProtected(spire) {
		t.Errorf("client assertion defaults wrong: %+v", ca)
	}
	if snap.Hash == "" || snap.LoadedAt.IsZero() {
		t.Error("hash or load time missing")
	}
}

func TestLoadSeveralFiles(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"10-rules.yaml": `version: v1
rules:
  - name: api
    bearer: {issuers: [login], audiences: [api]}
    headers: {X-Client-Id: client_id}
strip_headers: [x-internal]
`,
		"20-issuers.yml": `version: v1
issuers:
  - {name: login, issuer: https://login.example.com, jwks_uri: https://login.example.com/jwks}
realm: api
default_action: allow
strip_headers: [x-other]
`,
		"README.md": "not a policy",
	})
	snap, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != 2 || !strings.HasSuffix(snap.Files[0], "10-rules.yaml") {
		t.Errorf("files = %v", snap.Files)
	}
	if snap.Realm != "api" || !snap.DefaultAllow {
		t.Errorf("realm %q allow %v", snap.Realm, snap.DefaultAllow)
	}
	if got := strings.Join(snap.Managed, " "); got != "x-client-id x-client_id x-internal x-other x_client-id x_client_id x_internal x_other" {
		t.Errorf("managed = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	const issuers = `
issuers:
  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}
`
	cases := []struct {
		name, yaml, want string
	}{
		{"version", "version: v2\n", `version: must be "v1"`},
		{"unknown field", "version: v1\nrealms: x\n", "realms: unknown field"},
		{"duplicate key", "version: v1\nrealm: a\nrealm: b\n", "realm: set more than once"},
		{"wrong type", "version: v1\nstrip_headers: x-a\n", "strip_headers: expected a list"},
		{"number for string", "version: v1\nrealm: 12\n", "realm: expected a string, got int 12"},
		{"two key sources", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, jwks_file: f}\n", "issuers[0].jwks_file: only one of"},
		{"no key source", "version: v1\nissuers:\n  - {name: a, issuer: x}\n", "issuers[0]: a key source is required"},
		{"no issuer", "version: v1\nissuers:\n  - {name: a, jwks_uri: https://a/j}\n", "issuers[0].issuer: required"},
		{"alg none", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, algorithms: [none]}\n", `issuers[0].algorithms[0]: "none" is never accepted`},
		{"hmac alg on public key", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, algorithms: [HS256]}\n", `issuers[0].algorithms[0]: "HS256" is not a supported public-key algorithm`},
		{"bad jwks_uri", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: /jwks}\n", "issuers[0].jwks_uri: must be an absolute"},
		{"spiffe without bundle", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org}\n", "issuers[0].spiffe: a bundle source is required"},
		{"spiffe bad socket", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org, workload_api_socket: /run/agent.sock}\n", "issuers[0].spiffe.workload_api_socket: must be unix:///path"},
		{"spiffe bad trust domain", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: 'spiffe://example.org', bundle_file: b.json}\n", "issuers[0].spiffe.trust_domain: required"},
		{"spiffe http endpoint", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org, bundle_endpoint: {url: 'http://b.example.org'}}\n", "issuers[0].spiffe.bundle_endpoint.url: must be an https:// URL"},
		{"bad trust domain", "version: v1\nissuers:\n  - {name: a, jwks_uri: https://a/j, spiffe_trust_domain: 'Bad Domain'}\n", "issuers[0].spiffe_trust_domain: not a valid trust domain"},
		{"duplicate issuer", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j}\n  - {name: a, issuer: y, jwks_uri: https://a/j}\n", `issuers[1].name: issuer "a" is defined more than once`},
		{"unknown issuer ref", "version: v1\nrules:\n  - {name: r, bearer: {issuers: [nope], audiences: [x]}}\n", `rules[0].bearer.issuers[0]: no issuer named "nope"`},
		{"no audiences", "version: v1" + issuers + "rules:\n  - {name: r, client_assertion: {issuers: [a]}}\n", "rules[0].client_assertion.audiences: at least one audience is required"},
		{"cel undeclared", "version: v1\nrules:\n  - name: r\n    headers:\n      x-is-agent: 'clams.x'\n", `rules[0].headers["x-is-agent"]: undeclared reference to 'clams'`},
		{"cel not bool", "version: v1\nrules:\n  - name: r\n    require: ['client_id']\n", "rules[0].require[0]: must be a bool expression"},
		{"cel runaway", "version: v1\nrules:\n  - name: r\n    require: ['claims.l.all(a, claims.l.all(b, claims.l.all(c, claims.l.all(d, true))))']\n", "rules[0].require[0]: too expensive"},
		{"bad header name", "version: v1\nrules:\n  - name: r\n    headers: {'x client': client_id}\n", `rules[0].headers["x client"]: not a valid header name`},
		{"too many spellings", "version: v1\nstrip_headers: [a-b-c-d-e-f-g-h-i-j]\n", `strip_headers[0]: header "a-b-c-d-e-f-g-h-i-j" has more than 8 - or _ separators`},
		{"reserved header", "version: v1\nstrip_headers: [Host]\n", `strip_headers[0]: "host" is reserved`},
		{"bad host", "version: v1\nrules:\n  - {name: r, match: {hosts: ['a.example:443']}}\n", "rules[0].match.hosts[0]: must be a host name"},
		{"bad path", "version: v1\nrules:\n  - {name: r, match: {paths: [reports]}}\n", "rules[0].match.paths[0]: must start with /"},
		{"lower method", "version: v1\nrules:\n  - {name: r, match: {methods: [get]}}\n", "rules[0].match.methods[0]: must be an upper-case HTTP method"},
		{"bad mode", "version: v1\nrules:\n  - {name: r, mode: dry-run}\n", `rules[0].mode: must be "enforce" or "audit"`},
		{"bad default", "version: v1\ndefault_action: permit\n", `default_action: must be "deny" or "allow"`},
		{"duplicate rule", "version: v1\nrules:\n  - {name: r}\n  - {name: r}\n", `rules[1].name: rule "r" is defined more than once`},
		{"negative duration", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, clock_skew: -1s}\n", "issuers[0].clock_skew: expected a non-negative duration"},
		{"two documents", "version: v1\n---\nversion: v1\n", "holds more than one YAML document"},
		{"not yaml", "version: [v1\n", "not valid YAML"},
		{"dpop mode", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: require}}}\n", `rules[0].bearer.dpop.mode: must be "off", "optional" or "required", got "require"`},
		{"dpop symmetric alg", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [ES256, HS256]}}}\n", `rules[0].bearer.dpop.algorithms[1]: "HS256" is symmetric`},
		{"dpop alg none", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [none]}}}\n", `rules[0].bearer.dpop.algorithms[0]: "none" is never accepted`},
		{"dpop unknown alg", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [ES256K]}}}\n", `rules[0].bearer.dpop.algorithms[0]: "ES256K" is not a supported proof algorithm`},
		{"dpop max_age", "version: v1" + issuers + "rules:\n  - {name: r, client_assertion: {issuers: [a], audiences: [x], dpop: {mode: optional, max_age: 0s}}}\n", "rules[0].client_assertion.dpop.max_age: must be positive"},
		{"dpop settings while off", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {nonce: true}}}\n", "rules[0].bearer.dpop.mode: is off, so the other dpop settings do nothing"},
		{"dpop unknown field", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, nonces: true}}}\n", "rules[0].bearer.dpop.nonces: unknown field"},
		{"peer_svid without SVID issuers", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], peer_svid: true}}\n", "rules[0].bearer.peer_svid: binds a JWT-SVID to the peer's X.509-SVID, but none of the rule's issuers issues JWT-SVIDs"},
		{"ambiguous iss", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j}\n  - {name: b, issuer: x, jwks_uri: https://b/j}\nrules:\n  - {name: r, bearer: {issuers: [a, b], audiences: [x]}}\n", `rules[0].bearer.issuers[1]: issuers "a" and "b" both have issuer "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicy(t, map[string]string{"p.yaml": tc.yaml})
			_, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			if !strings.Contains(err.Error(), "p.yaml: "+tc.want) {
				t.Fatalf("error\n%v\ndoes not contain\n%s", err, "p.yaml: "+tc.want)
			}
		})
	}
}

func TestLoadSettingsInOneFileOnly(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"a.yaml": "version: v1\nrealm: one\ndefault_action: deny\n",
		"b.yaml": "version: v1\nrealm: two\ndefault_action: allow\n",
	})
	_, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err == nil || !strings.Contains(err.Error(), "b.yaml: realm: already set in") || !strings.Contains(err.Error(), "b.yaml: default_action: already set in") {
		t.Fatalf("err = %v", err)
	}
}
