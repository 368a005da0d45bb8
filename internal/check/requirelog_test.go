package check_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/logtest"

	"github.com/extauthz/extauthz/internal/check"
)

// TestRequireFalseLogged: at debug level a deny for a false require names
// the rule and the expression, as docs/operations.md promises.
func TestRequireFalseLogged(t *testing.T) {
	var out logtest.Buffer
	h := newHarness(t, basePolicy, func(c *check.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	resp := h.check(t, reportsReq("POST", "authorization", "Bearer "+signLogin(t, loginClaims())))
	assertResponse(t, resp, accessDenied("reports-api", "requirement_failed").by("login", "reporting-app", ""))
	want := `msg="check: require expression is false" rule=reports-api require="request.method == \"GET\" || \"reports:write\" in scopes"`
	if !strings.Contains(out.String(), want) {
		t.Fatalf("log lacks\n%s\ngot:\n%s", want, out.String())
	}
}
