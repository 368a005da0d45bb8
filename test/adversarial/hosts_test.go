package adversarial_test

import (
	"testing"

	"github.com/extauthz/extauthz/internal/check"
)

// TestWildcardHosts: *.admin.example.com stands for one or more non-empty
// labels before .admin.example.com, as Envoy's virtual-host wildcards do:
// a host with an empty label matches no rule (default deny), with or
// without a port.
func TestWildcardHosts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	at := func(host string) req {
		r := apiReq("")
		r.host, r.path = host, "/console"
		return r
	}
	var attacks []attack
	for _, host := range []string{
		".admin.example.com", ".admin.example.com:443", "..admin.example.com", "a..admin.example.com",
		".a.admin.example.com", "admin.example.com", "xadmin.example.com", "admin.example.com.evil",
	} {
		attacks = append(attacks, attack{name: "host " + host, req: at(host), want: forbidden(check.ReasonNoRule)})
	}
	h.run(t, attacks)
	// One or more labels match the rule, which then asks for its token.
	for _, host := range []string{"a.admin.example.com", "A.Admin.Example.com:8443", "b.a.admin.example.com", "a.admin.example.com."} {
		t.Run("match "+host, func(t *testing.T) {
			resp := h.check(t, at(host))
			if got := metadata(resp)["rule"]; got != "admin-wildcard" {
				t.Fatalf("rule = %q, want admin-wildcard", got)
			}
			assertDeny(t, resp, invalidToken(check.ReasonMissing))
		})
	}
}
