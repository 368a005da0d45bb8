package validate

import (
	"strings"
	"testing"
)

const (
	rateLimitBootstrap = "envoy/ratelimit/envoy.yaml"
	rateLimitConfig    = "envoy/ratelimit/config.yaml"
	// rateLimitPolicy is the policy envoy/ratelimit runs with.
	rateLimitPolicy = "examples/policies"
)

// TestRateLimitExample validates the rate-limit example offline: the
// bootstrap as every bootstrap is (strict decoding, the ext_authz
// invariants) against the example policy, the service's config strictly,
// and the descriptors against both.
func TestRateLimitExample(t *testing.T) {
	if err := rateLimitSetup(t, string(readRepo(t, rateLimitBootstrap)), string(readRepo(t, rateLimitConfig))); err != nil {
		t.Fatal(err)
	}
}

func rateLimitSetup(t *testing.T, bootstrap, config string) error {
	t.Helper()
	pd, err := ReadPolicyDir(repoPath(rateLimitPolicy))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ValidateEnvoy([]byte(bootstrap))
	if err != nil {
		return err
	}
	if err := checkEnvoySetup(rep, pd); err != nil {
		return err
	}
	rl, err := ReadRateLimitConfig([]byte(config))
	if err != nil {
		return err
	}
	return CheckRateLimits(rep, pd, rl)
}

// TestRateLimitBrokenCopies: each copy breaks one thing the checks are for.
func TestRateLimitBrokenCopies(t *testing.T) {
	bs, cfg := string(readRepo(t, rateLimitBootstrap)), string(readRepo(t, rateLimitConfig))
	for _, tc := range []struct {
		name, from, to string
		config         bool
		want           string
	}{
		{"another namespace", "key: envoy.filters.http.ext_authz\n                                        path: [{ key: tenant }]", "key: envoy.filters.http.jwt_authn\n                                        path: [{ key: tenant }]", false, `metadata_key.key "envoy.filters.http.jwt_authn"`},
		{"a member no rule sets", "path: [{ key: tenant }]", "path: [{ key: team }]", false, `member "team" is neither set by extauthz nor by rule "agent-api"`},
		{"route metadata", "source: DYNAMIC\n                                  - metadata:\n                                      descriptor_key: is_agent", "source: ROUTE_ENTRY\n                                  - metadata:\n                                      descriptor_key: is_agent", false, "source must be DYNAMIC"},
		{"another domain", "domain: extauthz-agents", "domain: agents", true, `rate limit domain "extauthz-agents", the service's config has "agents"`},
		{"a descriptor without a limit", "  - key: tenant\n", "  - key: tenants\n", true, `descriptor ["tenant" "is_agent"] has no limit`},
		{"a misspelt field", "requests_per_unit: 60", "request_per_unit: 60", true, "unknown field"},
		{"no rate", "requests_per_unit: 600", "requests_per_unit: 0", true, "requests_per_unit > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c := bs, cfg
			src := &b
			if tc.config {
				src = &c
			}
			if !strings.Contains(*src, tc.from) {
				t.Fatalf("%q is not in the file any more; update the test", tc.from)
			}
			*src = strings.Replace(*src, tc.from, tc.to, 1)
			err := rateLimitSetup(t, b, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
