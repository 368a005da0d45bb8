package policy

import (
	"strings"
	"testing"
)

// grantIssuers is an issuer section the rules of these tests can name.
const grantIssuers = `version: v1
issuers:
  - name: as
    issuer: https://as.example.com
    jwks_uri: https://as.example.com/jwks
`

// TestMetadataAndGrantLoadErrors: each mistake in metadata, form, grant
// and authorization_grant is a load error at its field.
func TestMetadataAndGrantLoadErrors(t *testing.T) {
	for _, tt := range []struct {
		name, rules string
		want        []string
	}{
		{"reserved member", `
    metadata: {client_id: '"x"'}`, []string{`rules[0].metadata["client_id"]: "client_id" is a member extauthz sets itself and may not be overridden`}},
		{"reserved decision", `
    metadata: {decision: '"allow"'}`, []string{`rules[0].metadata["decision"]: "decision" is a member extauthz sets itself`}},
		{"upper-case name", `
    metadata: {Tenant: '"x"'}`, []string{`rules[0].metadata["Tenant"]: not a valid metadata member name`}},
		{"name with a dot", `
    metadata: {"a.b": '"x"'}`, []string{`rules[0].metadata["a.b"]: not a valid metadata member name`}},
		{"name starting with a digit", `
    metadata: {"1a": '"x"'}`, []string{`rules[0].metadata["1a"]: not a valid metadata member name`}},
		{"name too long", `
    metadata: {` + strings.Repeat("a", 65) + `: '"x"'}`, []string{`not a valid metadata member name`}},
		{"CEL error", `
    metadata: {tenant: 'claims.tenant +'}`, []string{`rules[0].metadata["tenant"]`}},
		{"undeclared variable", `
    metadata: {tenant: 'tenant'}`, []string{`undeclared reference to 'tenant'`}},
		{"metadata over the cost limit", `
    metadata: {n: 'claims.l.all(a, claims.l.all(b, claims.l.all(c, claims.l.all(d, true)))) ? 1 : 0'}`, []string{`rules[0].metadata["n"]: too expensive: estimated cost up to unbounded exceeds 10000000`}},
		{"form over the cost limit", `
    client_assertion: {issuers: [as], audiences: [t]}
    require: ['form.all(a, form.all(b, form.all(c, form.all(d, true))))']`, []string{`rules[0].require[0]: too expensive`}},
		{"form outside a token endpoint", `
    bearer: {issuers: [as], audiences: [api]}
    headers: {x-scope: form.scope}`, []string{`rules[0].headers["x-scope"]: reads form, which only token-endpoint rules (client_assertion or authorization_grant) have`}},
		{"grant without authorization_grant", `
    client_assertion: {issuers: [as], audiences: [t]}
    metadata: {user: grant.sub}`, []string{`rules[0].metadata["user"]: reads grant, which only rules with authorization_grant have`}},
		{"grant without issuers", `
    authorization_grant: {audiences: [t]}`, []string{`rules[0].authorization_grant.issuers: at least one issuer is required`}},
		{"grant of an unknown issuer", `
    authorization_grant: {issuers: [nope], audiences: [t]}`, []string{`rules[0].authorization_grant.issuers[0]: no issuer named "nope"`}},
		{"grant with dpop", `
    authorization_grant: {issuers: [as], audiences: [t], dpop: {mode: required}}`, []string{`rules[0].authorization_grant.dpop: a DPoP proof binds the client`}},
		{"grant with strict_typing", `
    authorization_grant: {issuers: [as], audiences: [t], strict_typing: true}`, []string{`rules[0].authorization_grant.strict_typing: no explicit JWT type`}},
		{"grant beside bearer", `
    bearer: {issuers: [as], audiences: [api]}
    authorization_grant: {issuers: [as], audiences: [t]}`, []string{`rules[0].authorization_grant: a token endpoint rule; it cannot also take bearer tokens`}},
		{"grant with a non-positive lifetime", `
    authorization_grant: {issuers: [as], audiences: [t], max_lifetime: 0s}`, []string{`rules[0].authorization_grant.max_lifetime: must be positive`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := strings.Join(loadErrors(t, grantIssuers+"rules:\n  - name: r"+tt.rules+"\n"), "\n")
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("load errors:\n%s\nwant one containing %q", errs, w)
				}
			}
		})
	}
}

// TestMetadataAndGrantLoad: a good rule compiles its members in name
// order and its grant.
func TestMetadataAndGrantLoad(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": grantIssuers + `rules:
  - name: r
    client_assertion: {issuers: [as], audiences: [t]}
    authorization_grant: {issuers: [as], audiences: [t], max_lifetime: 300s, replay_protection: true}
    headers: {x-user-id: grant.sub, x-grant-type: form.grant_type}
    metadata: {user: grant.sub, is_agent: 'claims.?client_type.orValue("") == "ai-agent"', tenant: 'grant.claims.?tenant.orValue("")'}
`})
	snap, err := Load([]string{dir + "/p.yaml"}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := snap.Rules[0]
	var names []string
	for _, m := range r.Metadata {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "is_agent,tenant,user" {
		t.Errorf("metadata members = %q, want is_agent,tenant,user", names)
	}
	g := r.AuthorizationGrant
	if g == nil || g.MaxLifetime.String() != "5m0s" || !g.ReplayProtected(g.Issuers[0]) || g.Issuers[0].Name != "as" {
		t.Errorf("authorization_grant = %+v", g)
	}
}

// TestFormVar: secrets never reach CEL, in any spelling; the bounds drop
// long names and values, and too many parameters empty the variable.
func TestFormVar(t *testing.T) {
	got := FormVar(map[string]string{
		"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "scope": "a b", "client_id": "c",
		"token_type_hint": "refresh_token", "resource": "https://api",
		"client_secret": "s", "Client-Secret": "s", "CLIENT_SECRET": "s", "client.secret": "s",
		"client_assertion": "j", "client_assertion_type": "t", "assertion": "j", "password": "p", "PassWord": "p",
		"refresh_token": "r", "access_token": "a", "code": "c", "Code": "c", "code_verifier": "v", "subject_token": "t",
		"x-api-key": "k", "user_credential": "c", "Token_Type_Hint": "x",
		strings.Repeat("n", 65): "long name", "big": strings.Repeat("v", 1025),
	})
	want := map[string]string{
		"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "scope": "a b", "client_id": "c",
		"token_type_hint": "refresh_token", "resource": "https://api",
	}
	if len(got) != len(want) {
		t.Errorf("FormVar = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("form[%q] = %q, want %q", k, got[k], v)
		}
	}
	many := map[string]string{}
	for i := range MaxFormParams + 1 {
		many[strings.Repeat("p", i+1)] = "v"
	}
	if got := FormVar(many); len(got) != 0 {
		t.Errorf("FormVar of %d parameters has %d, want none", len(many), len(got))
	}
	delete(many, "p")
	if got := FormVar(many); len(got) != MaxFormParams {
		t.Errorf("FormVar of %d parameters has %d, want all", len(many), len(got))
	}
	if FormVar(nil) == nil {
		t.Error("FormVar(nil) is nil, want an empty map")
	}
}

// FuzzFormVar: whatever the names, no parameter whose folded name holds a
// secret word reaches CEL, and the bounds hold.
func FuzzFormVar(f *testing.F) {
	for _, s := range []string{"client_secret", "Client-Secret", "scope", "token_type_hint", "x[secret]", "pass.word", "assertion"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		got := FormVar(map[string]string{name: value, "grant_type": "x"})
		if len(got) > MaxFormParams {
			t.Fatalf("%d parameters", len(got))
		}
		v, ok := got[name]
		if !ok {
			return
		}
		folded := foldParam(name)
		for _, p := range formSecretParts {
			if strings.Contains(folded, p) && !formPublicNames[name] {
				t.Fatalf("secret-looking %q exposed", name)
			}
		}
		if len(name) > MaxFormName || len(v) > MaxFormValue || v != value {
			t.Fatalf("%q = %q exposed past the bounds", name, v)
		}
	})
}
