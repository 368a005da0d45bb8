package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// simplePolicy needs no network: an inline JWKS (never used by these tests)
// keeps the server independent of any key server.
const simplePolicy = `version: v1
issuers:
  - name: partner
    issuer: partner-api-client
    jwks: {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}
rules:
  - name: token-endpoint
    match:
      hosts: [login.example.com]
      paths: [/oauth/v2/oauth-token]
      methods: [POST]
    client_assertion:
      issuers: [partner]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
      x-is-agent: 'claims.?client_type.orValue("") == "ai-agent"'
`

// TestValidate: `extauthz validate` exits 0 on a good policy and 1 on a
// bad one, naming the file and the field path of each error.
func TestValidate(t *testing.T) {
	t.Parallel()
	t.Run("good", func(t *testing.T) {
		good := writeFile(t, "policy.yaml", simplePolicy)
		code, stdout, stderr := run(t, "validate", good)
		if code != 0 {
			t.Fatalf("validate exited %d, want 0; stderr:\n%s", code, stderr)
		}
		if !strings.HasPrefix(stdout, "ok") {
			t.Errorf("stdout = %q, want it to start with ok", stdout)
		}
	})
	t.Run("remote keys are not fetched", func(t *testing.T) {
		// jwks_uri names a host that does not resolve: validate must not
		// try it.
		p := strings.Replace(simplePolicy, `jwks: {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, "jwks_uri: https://keys.acme.invalid/.well-known/jwks", 1)
		if p == simplePolicy {
			t.Fatal("test bug: replacement did not apply")
		}
		code, _, stderr := run(t, "validate", writeFile(t, "policy.yaml", p))
		if code != 0 {
			t.Fatalf("validate exited %d, want 0; stderr:\n%s", code, stderr)
		}
	})
	t.Run("bad", func(t *testing.T) {
		bad := writeFile(t, "policy.yaml", strings.Replace(simplePolicy, `claims.?client_type`, `clams.?client_type`, 1))
		code, stdout, stderr := run(t, "validate", bad)
		if code != 1 {
			t.Fatalf("validate exited %d, want 1; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		want := bad + `:19:20: rules[0].headers["x-is-agent"]: undeclared reference to 'clams'`
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name the file and field path:\n%s\nwant it to contain:\n%s", stderr, want)
		}
	})
	t.Run("every error of several files", func(t *testing.T) {
		dir := t.TempDir()
		a := writeFileIn(t, dir, "a.yaml", strings.Replace(simplePolicy, `client_id`, `clientid`, 1))
		b := writeFileIn(t, dir, "b.yaml", "version: v1\nrules:\n  - name: other\n    bearer:\n      issuers: [nobody]\n      audiences: [api]\n")
		code, _, stderr := run(t, "validate", dir)
		if code != 1 {
			t.Fatalf("validate exited %d, want 1; stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			a + `:18:20: rules[0].headers["x-client-id"]: undeclared reference to 'clientid'`,
			b + `:5:17: rules[0].bearer.issuers[0]:`,
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
	})
}

// TestValidateSpecExample: the policy contract says every example in it
// must load; its complete example is testdata/spec-example.yaml, verbatim.
func TestValidateSpecExample(t *testing.T) {
	t.Parallel()
	code, _, stderr := run(t, "validate", filepath.Join("testdata", "spec-example.yaml"))
	if code != 0 {
		t.Errorf("validate of the spec's complete example exited %d, want 0:\n%s", code, stderr)
	}
}

// TestServeBadPolicy: serve with a policy that fails to load exits
// non-zero with the errors.
func TestServeBadPolicy(t *testing.T) {
	t.Parallel()
	bad := writeFile(t, "policy.yaml", strings.Replace(simplePolicy, `claims.?client_type`, `clams.?client_type`, 1))
	code, _, stderr := run(t, "serve", "--policy", bad, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if code == 0 {
		t.Fatalf("serve with a bad policy exited 0")
	}
	// The error is logged as JSON, where the quotes of the path are escaped.
	path := strings.Contains(stderr, `rules[0].headers[\"x-is-agent\"]`) || strings.Contains(stderr, `rules[0].headers["x-is-agent"]`)
	if !path || !strings.Contains(stderr, `undeclared reference to 'clams'`) {
		t.Errorf("stderr does not carry the load error:\n%s", stderr)
	}
}

// TestCheckCommand: `extauthz check` sends a CheckRequest written as
// protojson and prints the CheckResponse as JSON.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	srv := startServer(t, writeFile(t, "policy.yaml", simplePolicy))
	tests := []struct {
		name    string
		request string
		code    codes.Code
		status  int
		reason  string
	}{
		{
			name: "no rule matched",
			request: `{"attributes": {"request": {"http": {
				"method": "GET", "host": "api.example.com", "path": "/admin",
				"headers": {":authority": "api.example.com", ":method": "GET", ":path": "/admin"}}}}}`,
			code: codes.PermissionDenied, status: 403, reason: "no_rule_matched",
		},
		{
			name: "token request without an assertion",
			request: `{"attributes": {"request": {"http": {
				"method": "POST", "host": "login.example.com", "path": "/oauth/v2/oauth-token",
				"headers": {"content-type": "application/x-www-form-urlencoded"},
				"body": "grant_type=client_credentials&client_id=partner-api-client"}}}}`,
			code: codes.Unauthenticated, status: 401, reason: "credential_missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqFile := writeFile(t, "request.json", tt.request)
			code, stdout, stderr := run(t, "check", "--addr", srv.GRPCAddr, "-o", "json", "--request", reqFile)
			if code != 1 {
				t.Fatalf("check exited %d, want 1 (deny); stderr:\n%s", code, stderr)
			}
			var generic map[string]any
			if err := json.Unmarshal([]byte(stdout), &generic); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			resp := &authv3.CheckResponse{}
			if err := protojson.Unmarshal([]byte(stdout), resp); err != nil {
				t.Fatalf("stdout is not a CheckResponse: %v\n%s", err, stdout)
			}
			if c := codes.Code(resp.GetStatus().GetCode()); c != tt.code {
				t.Errorf("status = %v, want %v", c, tt.code)
			}
			if s := int(resp.GetDeniedResponse().GetStatus().GetCode()); s != tt.status {
				t.Errorf("HTTP status = %d, want %d", s, tt.status)
			}
			f := resp.GetDynamicMetadata().GetFields()
			if f["decision"].GetStringValue() != "deny" || f["reason"].GetStringValue() != tt.reason {
				t.Errorf("metadata decision=%q reason=%q, want deny %s", f["decision"].GetStringValue(), f["reason"].GetStringValue(), tt.reason)
			}
		})
	}
	t.Run("bad request file", func(t *testing.T) {
		code, _, stderr := run(t, "check", "--addr", srv.GRPCAddr, "--request", writeFile(t, "request.json", `{"attributes": 7}`))
		if code == 0 {
			t.Errorf("check with a malformed request exited 0")
		}
		if stderr == "" {
			t.Errorf("check with a malformed request printed no error")
		}
	})
}

// TestSIGTERM: the server drains and exits 0 on SIGTERM, having reported
// not ready.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	srv := startServer(t, writeFile(t, "policy.yaml", simplePolicy))
	// A Check first, so there is a live connection to drain.
	resp := srv.check(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.com", Path: "/"},
	}}})
	if c := codes.Code(resp.GetStatus().GetCode()); c != codes.PermissionDenied {
		t.Errorf("status = %v, want PERMISSION_DENIED", c)
	}
	if code := srv.Stop(t); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0; log:\n%s", code, srv.Logs)
	}
	if _, err := http.Get("http://" + srv.HTTPAddr + "/healthz"); err == nil {
		t.Errorf("HTTP server still answers after exit")
	}
	var stopped bool
	for _, line := range strings.Split(srv.Logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "stopped" {
			stopped = true
		}
		if line != "" && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON with --log-format json: %q", line)
		}
	}
	if !stopped {
		t.Errorf(`no "stopped" log line after SIGTERM; log:\n%s`, srv.Logs)
	}
}

func writeFileIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
