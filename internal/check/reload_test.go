package check

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/policytest"
	"github.com/extauthz/extauthz/internal/replay"
)

// TestReloadUnderLoad swaps the policy 100 times, valid and invalid versions
// alternating, while goroutines send Checks over gRPC without pause: no
// Check fails or sees two policies at once, and the last valid policy is
// the one that serves.
func TestReloadUnderLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	policytest.Write(t, file, policytest.Versioned(0))
	plane, err := keys.NewPlane(keys.Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Close()
	opts := policy.Options{Keys: plane}
	snap, err := policy.Load([]string{file}, opts)
	if err != nil {
		t.Fatal(err)
	}
	store := policy.NewStore(snap)
	reloader := policy.NewReloader(policy.ReloaderConfig{Paths: []string{file}, Store: store, Options: opts})

	srv := New(Config{Policy: store, Replay: replay.NewMemory(replay.MemoryConfig{})})
	client := authv3.NewAuthorizationClient(ServeCheck(t, srv.Register))
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api", Path: "/"},
	}}}
	// version reports the policy version a response was decided by.
	version := func(resp *authv3.CheckResponse) (string, error) {
		hs := map[string]string{}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		rule := resp.GetDynamicMetadata().GetFields()["rule"].GetStringValue()
		if resp.GetOkResponse() == nil || hs["x-a"] != hs["x-b"] || "r"+hs["x-a"] != rule {
			return "", fmt.Errorf("mixed or failed decision: rule %q, headers %v", rule, hs)
		}
		return hs["x-a"], nil
	}

	var (
		stop   atomic.Bool
		checks atomic.Int64
		wg     sync.WaitGroup
		failed = make(chan error, 4)
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := client.Check(context.Background(), req)
				if err == nil {
					_, err = version(resp)
				}
				if err != nil {
					failed <- err
					return
				}
				checks.Add(1)
			}
		})
	}
	last := 0
	for i := 1; i <= 100; i++ {
		if i%2 == 0 {
			policytest.Write(t, file, policytest.Broken(i))
			if err := reloader.Reload(context.Background()); err == nil || errors.Is(err, policy.ErrUnchanged) {
				t.Fatalf("reload %d of an invalid policy: %v", i, err)
			}
			continue
		}
		policytest.Write(t, file, policytest.Versioned(i))
		if err := reloader.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		last = i
	}
	stop.Store(true)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Fatal(err)
	}
	if checks.Load() == 0 {
		t.Fatal("no Check ran during the reloads")
	}
	resp, err := client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := version(resp); err != nil || v != fmt.Sprint(last) {
		t.Fatalf("after the reloads: version %q, %v; want %d, the last valid policy", v, err, last)
	}
}
