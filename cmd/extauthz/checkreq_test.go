package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCurlRequests: curl command lines become what curl would send.
func TestCurlRequests(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "body.txt")
	if err := os.WriteFile(data, []byte("a=1\r\n&b=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		curl              []string
		method, path      string
		body              string
		headers           map[string]string
		authority, scheme string
	}{
		{
			name: "get", curl: []string{"example.com/x?y=1"},
			method: "GET", path: "/x?y=1", authority: "example.com", scheme: "http",
		},
		{
			name: "clustered short options, Basic, Host", curl: []string{"-sSXPUT", "-uuser:pa ss", "-HHost: api.example.com", "https://10.0.0.1:8443"},
			method: "PUT", path: "/", authority: "api.example.com", scheme: "https",
			headers: map[string]string{"authorization": "Basic dXNlcjpwYSBzcw=="},
		},
		{
			name: "-d from a file, --data-urlencode forms", curl: []string{"--url", "https://e.example/t", "-d", "@" + data, "--data-urlencode", "c d", "--data-urlencode", "=e&f", "--data-urlencode", "g=h i"},
			method: "POST", path: "/t", body: "a=1&b=2&c%20d&e%26f&g=h%20i", authority: "e.example", scheme: "https",
			headers: map[string]string{"content-type": "application/x-www-form-urlencoded", "content-length": "27"},
		},
		{
			name: "-G puts the data in the query", curl: []string{"-G", "https://e.example/s?q=1", "-d", "r=2", "--data-raw", "@t"},
			method: "GET", path: "/s?q=1&r=2&@t", authority: "e.example", scheme: "https",
		},
		{
			name: "--data-binary keeps newlines, cookies, a user agent, an OAuth bearer", curl: []string{"--data-binary", "@" + data, "-b", "s=1", "-A", "ua/1", "--oauth2-bearer", "T", "--compressed", "https://e.example"},
			method: "POST", path: "/", body: "a=1\r\n&b=2\n", authority: "e.example", scheme: "https",
			headers: map[string]string{"cookie": "s=1", "user-agent": "ua/1", "authorization": "Bearer T"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseCurl(tt.curl)
			if err != nil {
				t.Fatal(err)
			}
			req, err := s.build()
			if err != nil {
				t.Fatal(err)
			}
			h := req.GetAttributes().GetRequest().GetHttp()
			if h.GetMethod() != tt.method || h.GetPath() != tt.path || h.GetBody() != tt.body || h.GetHost() != tt.authority || h.GetScheme() != tt.scheme {
				t.Errorf("got %s %s://%s%s body %q; want %s %s://%s%s body %q", h.GetMethod(), h.GetScheme(), h.GetHost(), h.GetPath(), h.GetBody(),
					tt.method, tt.scheme, tt.authority, tt.path, tt.body)
			}
			hs := h.GetHeaders()
			for k, v := range map[string]string{":method": tt.method, ":path": tt.path, ":authority": tt.authority, ":scheme": tt.scheme} {
				if hs[k] != v {
					t.Errorf("header %s = %q, want %q", k, hs[k], v)
				}
			}
			for k, v := range tt.headers {
				if hs[k] != v {
					t.Errorf("header %s = %q, want %q", k, hs[k], v)
				}
			}
		})
	}
	for _, bad := range []struct {
		curl []string
		want string
	}{
		{[]string{"-F", "a=b", "https://e.example"}, "curl option -F"},
		{[]string{"--json", "{}", "https://e.example"}, "curl option --json is not supported"},
		{[]string{"https://a.example", "https://b.example"}, "more than one URL"},
		{[]string{"-u", "user", "https://e.example"}, "give user:password"},
		{[]string{"-b", "cookies.txt", "https://e.example"}, "reads a cookie file"},
		{[]string{"-H"}, "needs a value"},
	} {
		if _, err := parseCurl(bad.curl); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("curl %q: error %v, want %q", bad.curl, err, bad.want)
		}
	}
}
