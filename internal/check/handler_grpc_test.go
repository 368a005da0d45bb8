package check_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestConcurrentChecksOwnTheirMemory: Register's handler reuses a Check's
// memory for a later Check once the response is encoded. Concurrent Checks
// of different callers and outcomes over real gRPC (run with -race) must
// each get exactly their own response: two callers' allows, a missing
// token, a token without the scope, and client assertions (replay-checked,
// so each is fresh).
func TestConcurrentChecksOwnTheirMemory(t *testing.T) {
	h := newHarness(t, basePolicy)
	reporting := signLogin(t, loginClaims())
	other := signLogin(t, loginClaims().set("client_id", "billing-app", "sub", "user-9"))
	noScope := signLogin(t, loginClaims().set("scope", "openid"))
	type shape struct {
		req  func() httpReq
		want want
	}
	shapes := []shape{
		{func() httpReq { return reportsReq("GET", "authorization", "Bearer "+reporting) }, bearerAllowed("reporting-app")},
		{func() httpReq { return reportsReq("GET", "authorization", "Bearer "+other) }, bearerAllowed("billing-app")},
		{func() httpReq { return reportsReq("GET") }, bearerMissing()},
		{func() httpReq { return reportsReq("GET", "authorization", "Bearer "+noScope) }, bearerChallenge(codes.PermissionDenied, 403,
			`Bearer realm="extauthz", error="insufficient_scope", scope="reports"`, "insufficient_scope").by("login", "reporting-app", "")},
		{func() httpReq { return tokenReq(assertionBody(signPartner(t, partnerClaims()))) }, partnerAllowed("false")},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				s := shapes[(g+i)%len(shapes)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := h.client.Check(ctx, s.req().proto())
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				assertResponse(t, resp, s.want)
			}
		})
	}
	wg.Wait()
}
