package policy

import "testing"

// TestSelectIPv6Hosts: match.hosts takes IPv6 literals in brackets, as
// :authority carries them; the request side (check's hostOnly) keeps the
// brackets and drops the port, so [::1]:8443 arrives as [::1]. A literal
// is matched in its canonical form, whichever way the policy spells it.
func TestSelectIPv6Hosts(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": `version: v1
rules:
  - name: loopback
    match: {hosts: ['[::1]']}
  - name: doc
    match: {hosts: ['[2001:DB8:0:0::1]', '[::ffff:192.0.2.1]']}
  - name: v4
    match: {hosts: [192.0.2.7]}
`})
	snap, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"[::1]":              "loopback",
		"[2001:db8::1]":      "doc",
		"[::ffff:192.0.2.1]": "doc",
		"192.0.2.7":          "v4",
		"::1":                "",
		"[::2]":              "",
		"[2001:db8::1]:443":  "",
	} {
		r, err := snap.Select("", &Request{Method: "GET", Host: host, Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if r != nil {
			got = r.Name
		}
		if got != want {
			t.Errorf("host %q: rule %q, want %q", host, got, want)
		}
	}
}
