package check_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSharedMetadataConcurrent: concurrent allows of one caller, over gRPC,
// share their dynamic_metadata while the server's codec encodes it (run
// with -race), and each response still names its own caller and decision.
func TestSharedMetadataConcurrent(t *testing.T) {
	h := newHarness(t, basePolicy)
	toks := []string{signLogin(t, loginClaims()), signLogin(t, loginClaims().set("sub", "user-8"))}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := h.client.Check(ctx, reportsReq("GET", "authorization", "Bearer "+toks[(g+i)%2]).proto())
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				md := resp.GetDynamicMetadata().GetFields()
				if resp.GetOkResponse() == nil || md["decision"].GetStringValue() != "allow" ||
					md["client_id"].GetStringValue() != "reporting-app" || md["rule"].GetStringValue() != "reports-api" {
					t.Errorf("response %v", resp)
					return
				}
			}
		})
	}
	wg.Wait()
}
