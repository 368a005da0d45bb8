package main

import (
	"strings"
	"testing"
)

// TestCheckExplainMetadata: `check --policy --explain` traces each metadata
// member of the rule (a value, or why it is left unset) and the summary
// shows the members of the decision.
func TestCheckExplainMetadata(t *testing.T) {
	f := newCheckFixture(t)
	policy := strings.Replace(checkPolicy, `      x-tenant: claims.tenant
`, `      x-tenant: claims.tenant
    metadata:
      tenant: claims.tenant
      is_agent: 'claims.?client_type.orValue("") == "ai-agent"'
      scopes: scopes
      team: claims.team
`, 1)
	if policy == checkPolicy {
		t.Fatal("the admin-api rule of checkPolicy has changed; update this test")
	}
	p := f.write(t, "meta.yaml", strings.ReplaceAll(policy, "{{KEYS}}", f.keys))
	out := expectCheck(t, 0, "", "--policy", p, "--explain", "--url", "https://acme.admin.example.com/users", "--bearer", f.adminToken(t, "acme"))
	for _, want := range []string{
		"ok   metadata is_agent: claims.?client_type.orValue(\"\") == \"ai-agent\" = false\n",
		"ok   metadata scopes: scopes = [\"admin\"]\n",
		"ok   metadata team: claims.team: no value (policy: metadata team: no such key: team); the member is left unset\n",
		"ok   metadata tenant: claims.tenant = \"acme\"\n",
		"decision   allow\nrule       admin-api\nreason     allowed\nissuer     login\nclient_id  admin-console\nis_agent   false\nscopes     [\"admin\"]\ntenant     \"acme\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks\n%s\n---- output:\n%s", want, out)
		}
	}
}
