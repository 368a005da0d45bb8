package policy

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"audience", "audiences", 1},
		{"realms", "realm", 1},
		{"jwks_url", "jwks_uri", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"same", "same", 0},
	} {
		if got := editDistance(tc.a, tc.b, 100); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.a, tc.b, 1); tc.want >= 1 && got < 1 {
			t.Errorf("editDistance(%q, %q, stop 1) = %d, want >= 1", tc.a, tc.b, got)
		}
	}
}
