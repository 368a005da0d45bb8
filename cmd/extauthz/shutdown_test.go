package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/extauthz/extauthz/internal/logtest"
)

// TestServeJoinsItsGoroutines runs serve in process on the quick-start
// policy, sends it SIGHUP's work and a request, cancels it, and then finds
// no goroutine running code of this module but the test's own: the SIGHUP
// forwarder, the reloader, the TLS reloader, the internal-token keyring's
// re-reader, the listeners and the key plane's refreshers all ended before
// runServer returned.
func TestServeJoinsItsGoroutines(t *testing.T) {
	before := moduleGoroutines()
	var cfg serveConfig
	fs := newFlagSet("serve", io.Discard)
	cfg.flags(fs)
	if err := fs.Parse([]string{"--policy", "../../examples/quickstart/policy.yaml", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--token-keys", "../../examples/policies/keys/internal-token-signing.pem", "--token-issuer", "https://extauthz.example"}); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, cfg, log) }()
	serving := logs.WaitJSON(t, "serving")
	resp, err := http.Get("http://" + serving["http_addr"].(string) + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runServer: %v", err)
	}
	// A goroutine that has signalled its end (a WaitGroup's Done, deferred)
	// still has its frames until it returns: it gets a few turns of the
	// scheduler to finish, not time.
	var left []string
	for range 1000 {
		if left = moduleGoroutines(); len(left) <= len(before) {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("%d goroutines of this module outlive serve:\n%s", len(left)-len(before), strings.Join(left, "\n\n"))
}

// moduleGoroutines is the stacks of the goroutines with a frame in this
// module, other than the test's.
func moduleGoroutines() []string {
	buf := make([]byte, 1<<20)
	var gs []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/extauthz/extauthz/") && !strings.Contains(g, "testing.tRunner") {
			gs = append(gs, g)
		}
	}
	return gs
}
