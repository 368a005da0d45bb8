package main

import (
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// TestCheckNow: --now is the clock of check --policy. A token that expired
// two days before the real now is allowed at a --now inside its life, and
// denied again at a --now past it; the real clock denies it.
func TestCheckNow(t *testing.T) {
	f := newCheckFixture(t)
	issued := time.Now().Add(-48 * time.Hour).Truncate(time.Second).UTC()
	tok := f.sign(t, "login.private.jwk.json", jwa.EdDSA(), map[string]any{
		"iss": "https://login.example.com", "sub": "alice", "aud": "admin.example.com",
		"client_id": "admin-console", "scope": "admin", "tenant": "acme",
		"iat": issued.Unix(), "exp": issued.Add(5 * time.Minute).Unix(),
	})
	ask := func(extra ...string) []string {
		return append([]string{"--policy", f.policy, "--url", "https://acme.admin.example.com/users?page=2",
			"--bearer", tok, "-H", "X-Client-Id: forged"}, extra...)
	}

	out := expectCheck(t, 1, "", ask()...)
	if !strings.Contains(out, "reason     token_expired\n") {
		t.Errorf("on the real clock:\n%s\nwant reason token_expired", out)
	}
	expectCheck(t, 0, adminAllowed, ask("--now", issued.Add(time.Minute).Format(time.RFC3339))...)
	// In another zone's notation, the same instant.
	expectCheck(t, 0, adminAllowed, ask("--now", issued.Add(time.Minute).In(time.FixedZone("", -5*3600)).Format(time.RFC3339))...)
	out = expectCheck(t, 1, "", ask("--now", issued.Add(10*time.Minute).Format(time.RFC3339))...)
	if !strings.Contains(out, "reason     token_expired\n") {
		t.Errorf("at --now after exp:\n%s\nwant reason token_expired", out)
	}
	out = expectCheck(t, 1, "", ask("--now", issued.Add(-10*time.Minute).Format(time.RFC3339))...)
	if !strings.Contains(out, "reason     issued_in_future\n") {
		t.Errorf("at --now before iat:\n%s\nwant reason issued_in_future", out)
	}
}

// TestCheckNowRefused: --now is offline only, and must be RFC 3339; both
// mistakes are usage errors (exit 2) before anything is asked.
func TestCheckNowRefused(t *testing.T) {
	f := newCheckFixture(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with --addr", []string{"--addr", "127.0.0.1:1", "--now", "2026-03-01T09:30:00Z"},
			"extauthz check: --now needs --policy: a running server decides on its own clock\n"},
		{"not RFC 3339", []string{"--policy", f.policy, "--now", "2026-03-01 09:30"},
			"extauthz check: --now: want an RFC 3339 time such as 2026-03-01T09:30:00Z: "},
		{"no zone", []string{"--policy", f.policy, "--now", "2026-03-01T09:30:00"},
			"extauthz check: --now: want an RFC 3339 time such as 2026-03-01T09:30:00Z: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCheck(t, append(tc.args, "--url", "https://api.example.com/health")...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			if !strings.HasPrefix(errOut, tc.want) {
				t.Errorf("stderr:\n%s\nwant it to start with:\n%s", errOut, tc.want)
			}
		})
	}
}
