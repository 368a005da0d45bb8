package check_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/replay"
)

// unavailableWant is the 503 of a token endpoint whose replay store fails.
func unavailableWant(reason string) want {
	return want{
		code: codes.PermissionDenied, status: 503,
		headers: map[string]string{"retry-after": anySeconds, "content-type": "application/json", "cache-control": "no-store"},
		body:    `{"error":"temporarily_unavailable"}`, rule: "token-endpoint", reason: reason,
		issuer: "partner", clientID: partnerIss,
	}
}

// TestReplayStoreFull: a full store never evicts a live jti; it denies new
// ones with a 503 until entries expire.
func TestReplayStoreFull(t *testing.T) {
	h := newHarness(t, basePolicy, func(c *check.Config) {
		c.Replay = replay.NewMemory(replay.MemoryConfig{MaxEntries: 1, Clock: func() time.Time { return now }})
	})
	assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims())))), partnerAllowed("false"))
	assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims())))), unavailableWant("replay_store_full"))
	// Tokens of a JWT-SVID issuer are not replay-protected: unaffected.
	assertResponse(t, h.check(t, tokenReq(assertionBody(signSpire(t, svidClaims())))),
		allowed("token-endpoint", "allowed", map[string]string{
			"x-client-id": "jwt_assertion_client", "x-spiffe-id": workloadSVID, "x-is-agent": "false",
		}).by("spire", "jwt_assertion_client", workloadSVID))
}

// brokenRedis is a real Redis client whose server hangs up on every
// connection: the store cannot be asked.
func brokenRedis(t *testing.T) replay.Store {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
	})
	r, err := replay.NewRedis(context.Background(), replay.RedisConfig{URL: "redis://" + lis.Addr().String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestReplayStoreUnavailable: when the store cannot be asked, client
// assertions fail closed with a 503, or, with ReplayFailOpen, are allowed
// with the reason saying why.
func TestReplayStoreUnavailable(t *testing.T) {
	t.Run("fail closed", func(t *testing.T) {
		h := newHarness(t, basePolicy, func(c *check.Config) { c.Replay = brokenRedis(t) })
		assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims())))), unavailableWant("replay_store_unavailable"))
	})
	t.Run("fail open", func(t *testing.T) {
		h := newHarness(t, basePolicy, func(c *check.Config) {
			c.Replay = brokenRedis(t)
			c.ReplayFailOpen = true
		})
		w := partnerAllowed("false")
		w.reason = "replay_store_unavailable"
		assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims())))), w)
	})
}

// TestAudit: in audit mode every decision is made and recorded, and the
// request is allowed; a would-be deny sets no header but still strips every
// managed one.
func TestAudit(t *testing.T) {
	h := newHarness(t, basePolicy, func(c *check.Config) { c.Audit = true })
	allow := partnerAllowed("false")
	allow.audit = "allow"
	assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims())))), allow)

	expired := allowed("token-endpoint", "token_expired", map[string]string{}).by("partner", "", "")
	expired.audit = "deny"
	assertResponse(t, h.check(t, tokenReq(assertionBody(signPartner(t, partnerClaims().set("exp", unix(-time.Hour))))).with("x-client-id", "admin")), expired)

	noRule := allowed("", "no_rule_matched", map[string]string{})
	noRule.audit = "deny"
	assertResponse(t, h.check(t, httpReq{method: "GET", host: "api.example.com", path: "/admin"}), noRule)
}
