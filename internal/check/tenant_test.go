package check_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
)

// tenantPolicy trusts one templated issuer, Azure AD's shape, over the
// login key set; {tenant} is bound to the tid claim and allow-listed.
const tenantPolicy = `version: v1
issuers:
  - name: tenant
    issuer: https://login.microsoftonline.com/{tenant}/v2.0
    jwks_uri: {{JWKS}}/login
    issuer_variables:
      tenant:
        claim: tid
        allow: [contoso, fabrikam]
rules:
  - name: reports-api
    match:
      path_prefixes: [/reports/]
    bearer:
      issuers: [tenant]
      audiences: [api.example.com]
    headers:
      x-tenant: issuer_vars.tenant
default_action: deny
`

func tenantClaims(tenant string) claims {
	return loginClaims().set("iss", "https://login.microsoftonline.com/"+tenant+"/v2.0", "tid", tenant)
}

// TestTemplatedIssuer runs tokens of one templated issuer through a real
// server: only allow-listed tenants whose tid matches the iss get in, and a
// refused tenant costs no key fetch.
func TestTemplatedIssuer(t *testing.T) {
	h := newHarness(t, tenantPolicy)
	tenantAllowed := want{
		code: codes.OK, headers: map[string]string{"x-tenant": "contoso"},
		remove: policy.AllSpellings("x-tenant")[1:], rule: "reports-api", reason: "allowed",
	}.by("tenant", "reporting-app", "")
	get := func(t *testing.T, c claims) httpReq {
		return reportsReq("GET", "authorization", "Bearer "+signLogin(t, c))
	}
	t.Run("allowed tenant", func(t *testing.T) {
		resp := h.check(t, get(t, tenantClaims("contoso")))
		assertResponse(t, resp, tenantAllowed)
		// Again, from the token cache: the tenant checks still run.
		tok := signLogin(t, tenantClaims("contoso"))
		r := reportsReq("GET", "authorization", "Bearer "+tok)
		assertResponse(t, h.check(t, r), tenantAllowed)
		assertResponse(t, h.check(t, r), tenantAllowed)
	})
	t.Run("tenant outside allow list", func(t *testing.T) {
		before := h.jwks.Count("/login")
		assertResponse(t, h.check(t, get(t, tenantClaims("northwind"))), invalidToken("issuer_tenant").by("tenant", "", ""))
		if n := h.jwks.Count("/login"); n != before {
			t.Errorf("JWKS fetched %d times for a refused tenant", n-before)
		}
	})
	t.Run("pattern mismatch", func(t *testing.T) {
		long := "a"
		for len(long) <= 64 {
			long += long
		}
		assertResponse(t, h.check(t, get(t, tenantClaims(long))), invalidToken("issuer_tenant").by("tenant", "", ""))
	})
	t.Run("claim binding", func(t *testing.T) {
		c := tenantClaims("contoso").set("tid", "fabrikam")
		assertResponse(t, h.check(t, get(t, c)), invalidToken("issuer_tenant").by("tenant", "", ""))
		c = tenantClaims("contoso").set("tid", nil)
		assertResponse(t, h.check(t, get(t, c)), invalidToken("issuer_tenant").by("tenant", "", ""))
	})
	t.Run("injection", func(t *testing.T) {
		for _, v := range []string{"evil.com/x", "a/../b", "%2F", "@evil", "contoso/x", "contoso?", "contoso#", "contoso.evil"} {
			c := tenantClaims(v)
			assertResponse(t, h.check(t, get(t, c)), invalidToken("issuer_tenant").by("tenant", "", ""))
		}
		// Not the template's shape at all: an unknown issuer.
		c := tenantClaims("contoso").set("iss", "https://evil.com/contoso/v2.0")
		assertResponse(t, h.check(t, get(t, c)), invalidToken("issuer_unknown"))
	})
	t.Run("expired still checked", func(t *testing.T) {
		c := tenantClaims("fabrikam").set("exp", unix(-time.Hour))
		assertResponse(t, h.check(t, get(t, c)), invalidToken("token_expired").by("tenant", "", ""))
	})
}

// TestTemplatedIssuerReload: a token verified and cached while its tenant
// was allowed is denied once a reload drops the tenant from allow.
func TestTemplatedIssuerReload(t *testing.T) {
	var store *policy.Store
	h := newHarness(t, tenantPolicy, func(c *check.Config) { store = c.Policy })
	tok := signLogin(t, tenantClaims("fabrikam"))
	r := reportsReq("GET", "authorization", "Bearer "+tok)
	if code := h.check(t, r).GetStatus().GetCode(); code != int32(codes.OK) {
		t.Fatalf("before reload: status %d, want OK", code)
	}

	plane, err := keys.NewPlane(keys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close() })
	file := filepath.Join(t.TempDir(), "policy.yaml")
	body := strings.ReplaceAll(tenantPolicy, "{{JWKS}}", h.jwks.URL)
	body = strings.Replace(body, "allow: [contoso, fabrikam]", "allow: [contoso]", 1)
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Load([]string{file}, policy.Options{Keys: plane})
	if err != nil {
		t.Fatal(err)
	}
	store.Swap(snap)
	assertResponse(t, h.check(t, r), invalidToken("issuer_tenant").by("tenant", "", ""))
}
