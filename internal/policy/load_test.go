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

// TestLoadErrors: each bad policy fails with exactly these errors, each
// placed at its line and column (CEL errors inside the expression where its
// YAML can be read back character for character) and field path, unknown
// names with the known ones closest to them, and with no false errors
// besides (an issuer that failed does not also make its rules name "no
// issuer").
func TestLoadErrors(t *testing.T) {
	const issuers = `
issuers:
  - {name: a, issuer: https://a.example, jwks_uri: https://a.example/jwks}
`
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"version", "version: v2\n", []string{`p.yaml:1:1: version: must be "v1", got "v2"`}},
		{"unknown field", "version: v1\nrealms: x\n", []string{`p.yaml:2:1: realms: unknown field; did you mean "realm"?`}},
		{"duplicate key", "version: v1\nrealm: a\nrealm: b\n", []string{"p.yaml:3:1: realm: set more than once"}},
		{"wrong type", "version: v1\nstrip_headers: x-a\n", []string{`p.yaml:2:16: strip_headers: expected a list, got the string "x-a"`}},
		{"number for string", "version: v1\nrealm: 12\n", []string{"p.yaml:2:8: realm: expected a string, got int 12 (quote it)"}},
		{"two key sources", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, jwks_file: f}\n", []string{"p.yaml:3:49: issuers[0].jwks_file: only one of jwks_uri, jwks, jwks_file, pem_file, hmac_secret_file, discovery, spiffe may be set (jwks_uri is set too)"}},
		{"no key source", "version: v1\nissuers:\n  - {name: a, issuer: x}\n", []string{"p.yaml:3:5: issuers[0]: a key source is required: one of jwks_uri, jwks, jwks_file, pem_file, hmac_secret_file, discovery, spiffe"}},
		{"no issuer", "version: v1\nissuers:\n  - {name: a, jwks_uri: https://a/j}\n", []string{"p.yaml:3:5: issuers[0].issuer: required (only JWT-SVID issuers may omit it)"}},
		{"alg none", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, algorithms: [none]}\n", []string{`p.yaml:3:62: issuers[0].algorithms[0]: "none" is never accepted`}},
		{"hmac alg on public key", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, algorithms: [HS256]}\n", []string{`p.yaml:3:62: issuers[0].algorithms[0]: "HS256" is not a supported public-key algorithm (one of ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA, Ed25519)`}},
		{"bad jwks_uri", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: /jwks}\n", []string{`p.yaml:3:26: issuers[0].jwks_uri: must be an absolute https:// URL, got "/jwks"`}},
		{"spiffe without bundle", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org}\n", []string{"p.yaml:4:5: issuers[0].spiffe: a bundle source is required: one of workload_api_socket, bundle_endpoint, bundle_file"}},
		{"spiffe bad socket", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org, workload_api_socket: /run/agent.sock}\n", []string{`p.yaml:4:41: issuers[0].spiffe.workload_api_socket: must be unix:///path or tcp://host:port, got "/run/agent.sock"`}},
		{"spiffe bad trust domain", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: 'spiffe://example.org', bundle_file: b.json}\n", []string{`p.yaml:4:14: issuers[0].spiffe.trust_domain: required: a trust domain name such as example.org, got "spiffe://example.org"`}},
		{"spiffe http endpoint", "version: v1\nissuers:\n  - name: mesh\n    spiffe: {trust_domain: example.org, bundle_endpoint: {url: 'http://b.example.org'}}\n", []string{`p.yaml:4:59: issuers[0].spiffe.bundle_endpoint.url: must be an https:// URL, got "http://b.example.org"`}},
		{"bad trust domain", "version: v1\nissuers:\n  - {name: a, jwks_uri: https://a/j, spiffe_trust_domain: 'Bad Domain'}\n", []string{`p.yaml:3:38: issuers[0].spiffe_trust_domain: not a valid trust domain name: "Bad Domain"`}},
		{"duplicate issuer", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j}\n  - {name: a, issuer: y, jwks_uri: https://a/j}\n", []string{`p.yaml:4:6: issuers[1].name: issuer "a" is defined more than once`}},
		{"unknown issuer ref", "version: v1\nrules:\n  - {name: r, bearer: {issuers: [nope], audiences: [x]}}\n", []string{`p.yaml:3:34: rules[0].bearer.issuers[0]: no issuer named "nope"`}},
		{"no audiences", "version: v1" + issuers + "rules:\n  - {name: r, client_assertion: {issuers: [a]}}\n", []string{"p.yaml:5:15: rules[0].client_assertion.audiences: at least one audience is required"}},
		{"cel undeclared", "version: v1\nrules:\n  - name: r\n    headers:\n      x-is-agent: 'clams.x'\n", []string{`p.yaml:5:20: rules[0].headers["x-is-agent"]: undeclared reference to 'clams'`}},
		{"cel not bool", "version: v1\nrules:\n  - name: r\n    require: ['client_id']\n", []string{"p.yaml:4:15: rules[0].require[0]: must be a bool expression, is string"}},
		{"cel runaway", "version: v1\nrules:\n  - name: r\n    require: ['claims.l.all(a, claims.l.all(b, claims.l.all(c, claims.l.all(d, true))))']\n", []string{"p.yaml:4:15: rules[0].require[0]: too expensive: estimated cost up to unbounded exceeds 10000000"}},
		{"bad header name", "version: v1\nrules:\n  - name: r\n    headers: {'x client': client_id}\n", []string{`p.yaml:4:15: rules[0].headers["x client"]: not a valid header name: "x client"`}},
		{"too many spellings", "version: v1\nstrip_headers: [a-b-c-d-e-f-g-h-i-j]\n", []string{`p.yaml:2:17: strip_headers[0]: header "a-b-c-d-e-f-g-h-i-j" has more than 8 - or _ separators; each spelling must be stripped, so use a shorter name`}},
		{"reserved header", "version: v1\nstrip_headers: [Host]\n", []string{`p.yaml:2:17: strip_headers[0]: "host" is reserved and may not be managed by a policy`}},
		{"host with port", "version: v1\nrules:\n  - {name: r, match: {hosts: ['a.example:443']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: hosts have no port (a request's port is ignored): write "a.example"`}},
		{"bad path", "version: v1\nrules:\n  - {name: r, match: {paths: [reports]}}\n", []string{`p.yaml:3:31: rules[0].match.paths[0]: must start with / and have no query string, got "reports"`}},
		{"lower method", "version: v1\nrules:\n  - {name: r, match: {methods: [get]}}\n", []string{`p.yaml:3:33: rules[0].match.methods[0]: must be an upper-case HTTP method, got "get"`}},
		{"bad mode", "version: v1\nrules:\n  - {name: r, mode: dry-run}\n", []string{`p.yaml:3:15: rules[0].mode: must be "enforce" or "audit", got "dry-run"`}},
		{"bad default", "version: v1\ndefault_action: permit\n", []string{`p.yaml:2:1: default_action: must be "deny" or "allow", got "permit"`}},
		{"duplicate rule", "version: v1\nrules:\n  - {name: r}\n  - {name: r}\n", []string{`p.yaml:4:6: rules[1].name: rule "r" is defined more than once`}},
		{"negative duration", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j, clock_skew: -1s}\n", []string{`p.yaml:3:61: issuers[0].clock_skew: expected a non-negative duration such as "30s", got "-1s"`}},
		{"two documents", "version: v1\n---\nversion: v1\n", []string{"p.yaml:2:1: holds more than one YAML document; use one file per document"}},
		{"not yaml", "version: [v1\n", []string{"p.yaml:1: not valid YAML: did not find expected ',' or ']'"}},
		{"dpop mode", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: require}}}\n", []string{`p.yaml:5:61: rules[0].bearer.dpop.mode: must be "off", "optional" or "required", got "require"`}},
		{"dpop symmetric alg", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [ES256, HS256]}}}\n", []string{`p.yaml:5:97: rules[0].bearer.dpop.algorithms[1]: "HS256" is symmetric; a DPoP proof is signed with the client's private key and verified with the public key it carries (one of ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA)`}},
		{"dpop alg none", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [none]}}}\n", []string{`p.yaml:5:90: rules[0].bearer.dpop.algorithms[0]: "none" is never accepted`}},
		{"dpop unknown alg", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, algorithms: [ES256K]}}}\n", []string{`p.yaml:5:90: rules[0].bearer.dpop.algorithms[0]: "ES256K" is not a supported proof algorithm (one of ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA)`}},
		{"dpop max_age", "version: v1" + issuers + "rules:\n  - {name: r, client_assertion: {issuers: [a], audiences: [x], dpop: {mode: optional, max_age: 0s}}}\n", []string{"p.yaml:5:87: rules[0].client_assertion.dpop.max_age: must be positive"}},
		{"dpop settings while off", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {nonce: true}}}\n", []string{"p.yaml:5:54: rules[0].bearer.dpop.mode: is off, so the other dpop settings do nothing; set mode to optional or required, or remove them"}},
		{"dpop unknown field", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], dpop: {mode: required, nonces: true}}}\n", []string{`p.yaml:5:77: rules[0].bearer.dpop.nonces: unknown field; did you mean "nonce"?`}},
		{"peer_svid without SVID issuers", "version: v1" + issuers + "rules:\n  - {name: r, bearer: {issuers: [a], audiences: [x], peer_svid: true}}\n", []string{"p.yaml:5:54: rules[0].bearer.peer_svid: binds a JWT-SVID to the peer's X.509-SVID, but none of the rule's issuers issues JWT-SVIDs (a spiffe source or spiffe_trust_domain)"}},
		{"ambiguous iss", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: https://a/j}\n  - {name: b, issuer: x, jwks_uri: https://b/j}\nrules:\n  - {name: r, bearer: {issuers: [a, b], audiences: [x]}}\n", []string{`p.yaml:6:37: rules[0].bearer.issuers[1]: issuers "a" and "b" both have issuer "x"; a token could not tell them apart`}},
		{"did you mean: a close name", "version: v1" + issuers + "rules:\n  - name: r\n    bearer:\n      issuers: [a]\n      audience: [x]\n", []string{`p.yaml:8:7: rules[0].bearer.audience: unknown field; did you mean "audiences"?`}},
		{"did you mean: camelCase", "version: v1\nissuers:\n  - {name: a, issuer: x, jwksUri: https://a/j}\n", []string{`p.yaml:3:26: issuers[0].jwksUri: unknown field; did you mean "jwks_uri"?`}},
		{"did you mean: a field one level down", "version: v1\nrules:\n  - name: r\n    audiences: [x]\n", []string{`p.yaml:4:5: rules[0].audiences: unknown field; did you mean "client_assertion.audiences", "bearer.audiences", "internal_token.audience" or "authorization_grant.audiences"?`}},
		{"did you mean: hosts in match", "version: v1\nrules:\n  - name: r\n    hosts: [x]\n", []string{`p.yaml:4:5: rules[0].hosts: unknown field; did you mean "match.hosts"?`}},
		{"did you mean: nothing close", "version: v1\ncolour: blue\n", []string{"p.yaml:2:1: colour: unknown field"}},
		{"did you mean: in a flow mapping", "version: v1\nrules:\n  - name: r\n    match: {path: [/a]}\n", []string{`p.yaml:4:13: rules[0].match.path: unknown field; did you mean "paths"?`}},
		{"did you mean: an issuer name", "version: v1\nissuers:\n  - {name: login, issuer: x, jwks_uri: https://a/j}\nrules:\n  - {name: r, bearer: {issuers: [logn], audiences: [x]}}\n", []string{`p.yaml:5:34: rules[0].bearer.issuers[0]: no issuer named "logn"; did you mean "login"?`}},
		{"failed issuers do not make false errors", "version: v1\nissuers:\n  - {name: a, issuer: x, jwks_uri: /jwks}\n  - name: mesh\n    spiffe: {trust_domain: example.org}\nrules:\n  - {name: r, bearer: {issuers: [a], audiences: [x]}}\n  - {name: s, bearer: {issuers: [mesh], audiences: [x], peer_svid: true}}\n  - {name: t, client_assertion: {issuers: [a, nobody], audiences: [x]}}\n", []string{`p.yaml:3:26: issuers[0].jwks_uri: must be an absolute https:// URL, got "/jwks"`, "p.yaml:5:5: issuers[1].spiffe: a bundle source is required: one of workload_api_socket, bundle_endpoint, bundle_file", `p.yaml:9:47: rules[2].client_assertion.issuers[1]: no issuer named "nobody"`}},
		{"cel position: double-quoted with escapes", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: \"\\\"\\u00e9\\\" + clams\"\n", []string{`p.yaml:5:26: rules[0].headers["x-a"]: undeclared reference to 'clams'`}},
		{"cel position: plain scalar", "version: v1\nrules:\n  - name: r\n    require: [client_id == clams]\n", []string{"p.yaml:4:28: rules[0].require[0]: undeclared reference to 'clams'"}},
		{"cel position: literal block", "version: v1\nrules:\n  - name: r\n    require:\n      - |\n        client_id == \"a\" &&\n          clams == 1\n", []string{"p.yaml:7:11: rules[0].require[0]: undeclared reference to 'clams'"}},
		{"cel position: folded block, in the expression", "version: v1\nrules:\n  - name: r\n    require:\n      - >\n        client_id == \"a\" &&\n          clams == 1\n", []string{"p.yaml:5:9: rules[0].require[0]: undeclared reference to 'clams' (at line 2, column 3 of the expression)"}},
		{"cel position: two errors", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: 'clams + bar'\n", []string{`p.yaml:5:13: rules[0].headers["x-a"]: undeclared reference to 'clams'`, `p.yaml:5:21: rules[0].headers["x-a"]: undeclared reference to 'bar'`}},
		{"cel position: end of input", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: 'claims.x =='\n", []string{`p.yaml:5:24: rules[0].headers["x-a"]: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`}},
		{"cel position: multi-line plain scalar, in the expression", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: claims.x +\n        clams\n", []string{`p.yaml:5:7: rules[0].headers["x-a"]: undeclared reference to 'clams' (at column 12 of the expression)`}},
		{"cel position: single-quoted with quotes", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: 'claims[''a''] + clams'\n", []string{`p.yaml:5:29: rules[0].headers["x-a"]: undeclared reference to 'clams'`}},
		{"cel position: anchor and alias", "version: v1\nrules:\n  - name: r\n    headers:\n      x-a: &e 'clams'\n      x-b: *e\n", []string{`p.yaml:5:16: rules[0].headers["x-a"]: undeclared reference to 'clams'`, `p.yaml:5:16: rules[0].headers["x-b"]: undeclared reference to 'clams'`}},
		{"ipv6 port", "version: v1\nrules:\n  - {name: r, match: {hosts: ['[::1]:8443']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: hosts have no port (a request's port is ignored): write "[::1]"`}},
		{"ipv6 bare", "version: v1\nrules:\n  - {name: r, match: {hosts: ['2001:DB8::1']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: an IPv6 address is written in brackets, as in :authority: "[2001:db8::1]"`}},
		{"ipv6 v4", "version: v1\nrules:\n  - {name: r, match: {hosts: ['[192.0.2.1]']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: not an IPv6 address in brackets: "[192.0.2.1]"`}},
		{"ipv6 zone", "version: v1\nrules:\n  - {name: r, match: {hosts: ['[fe80::1%eth0]']}}\n", []string{"p.yaml:3:31: rules[0].match.hosts[0]: an IPv6 zone (%eth0) is not part of a host; leave it out"}},
		{"ipv6 open", "version: v1\nrules:\n  - {name: r, match: {hosts: ['[::1']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: an IPv6 address in brackets lacks its closing "]": "[::1"`}},
		{"ipv6 junk", "version: v1\nrules:\n  - {name: r, match: {hosts: ['[::1]x']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: unexpected "x" after the IPv6 address: "[::1]x"`}},
		{"ipv6 wild", "version: v1\nrules:\n  - {name: r, match: {hosts: ['*.[::1]']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: must be a host name, optionally starting with "*.", or an IPv6 address in brackets, with no port; got "*.[::1]"`}},
		{"bad host", "version: v1\nrules:\n  - {name: r, match: {hosts: ['a b']}}\n", []string{`p.yaml:3:31: rules[0].match.hosts[0]: must be a host name, optionally starting with "*.", or an IPv6 address in brackets, with no port; got "a b"`}},
		{"yaml error line", "version: v1\nrules:\n\t- name: r\n", []string{"p.yaml:3: not valid YAML: found character that cannot start any token"}},
		{"missing version", "realm: x\n", []string{`p.yaml:1:1: version: must be "v1", got ""`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := loadErrors(t, tc.yaml)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// loadErrors loads body as p.yaml and returns its errors as validate
// prints them, the file named relative to its directory.
func loadErrors(t *testing.T, body string) []string {
	t.Helper()
	dir := writePolicy(t, map[string]string{"p.yaml": body})
	_, err := Load([]string{filepath.Join(dir, "p.yaml")}, Options{Keys: offlinePlane(t)})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LoadError", err)
	}
	got := make([]string, len(le.Errors))
	for i, fe := range le.Errors {
		got[i] = strings.TrimPrefix(fe.Detail(), dir+string(filepath.Separator))
		if want := "policy: " + fe.Detail(); fe.Error() != want {
			t.Errorf("Error() = %q, want %q", fe.Error(), want)
		}
	}
	return got
}

func TestLoadSettingsInOneFileOnly(t *testing.T) {
	dir := writePolicy(t, map[string]string{
		"a.yaml": "version: v1\nrealm: one\ndefault_action: deny\n",
		"b.yaml": "version: v1\nrealm: two\ndefault_action: allow\n",
	})
	_, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err == nil || !strings.Contains(err.Error(), "b.yaml:2:1: realm: already set in") || !strings.Contains(err.Error(), "b.yaml:3:1: default_action: already set in") {
		t.Fatalf("err = %v", err)
	}
}
