package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/extauthz/extauthz/internal/offline"
)

// checkPolicy is the policy the check tests ask: a token endpoint taking
// client assertions of partner-acme, and an admin API taking login's
// bearer tokens for the tenant the host names. {{KEYS}} is
// examples/policies/keys.
const checkPolicy = `version: v1
realm: example-apis
issuers:
  - name: partner-acme
    issuer: partner-api-client
    jwks_file: {{KEYS}}/partner-acme.jwks.json
    algorithms: [PS256]
  - name: login
    issuer: https://login.example.com
    jwks_file: {{KEYS}}/login.jwks.json
    algorithms: [EdDSA]
rules:
  - name: token-endpoint
    match: {hosts: [login.example.com], paths: [/oauth/v2/oauth-token], methods: [POST]}
    client_assertion:
      issuers: [partner-acme]
      audiences: [https://login.example.com/oauth/v2/oauth-token]
    headers:
      x-client-id: client_id
  - name: admin-api
    match: {hosts: ["*.admin.example.com"]}
    bearer:
      issuers: [login]
      audiences: [admin.example.com]
      scopes: [admin]
    require:
      - 'claims.?tenant.orValue("") == request.host.split(".")[0]'
    headers:
      x-client-id: client_id
      x-tenant: claims.tenant
strip_headers: [x-internal-user]
default_action: deny
`

// checkFixture is a policy file for the check tests and the example keys.
type checkFixture struct {
	dir, policy, keys string
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	keys, err := filepath.Abs("../../examples/policies/keys")
	if err != nil {
		t.Fatal(err)
	}
	f := &checkFixture{dir: t.TempDir(), keys: keys}
	f.policy = f.write(t, "policy.yaml", strings.ReplaceAll(checkPolicy, "{{KEYS}}", keys))
	return f
}

func (f *checkFixture) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign makes a JWT with a private key of examples/policies/keys, valid
// from a minute ago for two more, with a fresh jti.
func (f *checkFixture) sign(t *testing.T, keyFile string, alg jwa.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(f.keys, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	all := map[string]any{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": hex.EncodeToString(jti)}
	for k, v := range claims {
		all[k] = v
	}
	payload, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	kid, _ := key.KeyID()
	if err := hdr.Set("kid", kid); err != nil {
		t.Fatal(err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// adminToken is a bearer token of login for the admin API.
func (f *checkFixture) adminToken(t *testing.T, tenant string) string {
	return f.sign(t, "login.private.jwk.json", jwa.EdDSA(), map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": "admin.example.com",
		"client_id": "admin-console", "scope": "admin", "tenant": tenant,
	})
}

// assertion is a client assertion of partner-acme for the token endpoint.
func (f *checkFixture) assertion(t *testing.T) string {
	return f.sign(t, "partner-acme.private.jwk.json", jwa.PS256(), map[string]any{
		"iss": "partner-api-client", "sub": "partner-api-client", "aud": "https://login.example.com/oauth/v2/oauth-token",
	})
}

// runCheck runs `extauthz check args...` in-process.
func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"check"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// expectCheck asserts an exit code and the exact output.
func expectCheck(t *testing.T, wantCode int, wantOut string, args ...string) string {
	t.Helper()
	code, out, errOut := runCheck(t, args...)
	if code != wantCode {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, out, errOut)
	}
	if wantOut != "" && out != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, wantOut)
	}
	return out
}

const adminAllowed = `decision   allow
rule       admin-api
reason     allowed
issuer     login
client_id  admin-console
set        x-client-id: admin-console
set        x-tenant: acme
remove     x-client_id, x_client-id, x_client_id (other spellings of x-client-id)
remove     x-internal-user (and x-internal_user, x_internal-user, x_internal_user)
remove     x_tenant (other spelling of x-tenant)
`

func TestCheckBearerFromFlags(t *testing.T) {
	f := newCheckFixture(t)
	tok := f.adminToken(t, "acme")
	expectCheck(t, 0, adminAllowed, "--policy", f.policy, "--url", "https://acme.admin.example.com/users?page=2",
		"--bearer", tok, "-H", "X-Client-Id: forged")
}

// TestCheckRemote asks a running server the same question: the summary is
// the same.
func TestCheckRemote(t *testing.T) {
	f := newCheckFixture(t)
	ctx := context.Background()
	srv, err := offline.New(ctx, offline.Config{Policies: []string{f.policy}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, srv.Server)
	go gs.Serve(lis)
	defer gs.Stop()
	expectCheck(t, 0, adminAllowed, "--addr", lis.Addr().String(), "--url", "https://acme.admin.example.com/users", "--bearer", f.adminToken(t, "acme"))
	// An address nobody serves is exit 3.
	code, _, errOut := runCheck(t, "--addr", "unix://"+filepath.Join(f.dir, "none.sock"), "--timeout", "2s", "--url", "https://acme.admin.example.com/")
	if code != 3 || !strings.HasPrefix(errOut, "extauthz check: ") {
		t.Errorf("exit %d, stderr %q; want 3 and the error", code, errOut)
	}
}

func TestCheckClientAssertionFile(t *testing.T) {
	f := newCheckFixture(t)
	assertion := f.assertion(t)
	file := f.write(t, "assertion.jwt", assertion+"\n")
	expectCheck(t, 0, `decision   allow
rule       token-endpoint
reason     allowed
issuer     partner-acme
client_id  partner-api-client
set        x-client-id: partner-api-client
remove     x-client_id, x_client-id, x_client_id (other spellings of x-client-id)
remove     x-internal-user (and x-internal_user, x_internal-user, x_internal_user)
remove     x-tenant (and x_tenant)
`, "--policy", f.policy, "--url", "https://login.example.com/oauth/v2/oauth-token", "--client-assertion-file", file)

	// The form it sends; each check has its own replay store, so the same
	// assertion is not a replay in the next one.
	out := expectCheck(t, 0, "", "--print-request", "--url", "https://login.example.com/oauth/v2/oauth-token", "--client-assertion-file", file)
	want := "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + assertion
	if !strings.Contains(out, `"body": "`+want+`"`) || !strings.Contains(out, `"content-type": "application/x-www-form-urlencoded"`) {
		t.Errorf("--print-request with --client-assertion-file:\n%s\nwant the body %s", out, want)
	}
	// --client-assertion-type overrides the type, which the rule refuses.
	expectCheck(t, 1, `decision   deny (HTTP 401)
rule       token-endpoint
reason     assertion_type_unsupported
response   content-type: application/json
response   cache-control: no-store
body       {"error":"invalid_client"}
`, "--policy", f.policy, "--url", "https://login.example.com/oauth/v2/oauth-token", "--client-assertion-file", file,
		"--client-assertion-type", "urn:example:other")
}

func TestCheckCurl(t *testing.T) {
	f := newCheckFixture(t)
	file := f.write(t, "assertion.jwt", f.assertion(t))
	want := `decision   allow
rule       token-endpoint
reason     allowed
issuer     partner-acme
client_id  partner-api-client
set        x-client-id: partner-api-client
remove     x-client_id, x_client-id, x_client_id (other spellings of x-client-id)
remove     x-internal-user (and x-internal_user, x_internal-user, x_internal_user)
remove     x-tenant (and x_tenant)
`
	expectCheck(t, 0, want, "--policy", f.policy, "--", "curl", "-sS", "-X", "POST", "https://login.example.com/oauth/v2/oauth-token",
		"-H", "Content-Type: application/x-www-form-urlencoded", "-d", "grant_type=client_credentials",
		"--data-urlencode", "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		"--data-urlencode", "client_assertion@"+file)

	// A bearer token, the word curl without "--", and a deny: the tenant
	// the host names is not the token's.
	expectCheck(t, 1, `decision   deny (HTTP 403)
rule       admin-api
reason     requirement_failed
issuer     login
client_id  admin-console
response   content-type: application/json
response   cache-control: no-store
body       {"error":"access_denied"}
`, "--policy", f.policy, "curl", "https://beta.admin.example.com/users", "-H", "Authorization: Bearer "+f.adminToken(t, "acme"))

	code, out, errOut := runCheck(t, "--policy", f.policy, "--", "curl", "-F", "a=b", "https://login.example.com/")
	if code != 2 || out != "" || !strings.Contains(errOut, "curl option -F (in \"-F\") is not supported; check supports -X/--request") {
		t.Errorf("curl -F: exit %d, stdout %q, stderr %q; want 2 and a refusal", code, out, errOut)
	}
}

// TestCheckDenyExitCode: a deny is exit 1, with the challenge in the
// summary; JSON output keeps the exit code.
func TestCheckDenyExitCode(t *testing.T) {
	f := newCheckFixture(t)
	expectCheck(t, 1, `decision   deny (HTTP 401)
rule       admin-api
reason     credential_missing
response   www-authenticate: Bearer realm="example-apis"
`, "--policy", f.policy, "--url", "https://acme.admin.example.com/users")
	expectCheck(t, 1, `decision   deny (HTTP 403)
rule       (none)
reason     no_rule_matched
response   content-type: application/json
response   cache-control: no-store
body       {"error":"access_denied"}
`, "--policy", f.policy, "--url", "https://elsewhere.example.com/")
}

func TestCheckJSONOutput(t *testing.T) {
	f := newCheckFixture(t)
	out := expectCheck(t, 0, "", "--policy", f.policy, "-o", "json", "--url", "https://acme.admin.example.com/users", "--bearer", f.adminToken(t, "acme"))
	resp := &authv3.CheckResponse{}
	if err := protojson.Unmarshal([]byte(out), resp); err != nil {
		t.Fatalf("-o json is not a CheckResponse: %v\n%s", err, out)
	}
	md := resp.GetDynamicMetadata().GetFields()
	if md["decision"].GetStringValue() != "allow" || md["rule"].GetStringValue() != "admin-api" || resp.GetOkResponse() == nil {
		t.Errorf("response %v", resp)
	}
	got := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if got["x-tenant"] != "acme" || got["x-client-id"] != "admin-console" {
		t.Errorf("headers %v", got)
	}
	if !strings.HasPrefix(out, "{\n  \"status\": {}") {
		t.Errorf("-o json is not indented protojson:\n%s", out)
	}

	out = expectCheck(t, 1, "", "--policy", f.policy, "-o", "json", "--explain", "--url", "https://acme.admin.example.com/users")
	var explained struct {
		Steps []struct {
			Check string `json:"check"`
			OK    bool   `json:"ok"`
		} `json:"steps"`
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &explained); err != nil || len(explained.Steps) == 0 {
		t.Fatalf("-o json --explain: %v\n%s", err, out)
	}
	if err := protojson.Unmarshal(explained.Response, resp); err != nil || resp.GetDeniedResponse() == nil {
		t.Errorf("-o json --explain response: %v\n%s", err, explained.Response)
	}
}

// TestCheckExplainRequireValues: --explain traces every step, and a failed
// require shows the values it read.
func TestCheckExplainRequireValues(t *testing.T) {
	f := newCheckFixture(t)
	out := expectCheck(t, 1, "", "--policy", f.policy, "--explain", "--url", "https://beta.admin.example.com/users", "--bearer", f.adminToken(t, "acme"))
	for _, want := range []string{
		"ok   select rule: rule \"admin-api\" is the first whose match holds\n",
		"ok   scopes: token scopes [admin] include [admin]\n",
		`FAIL require: claims.?tenant.orValue("") == request.host.split(".")[0]
       claims.tenant = "acme"
       request.host = "beta.admin.example.com"
FAIL decision: deny: HTTP 403 (requirement_failed)

decision   deny (HTTP 403)
rule       admin-api
reason     requirement_failed
issuer     login
client_id  admin-console
response   content-type: application/json
response   cache-control: no-store
body       {"error":"access_denied"}
`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--explain output lacks\n%s\n---- output:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, "body       {\"error\":\"access_denied\"}\n") {
		t.Errorf("the summary does not end the output:\n%s", out)
	}
}

// TestCheckPrintRequest: the request built is printed as Envoy would send
// it, pseudo-headers included, and nothing is decided.
func TestCheckPrintRequest(t *testing.T) {
	f := newCheckFixture(t)
	cert := filepath.Join(f.keys, "client-a.cert.pem")
	out := expectCheck(t, 0, "", "--print-request", "--url", "https://Login.example.com:8443/oauth/v2/token?x=1",
		"-H", "X-Team: blue", "-H", "x-team: red", "-H", "Accept;", "--form", "scope=a b", "--data", "grant_type=client_credentials",
		"--dpop", "PROOF", "--bearer", "TOKEN", "--context-extension", "rule=token-endpoint", "--peer-cert", cert)
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	body := "grant_type=client_credentials&scope=a+b"
	want := `{
  "attributes": {
    "source": {
      "certificate": "` + peerCertEncoding.Replace(string(pemBytes)) + `"
    },
    "request": {
      "http": {
        "method": "POST",
        "headers": {
          ":authority": "Login.example.com:8443",
          ":method": "POST",
          ":path": "/oauth/v2/token?x=1",
          ":scheme": "https",
          "accept": "",
          "authorization": "DPoP TOKEN",
          "content-length": "39",
          "content-type": "application/x-www-form-urlencoded",
          "dpop": "PROOF",
          "x-team": "blue,red"
        },
        "path": "/oauth/v2/token?x=1",
        "host": "Login.example.com:8443",
        "scheme": "https",
        "size": "39",
        "body": "` + body + `"
      }
    },
    "contextExtensions": {
      "rule": "token-endpoint"
    }
  }
}
`
	if out != want {
		t.Errorf("--print-request:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(out, "%0A") || strings.Contains(out, "\\n") {
		t.Errorf("the certificate is not URL-encoded as Envoy encodes it")
	}
	// What it prints is a --request file that decides the same.
	tok := f.adminToken(t, "acme")
	saved := f.write(t, "req.json", expectCheck(t, 0, "", "--print-request", "--url", "https://acme.admin.example.com/users", "--bearer", tok))
	expectCheck(t, 0, adminAllowed, "--policy", f.policy, "--request", saved)
}

// TestCheckUsageErrors: mistakes are exit 2 with a message, a policy that
// does not load exit 3.
func TestCheckUsageErrors(t *testing.T) {
	f := newCheckFixture(t)
	broken := f.write(t, "broken.yaml", "version: v1\nrules: [{name: x, bearer: {issuers: [nobody]}}]\n")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--policy", f.policy}, 2, "no request"},
		{[]string{"--url", "https://e.example"}, 2, "give --policy PATH (offline) or --addr ADDR"},
		{[]string{"--addr", "127.0.0.1:1", "--explain", "--url", "https://e.example"}, 2, "--explain needs --policy"},
		{[]string{"--policy", f.policy, "-o", "yaml", "--url", "https://e.example"}, 2, "-o: want text or json"},
		{[]string{"--policy", f.policy, "--request", "r.json", "--url", "https://e.example"}, 2, "not both"},
		{[]string{"--policy", f.policy, "--url", "ftp://e.example"}, 2, "the scheme must be http or https"},
		{[]string{"--policy", f.policy, "--url", "https://e.example", "-H", "bad header"}, 2, `header "bad header"`},
		{[]string{"--policy", f.policy, "--url", "https://e.example", "--peer-cert", f.policy}, 2, "not a PEM certificate"},
		{[]string{"--policy", f.policy, "--client-assertion-file", "/nonexistent", "--url", "https://e.example"}, 2, "--client-assertion-file"},
		{[]string{"--policy", f.policy, "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"--policy", broken, "--url", "https://e.example"}, 3, "nobody"},
	} {
		code, out, errOut := runCheck(t, tt.args...)
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("check %q: exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
	code, _, errOut := runCheck(t, "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, want := range []string{
		"  flags         extauthz check --policy p.yaml --url https://api.example.com/reports/q1 --bearer \"$TOKEN\"\n",
		"  a curl line   extauthz check --policy p.yaml -- curl ",
		"Exit status: 0 allow, 1 deny, 2 usage error",
		"-client-assertion-file FILE",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--help lacks %q:\n%s", want, errOut)
		}
	}
}

func TestRemoveGroups(t *testing.T) {
	got := removeGroups([]string{"x-a", "x_a", "x-b_c", "x_b-c", "x_b_c", "x_d", "y"}, []string{"x-b-c", "x-d"})
	want := []string{"x-a (and x_a)", "x-b_c, x_b-c, x_b_c (other spellings of x-b-c)", "x_d (other spelling of x-d)", "y"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("removeGroups:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestColor: colours only on a terminal (a character device), never with
// NO_COLOR.
func TestColor(t *testing.T) {
	if colorFor(&bytes.Buffer{}).on {
		t.Error("colours on a buffer")
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if colorFor(file).on {
		t.Error("colours on a regular file")
	}
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer tty.Close()
	t.Setenv("NO_COLOR", "")
	if !colorFor(tty).on {
		t.Errorf("no colours on a character device")
	}
	if got := colorFor(tty).red("deny"); got != "\x1b[1;31mdeny\x1b[0m" {
		t.Errorf("red %q", got)
	}
	t.Setenv("NO_COLOR", "1")
	if colorFor(tty).on {
		t.Errorf("colours despite NO_COLOR")
	}
}

// TestCheckDocExamples runs every `extauthz check` command of the console
// blocks in README.md and docs/operations.md ("$ " and the command, then
// its output) and compares what it prints, so the docs cannot drift.
func TestCheckDocExamples(t *testing.T) {
	t.Chdir("../..")
	ran := 0
	for _, doc := range []string{"README.md", "docs/operations.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range consoleExamples(string(b)) {
			args, err := shellWords(ex.command)
			if err != nil {
				t.Fatalf("%s: %q: %v", doc, ex.command, err)
			}
			if len(args) < 2 || (args[0] != "extauthz" && args[0] != "bin/extauthz") || args[1] != "check" {
				continue
			}
			ran++
			var out, errOut bytes.Buffer
			code := run(context.Background(), args[1:], &out, &errOut)
			if code > 1 || out.String() != ex.output {
				t.Errorf("%s: $ %s\nexit %d, stdout:\n%s\nstderr:\n%s\nthe doc shows:\n%s", doc, ex.command, code, out.String(), errOut.String(), ex.output)
			}
		}
	}
	if ran < 3 {
		t.Errorf("ran %d check examples from the docs; the console blocks are gone or unreadable", ran)
	}
}

type consoleExample struct{ command, output string }

// consoleExamples reads the ```console blocks of a Markdown document.
func consoleExamples(doc string) []consoleExample {
	var out []consoleExample
	in := false
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```console":
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in && strings.HasPrefix(line, "$ "):
			out = append(out, consoleExample{command: line[2:]})
		case in && len(out) > 0:
			out[len(out)-1].output += line + "\n"
		}
	}
	return out
}

// shellWords splits a command line as a POSIX shell would, for the
// literal commands of the docs: quotes and backslashes, no expansions.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				} else if s[i] == '$' || s[i] == '`' {
					return nil, errors.New("expansions are not literal")
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("$`|&;<>()", c) >= 0:
			return nil, fmt.Errorf("%q is not literal", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
