package policy

import (
	"errors"
	"testing"
)

func TestSelect(t *testing.T) {
	dir := writePolicy(t, map[string]string{"p.yaml": `version: v1
rules:
  - name: exact-host
    match: {hosts: [Login.Example.com], paths: [/token], methods: [POST]}
  - name: wildcard
    match: {hosts: ['*.example.com'], path_prefixes: [/api/]}
  - name: both-paths
    match: {paths: [/x/y], path_prefixes: [/x/]}
  - name: catch-all
    match: {methods: [DELETE]}
`})
	snap, err := Load([]string{dir}, Options{Keys: offlinePlane(t)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, selector, method, host, path string
		want                               string
		wantErr                            error
	}{
		{"exact host, case-insensitive", "", "POST", "login.example.com", "/token", "exact-host", nil},
		{"exact path only", "", "POST", "login.example.com", "/token/", "", nil},
		{"method must hold", "", "GET", "login.example.com", "/token", "", nil},
		{"wildcard host", "", "GET", "a.b.example.com", "/api/v1", "wildcard", nil},
		{"wildcard excludes apex", "", "GET", "example.com", "/api/v1", "", nil},
		{"wildcard needs a dot", "", "GET", "badexample.com", "/api/v1", "", nil},
		{"wildcard label may not be empty", "", "GET", ".example.com", "/api/v1", "", nil},
		{"wildcard labels may not be empty", "", "GET", "a..example.com", "/api/v1", "", nil},
		{"wildcard label may not start empty", "", "GET", ".a.example.com", "/api/v1", "", nil},
		{"one label", "", "GET", "a.example.com", "/api/v1", "wildcard", nil},
		{"prefix is not a segment match", "", "GET", "a.example.com", "/api", "", nil},
		{"paths and prefixes both hold", "", "GET", "h", "/x/y", "both-paths", nil},
		{"prefix alone is not enough", "", "GET", "h", "/x/z", "", nil},
		{"encoded path not decoded", "", "GET", "a.example.com", "/%61pi/v1", "", nil},
		{"first match wins", "", "DELETE", "a.example.com", "/api/v1", "wildcard", nil},
		{"selector wins over match", "catch-all", "GET", "login.example.com", "/token", "catch-all", nil},
		{"unknown selector", "nope", "DELETE", "h", "/", "", ErrUnknownRule},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := snap.Select(tc.selector, &Request{Method: tc.method, Host: tc.host, Path: tc.path})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tc.want {
				t.Fatalf("rule = %q, want %q", got, tc.want)
			}
		})
	}
}
