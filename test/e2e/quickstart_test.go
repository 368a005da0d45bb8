package e2e_test

// The quick start as README.md tells it, through the real binary: the
// policy `make run` serves, the example client's output, and the decision
// log an operator reads with --log-decisions.

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/test/jose"
)

const (
	// readmeOutputMarker precedes, in README.md, the fenced block of what
	// `go run ./examples/quickstart/client` prints.
	readmeOutputMarker = "<!-- quickstart-client-output: test/e2e TestQuickstartREADME runs the client and compares -->"
	quickstartClientID = "quickstart-partner"
	// docRequestID is the x-request-id of the request that docs/operations.md
	// follows through Envoy's access log and ours.
	docRequestID = "8d3c6f0e-2b7a-4f7e-9a51-3c2d9b1e7f40"
)

// repoRoot is the module's root, where README.md and examples/ are.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startQuickstart serves examples/quickstart/policy.yaml as `make run`
// does, on free loopback ports and with JSON logs.
func startQuickstart(t *testing.T, extra ...string) *server {
	t.Helper()
	return startServer(t, filepath.Join(repoRoot(t), "examples", "quickstart", "policy.yaml"), extra...)
}

// TestQuickstartREADME: what `go run ./examples/quickstart/client` prints
// against the quick-start server is, byte for byte, the block README.md
// shows after readmeOutputMarker; with --agent, the same but x-is-agent.
func TestQuickstartREADME(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := fencedBlockAfter(string(readme), readmeOutputMarker)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	srv := startQuickstart(t)

	if got := runQuickstartClient(t, root, srv); got != want {
		t.Errorf("go run ./examples/quickstart/client printed:\n%s\nREADME.md shows:\n%s", got, want)
	}
	wantAgent := strings.Replace(want, "  set    x-is-agent: false\n", "  set    x-is-agent: true\n", 1)
	if wantAgent == want {
		t.Fatal("README.md's block has no x-is-agent: false line")
	}
	if got := runQuickstartClient(t, root, srv, "--agent"); got != wantAgent {
		t.Errorf("go run ./examples/quickstart/client --agent printed:\n%s\nwant:\n%s", got, wantAgent)
	}
}

// runQuickstartClient runs the README's command against srv and returns
// its stdout.
func runQuickstartClient(t *testing.T, root string, srv *server, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./examples/quickstart/client", "--addr", srv.GRPCAddr}, args...)...)
	cmd.Dir = root
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run ./examples/quickstart/client %s: %v\nstderr:\n%s\nserver log:\n%s", strings.Join(args, " "), err, errOut.String(), srv.Logs)
	}
	return out.String()
}

// fencedBlockAfter returns the content of the first ``` block after the
// line marker in a Markdown document.
func fencedBlockAfter(doc, marker string) (string, error) {
	_, rest, ok := strings.Cut(doc, "\n"+marker+"\n")
	if !ok {
		return "", fmt.Errorf("no line %q", marker)
	}
	lines := strings.SplitAfter(rest, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "```") })
	if start < 0 {
		return "", fmt.Errorf("no fenced block after %q", marker)
	}
	var b strings.Builder
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "```" {
			return b.String(), nil
		}
		b.WriteString(l)
	}
	return "", fmt.Errorf("the block after %q is not closed", marker)
}

// quickstartAssertion is a client assertion of the quick-start partner, as
// the example client signs it: PS256 with examples/quickstart/keys, a fresh
// jti, two minutes to live.
func quickstartAssertion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "quickstart", "keys", "client.private.jwk.json"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		t.Fatal(err)
	}
	key, ok := raw.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("the quick-start key is a %T, want an RSA private key", raw)
	}
	kid, _ := k.KeyID()
	now := time.Now().Unix()
	return jose.MustSign(t, "PS256", key, map[string]any{"kid": kid, "typ": "JWT"}, map[string]any{
		"iss": quickstartClientID, "sub": quickstartClientID, "aud": tokenEndpoint,
		"jti": newJTI(), "iat": now, "exp": now + 120,
	})
}

// decisionLine is one "decision" line of the log, raw and decoded.
type decisionLine struct {
	raw    string
	fields map[string]any
}

// decisionLines reads the decision log of a stopped server, by request id.
func decisionLines(t *testing.T, srv *server) map[string][]decisionLine {
	t.Helper()
	if code := srv.Stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, srv.Logs)
	}
	byID := map[string][]decisionLine{}
	for _, line := range strings.Split(srv.Logs.String(), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if m["msg"] == "decision" {
			id, _ := m["request_id"].(string)
			byID[id] = append(byID[id], decisionLine{line, m})
		}
	}
	return byID
}

// expectDecisionLine asserts that id has exactly one decision line, with
// exactly the fields of want besides time and latency_us (a time and a
// whole number of microseconds).
func expectDecisionLine(t *testing.T, byID map[string][]decisionLine, id string, want map[string]any) {
	t.Helper()
	lines := byID[id]
	if len(lines) != 1 {
		t.Errorf("%s: %d decision lines, want 1", id, len(lines))
		return
	}
	got := maps.Clone(lines[0].fields)
	if ts, _ := got["time"].(string); ts == "" {
		t.Errorf("%s: time = %v", id, got["time"])
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("%s: time %q: %v", id, ts, err)
	}
	if lat, ok := got["latency_us"].(float64); !ok || lat < 0 || lat != float64(int64(lat)) {
		t.Errorf("%s: latency_us = %v, want a whole number of microseconds", id, got["latency_us"])
	}
	delete(got, "time")
	delete(got, "latency_us")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: decision line\n%s\nhas fields %v\nwant (besides time and latency_us) %v", id, lines[0].raw, got, want)
	}
}

// quickstartDecision is the decision line of a token request to the quick
// start, besides time and latency_us.
func quickstartDecision(id, decision, reason, issuer, clientID string, status int) map[string]any {
	m := map[string]any{
		"level": "INFO", "msg": "decision",
		"decision": decision, "rule": "token-endpoint", "reason": reason,
		"issuer": issuer, "client_id": clientID, "spiffe_id": "", "request_id": id,
		"method": "POST", "host": "login.example.com", "path": "/oauth/v2/oauth-token",
	}
	if status != 0 {
		m["status"] = float64(status)
	}
	return m
}

// TestLogDecisionsAll: with --log-decisions all, an allow is logged, with
// its request id, rule, decision, reason and client id and nothing else
// but the request's method, host and path, and no token.
func TestLogDecisionsAll(t *testing.T) {
	t.Parallel()
	srv := startQuickstart(t, "--log-decisions", "all")
	c := authv3.NewAuthorizationClient(dial(t, srv))
	assertion := quickstartAssertion(t)
	resp := checkOn(t, c, srv, withRequestID(tokenRequest(assertion), "qs-allow"))
	expectDecision(t, resp, codes.OK, 0, "allow", "token-endpoint", "allowed")
	resp = checkOn(t, c, srv, withRequestID(noCredentialRequest(), "qs-no-credential"))
	expectDecision(t, resp, codes.Unauthenticated, 401, "deny", "token-endpoint", "credential_missing")

	byID := decisionLines(t, srv)
	expectDecisionLine(t, byID, "qs-allow", quickstartDecision("qs-allow", "allow", "allowed", "partner", quickstartClientID, 0))
	expectDecisionLine(t, byID, "qs-no-credential", quickstartDecision("qs-no-credential", "deny", "credential_missing", "", "", 401))
	if len(byID) != 2 {
		t.Errorf("decision lines for %d request ids, want 2:\n%s", len(byID), rawLines(byID))
	}
	expectNoToken(t, srv, assertion)
}

// TestLogDecisionsDenies: with --log-decisions denies, the allow is not
// logged and the denies are: the second use of the same assertion (a
// replay, 401 invalid_client as README.md says) with the client it names,
// and a request without a credential. The replay is the line
// docs/operations.md shows, in the same words.
func TestLogDecisionsDenies(t *testing.T) {
	t.Parallel()
	srv := startQuickstart(t, "--log-decisions", "denies")
	c := authv3.NewAuthorizationClient(dial(t, srv))
	assertion := quickstartAssertion(t)
	resp := checkOn(t, c, srv, withRequestID(tokenRequest(assertion), "qs-allow"))
	expectDecision(t, resp, codes.OK, 0, "allow", "token-endpoint", "allowed")
	resp = checkOn(t, c, srv, withRequestID(tokenRequest(assertion), docRequestID))
	expectDecision(t, resp, codes.Unauthenticated, 401, "deny", "token-endpoint", "replayed")
	if body := resp.GetDeniedResponse().GetBody(); body != `{"error":"invalid_client"}` {
		t.Errorf("replay body %q, want README.md's {\"error\":\"invalid_client\"}", body)
	}
	resp = checkOn(t, c, srv, withRequestID(noCredentialRequest(), "qs-no-credential"))
	expectDecision(t, resp, codes.Unauthenticated, 401, "deny", "token-endpoint", "credential_missing")

	byID := decisionLines(t, srv)
	if lines := byID["qs-allow"]; len(lines) != 0 {
		t.Errorf("--log-decisions denies logged the allow: %s", lines[0].raw)
	}
	expectDecisionLine(t, byID, docRequestID, quickstartDecision(docRequestID, "deny", "replayed", "partner", quickstartClientID, 401))
	expectDecisionLine(t, byID, "qs-no-credential", quickstartDecision("qs-no-credential", "deny", "credential_missing", "", "", 401))
	if len(byID) != 2 {
		t.Errorf("decision lines for %d request ids, want 2:\n%s", len(byID), rawLines(byID))
	}
	expectNoToken(t, srv, assertion)

	// docs/operations.md's example line is this one, but for its time and
	// latency.
	ops, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, l := range strings.Split(string(ops), "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, `"msg":"decision"`) && strings.Contains(l, docRequestID) {
			doc = l
		}
	}
	if doc == "" {
		t.Fatalf("docs/operations.md has no decision line for request %s", docRequestID)
	}
	if lines := byID[docRequestID]; len(lines) == 1 {
		if got, want := unstamped(lines[0].raw), unstamped(doc); got != want {
			t.Errorf("docs/operations.md shows\n%s\nthe server logs\n%s", doc, lines[0].raw)
		}
	}
}

// rawLines are the lines of byID, one per line, for failure messages.
func rawLines(byID map[string][]decisionLine) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		for _, l := range byID[id] {
			b.WriteString(l.raw + "\n")
		}
	}
	return b.String()
}

var stamps = regexp.MustCompile(`"time":"[^"]*"|"latency_us":[0-9]+`)

// unstamped is a log line without its time and latency.
func unstamped(line string) string {
	return stamps.ReplaceAllStringFunc(line, func(s string) string {
		k, _, _ := strings.Cut(s, ":")
		return k + ":…"
	})
}

// expectNoToken fails t if the server's log holds the token or one of its
// payload and signature segments.
func expectNoToken(t *testing.T, srv *server, tok string) {
	t.Helper()
	logs := srv.Logs.String()
	for _, part := range tokenParts(tok) {
		if strings.Contains(logs, part) {
			t.Errorf("the log holds the token or a part of it: %.40q…", part)
		}
	}
}
