package e2e_test

import (
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/redistest"
)

// TestOpsSharedRedisReplicas runs three extauthz replicas against one real
// redis-server: a client assertion accepted by one replica is a replay at
// another; with Redis down, client assertions get 503 (or, with
// --replay-fail-open, are allowed and counted); when Redis is back on the
// same port, replicas recover without a restart.
func TestOpsSharedRedisReplicas(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	idp := newOpsIdP(t)
	policy := idp.policyFile(t)
	// Ten times the default timeout: a healthy local Redis must not be
	// taken for a down one on a loaded machine, and a down one costs each
	// Check this long (go-redis redials and retries within it).
	common := []string{"--replay-store", redis.URL(), "--replay-timeout", "500ms"}
	a := startServer(t, policy, common...)
	b := startServer(t, policy, common...)
	c := startServer(t, policy, append(common, "--replay-fail-open")...)
	ca := authv3.NewAuthorizationClient(dial(t, a))
	cb := authv3.NewAuthorizationClient(dial(t, b))
	cc := authv3.NewAuthorizationClient(dial(t, c))
	const te = "token-endpoint"

	t.Run("replay across replicas", func(t *testing.T) {
		req := tokenRequest(idp.assertion(t, nil))
		expectDecision(t, checkOn(t, ca, a, req), codes.OK, 0, "allow", te, "allowed")
		assertDenied(t, checkOn(t, cb, b, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
			meta("deny", "replayed", "partner", partnerID, ""))
		// And the other way round, through the third replica.
		req = tokenRequest(idp.assertion(t, nil))
		expectDecision(t, checkOn(t, cc, c, req), codes.OK, 0, "allow", te, "allowed")
		assertDenied(t, checkOn(t, ca, a, req), codes.Unauthenticated, 401, `{"error":"invalid_client"}`,
			meta("deny", "replayed", "partner", partnerID, ""))
	})
	if t.Failed() {
		t.FailNow()
	}

	redis.Stop()
	t.Run("redis down: 503", func(t *testing.T) {
		for _, r := range []struct {
			name string
			s    *server
			c    authv3.AuthorizationClient
		}{{"A", a, ca}, {"B", b, cb}} {
			resp := checkOn(t, r.c, r.s, tokenRequest(idp.assertion(t, nil)))
			assertDenied(t, resp, codes.PermissionDenied, 503, `{"error":"temporarily_unavailable"}`,
				meta("deny", "replay_store_unavailable", "partner", partnerID, ""))
			if ra, ok := deniedHeader(resp, "retry-after"); !ok || ra == "" {
				t.Errorf("replica %s: 503 without Retry-After", r.name)
			}
		}
	})
	t.Run("redis down: fail open", func(t *testing.T) {
		resp := checkOn(t, cc, c, tokenRequest(idp.assertion(t, nil)))
		expectDecision(t, resp, codes.OK, 0, "allow", te, "replay_store_unavailable")
		assertMeta(t, resp, meta("allow", "replay_store_unavailable", "partner", partnerID, ""))
		m := scrape(t, c)
		if v := m["extauthz_replay_fail_open_total{}"]; v != 1 {
			t.Errorf("extauthz_replay_fail_open_total = %v, want 1", v)
		}
		if v := m["extauthz_replay_operations_total"+series("result", "error")]; v != 1 {
			t.Errorf(`extauthz_replay_operations_total{result="error"} = %v, want 1`, v)
		}
		// A replica without --replay-fail-open never allows without the
		// store, and says so in its metrics.
		ma := scrape(t, a)
		if v := ma["extauthz_replay_fail_open_total{}"]; v != 0 {
			t.Errorf("replica A: extauthz_replay_fail_open_total = %v, want 0", v)
		}
		if v := ma["extauthz_decisions_total"+series("decision", "deny", "rule", te, "reason", "replay_store_unavailable")]; v != 1 {
			t.Errorf("replica A: replay_store_unavailable denies = %v, want 1", v)
		}
	})

	redis.Start()
	t.Run("redis back: recovery without restart", func(t *testing.T) {
		// go-redis redials by itself; poll with fresh assertions (a 503
		// records nothing, but a claim that timed out on our side might
		// have been stored).
		var last *authv3.CheckResponse
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			last = checkOn(t, ca, a, tokenRequest(idp.assertion(t, nil)))
			if codes.Code(last.GetStatus().GetCode()) == codes.OK {
				break
			}
			if time.Now().After(deadline) {
				logOnFailure(t, last)
				t.Fatalf("replica A still denies client assertions 10s after Redis came back; log:\n%s", a.Logs)
			}
			<-tick.C
		}
		expectDecision(t, last, codes.OK, 0, "allow", te, "allowed")
		// Replay protection across replicas works again.
		req := tokenRequest(idp.assertion(t, nil))
		expectDecision(t, checkOn(t, ca, a, req), codes.OK, 0, "allow", te, "allowed")
		expectDecision(t, checkOn(t, cb, b, req), codes.Unauthenticated, 401, "deny", te, "replayed")
		expectDecision(t, checkOn(t, cc, c, req), codes.Unauthenticated, 401, "deny", te, "replayed")
	})
}
