package policy

import (
	"context"
	"testing"
)

func TestMatchSPIFFEPattern(t *testing.T) {
	cases := []struct {
		id, pattern string
		want        bool
	}{
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/sa/api", true},
		{"spiffe://example.org/ns/prod/sa", "spiffe://example.org/ns/prod/*", true},
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/prod/**", true},
		{"spiffe://example.org/ns/prod", "spiffe://example.org/ns/prod/**", false},
		{"spiffe://example.org/ns/prod-evil/x", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://example.org/ns/prod-evil/x", "spiffe://example.org/ns/prod/**", false},
		{"spiffe://example.org/ns/prod/sa/api", "spiffe://example.org/ns/*/sa/api", true},
		{"spiffe://example.org.evil/ns/prod/x", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://other.org/ns/prod/x", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://example.org", "spiffe://example.org", true},
		{"spiffe://example.org/x", "spiffe://example.org", false},
		{"spiffe://example.org/ns/prod/x?y", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://example.org/ns/prod//x", "spiffe://example.org/ns/prod/**", false},
		{"spiffe://example.org/ns/prod/%2e%2e", "spiffe://example.org/ns/prod/*", false},
		{"spiffe://EXAMPLE.org/ns/prod/x", "spiffe://example.org/ns/prod/*", false},
		{"not a spiffe id", "spiffe://example.org/**", false},
	}
	for _, tc := range cases {
		got, err := MatchSPIFFEPattern(tc.id, tc.pattern)
		if err != nil || got != tc.want {
			t.Errorf("MatchSPIFFEPattern(%q, %q) = %v, %v; want %v", tc.id, tc.pattern, got, err, tc.want)
		}
	}
	for _, bad := range []string{"example.org/ns/*", "spiffe://", "spiffe://example.org/**/x", "spiffe://example.org/a//b", "spiffe://Bad Domain/x", "spiffe://example.org/./x"} {
		if _, err := MatchSPIFFEPattern("spiffe://example.org/a", bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestMatchesPatternInCEL(t *testing.T) {
	e := compileTestExpr(t, `spiffe_id.matches_pattern("spiffe://example.org/ns/prod/**")`)
	for id, want := range map[string]string{
		"spiffe://example.org/ns/prod/sa/api": "true",
		"spiffe://example.org/ns/prod-evil/x": "false",
		"":                                    "false",
	} {
		if got, _ := e.Value(context.Background(), &Vars{SpiffeID: id}); got != want {
			t.Errorf("%q: %s, want %s", id, got, want)
		}
	}
	bad := compileTestExpr(t, `spiffe_id.matches_pattern("example.org/*")`)
	if ok, err := bad.True(context.Background(), &Vars{SpiffeID: "spiffe://example.org/x"}); ok || err == nil {
		t.Errorf("bad pattern: %v, %v; want an error", ok, err)
	}
}
