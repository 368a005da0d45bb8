package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/test/jose"
)

// TestOpsDecisionLogs: with every decision logged (--decision-log-sample
// 1, JSON), each Check writes exactly one "decision" line carrying its
// request id, rule, reason, issuer, client id and latency, and no token,
// signature or form body ever reaches the log.
func TestOpsDecisionLogs(t *testing.T) {
	t.Parallel()
	idp := newOpsIdP(t)
	srv := startServer(t, idp.policyFile(t), "--decision-log-sample", "1", "--log-format", "json")
	c := authv3.NewAuthorizationClient(dial(t, srv))

	allowed := idp.assertion(t, nil)
	type want struct{ decision, rule, reason, issuer, clientID string }
	steps := []struct {
		id  string
		req *authv3.CheckRequest
		want
	}{
		{"req-allow-1", tokenRequest(allowed), want{"allow", "token-endpoint", "allowed", "partner", partnerID}},
		{"req-allow-2", tokenRequest(idp.assertion(t, nil)), want{"allow", "token-endpoint", "allowed", "partner", partnerID}},
		{"req-replay", tokenRequest(allowed), want{"deny", "token-endpoint", "replayed", "partner", partnerID}},
		{"req-bad-signature", tokenRequest(idp.badSignature(t)), want{"deny", "token-endpoint", "signature_invalid", "partner", ""}},
		{"req-expired", tokenRequest(idp.expired(t)), want{"deny", "token-endpoint", "token_expired", "partner", ""}},
		{"req-missing", noCredentialRequest(), want{"deny", "token-endpoint", "credential_missing", "", ""}},
		{"req-bearer-allow", bearerRequest(idp.accessToken(t, nil)), want{"allow", "orders", "allowed", "idp", "orders-app"}},
		{"req-bearer-bad-signature", bearerRequest(idp.accessToken(t, jose.P256(t))), want{"deny", "orders", "signature_invalid", "idp", ""}},
		{"req-no-rule", plainRequest("other.example.com", "/"), want{"deny", "", "no_rule_matched", "", ""}},
	}
	// Everything secret that went over the wire: each token whole, its
	// payload and signature segments, the Authorization value and the form
	// body.
	var secrets []string
	for _, s := range steps {
		h := s.req.GetAttributes().GetRequest().GetHttp()
		if b := h.GetBody(); strings.Contains(b, "client_assertion=") {
			secrets = append(secrets, b)
			_, tok, _ := strings.Cut(b, "client_assertion=")
			secrets = append(secrets, tokenParts(tok)...)
		}
		if a := h.GetHeaders()["authorization"]; a != "" {
			secrets = append(secrets, a)
			secrets = append(secrets, tokenParts(strings.TrimPrefix(a, "Bearer "))...)
		}
	}
	if len(secrets) == 0 {
		t.Fatal("test bug: no secrets collected")
	}

	for _, s := range steps {
		resp := checkOn(t, c, srv, withRequestID(s.req, s.id))
		if got := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); got != s.reason {
			t.Errorf("%s: reason %q, want %q", s.id, got, s.reason)
		}
	}
	// Stopping the server flushes its stderr to us; then the log is whole.
	if code := srv.Stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	logs := srv.Logs.String()

	byID := map[string][]map[string]any{}
	decisions := 0
	for _, line := range strings.Split(logs, "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if m["msg"] != "decision" {
			continue
		}
		decisions++
		id, _ := m["request_id"].(string)
		byID[id] = append(byID[id], m)
	}
	if decisions != len(steps) {
		t.Errorf("%d decision lines for %d Checks", decisions, len(steps))
	}
	for _, s := range steps {
		lines := byID[s.id]
		if len(lines) != 1 {
			t.Errorf("%s: %d decision lines, want 1", s.id, len(lines))
			continue
		}
		m := lines[0]
		for k, v := range map[string]string{
			"decision": s.decision, "rule": s.rule, "reason": s.reason,
			"issuer": s.issuer, "client_id": s.clientID,
		} {
			if got, ok := m[k].(string); !ok || got != v {
				t.Errorf("%s: %s = %v, want %q", s.id, k, m[k], v)
			}
		}
		if lat, ok := m["latency_us"].(float64); !ok || lat < 0 {
			t.Errorf("%s: latency_us = %v, want a number of microseconds", s.id, m["latency_us"])
		}
		if s.decision == "deny" {
			if st, ok := m["status"].(float64); !ok || st < 400 {
				t.Errorf("%s: status = %v, want the HTTP status of the deny", s.id, m["status"])
			}
		}
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret sent in a request: %.40q…", secret)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}

// tokenParts returns a compact JWS and its payload and signature segments.
func tokenParts(tok string) []string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		panic("tokenParts: not a compact JWS: " + tok)
	}
	return []string{tok, parts[1], parts[2]}
}
