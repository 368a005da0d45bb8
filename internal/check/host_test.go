package check

import "testing"

// TestHostOnly: the host a rule's match.hosts sees: lower case, no port,
// no trailing dot, and an IPv6 literal in its canonical form.
func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"API.Example.com:8443": "api.example.com",
		"api.example.com.":     "api.example.com",
		"[::1]:8443":           "[::1]",
		"[0:0::1]:8443":        "[::1]",
		"[0000:0000:0000:0000:0000:0000:0000:0001]": "[::1]",
		"[2001:DB8::1]":      "[2001:db8::1]",
		"[::ffff:192.0.2.1]": "[::ffff:192.0.2.1]",
		"[not-an-ip]:1":      "[not-an-ip]",
		"":                   "",
	} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}
