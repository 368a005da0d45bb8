package policy

import (
	"strings"
	"testing"
)

// TestUnbuiltFieldsRefused: a schema field whose enforcement has not landed
// is a load error naming it, never a silently skipped check.
func TestUnbuiltFieldsRefused(t *testing.T) {
	for field, yaml := range map[string]string{
		"rules[0].authorization_grant": `
rules:
  - name: r
    authorization_grant: {issuers: [x]}
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
