package policy

import (
	"strings"
	"testing"
)

// TestUnbuiltFieldsRefused: a schema field whose enforcement has not landed
// is a load error naming it, never a silently skipped check.
func TestUnbuiltFieldsRefused(t *testing.T) {
	for field, yaml := range map[string]string{
		"issuers[0].introspection": `
issuers:
  - name: opaque
    issuer: https://as.example.com
    jwks_uri: https://as.example.com/jwks
    introspection: {endpoint: https://as.example.com/introspect}
`,
		"rules[0].internal_token": `
rules:
  - name: r
    internal_token: {audience: upstream}
`,
		"rules[0].protected_resource": `
rules:
  - name: r
    protected_resource: {resource: https://api.example.com/mcp}
`,
	} {
		t.Run(field, func(t *testing.T) {
			errs := loadErrors(t, "version: v1\n"+yaml)
			if !strings.Contains(strings.Join(errs, "\n"), field+": "+unbuilt) {
				t.Fatalf("load errors = %q, want one naming %s", errs, field)
			}
		})
	}
}
