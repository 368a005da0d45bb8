package keys

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeWorkloadAPI is a Workload API server on a unix socket that streams
// the JWT bundles a test sets, as a SPIRE agent does.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	path string

	mu      sync.Mutex
	bundles map[string][]byte
	changed chan struct{}
	deny    error // when set, streams fail with it
	srv     *grpc.Server
	streams int
}

func newFakeWorkloadAPI(t *testing.T) *fakeWorkloadAPI {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes; t.TempDir can exceed it.
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeWorkloadAPI{path: filepath.Join(dir, "agent.sock"), changed: make(chan struct{})}
	f.start(t)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeWorkloadAPI) addr() string { return "unix://" + f.path }

func (f *fakeWorkloadAPI) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop ends the server and every stream, like an agent going down.
func (f *fakeWorkloadAPI) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (f *fakeWorkloadAPI) set(bundles map[string][]byte) {
	f.mu.Lock()
	f.bundles = bundles
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeWorkloadAPI) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream grpc.ServerStreamingServer[workload.JWTBundlesResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	f.mu.Lock()
	f.streams++
	f.mu.Unlock()
	for {
		f.mu.Lock()
		bundles, changed, deny := f.bundles, f.changed, f.deny
		f.mu.Unlock()
		if deny != nil {
			return deny
		}
		if bundles != nil {
			if err := stream.Send(&workload.JWTBundlesResponse{Bundles: bundles}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// TestSPIFFEWorkloadAPI: the bundle streamed by the agent is served; only
// the issuer's trust domain counts; updates apply at once, an update
// without keys revokes them all, and an agent restart is survived.
func TestSPIFFEWorkloadAPI(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	p := realPlane(t)
	a, b, other := ecKey(), newEC(t), newEC(t)

	// Policy load never waits for the agent: before its first bundle the
	// issuer is unavailable.
	api.mu.Lock()
	api.deny = status.Error(codes.PermissionDenied, "no identity issued")
	api.mu.Unlock()
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	// Startup's prefetch returns once the agent has answered, even with a
	// refusal.
	src.(*spiffeSource).prefetch(t.Context())
	eventually(t, "the agent's refusal is reported", func() error {
		_, err := src.Keys(t.Context(), "a")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no identity issued") {
			return errors.New("got " + errString(err))
		}
		return nil
	})

	api.mu.Lock()
	api.deny = nil
	api.mu.Unlock()
	api.set(map[string][]byte{
		"spiffe://example.org": jwksJSON(t, jwkOf(t, a, "a", nil), jwkOf(t, b, "x509", map[string]any{"use": "x509-svid"})),
		// A federated trust domain's key, under a kid ours lacks: it must
		// never verify the issuer's tokens.
		"spiffe://other.org": jwksJSON(t, jwkOf(t, other, "other", nil)),
	})
	eventually(t, "first bundle", wantKey(src, "a", a))
	eventually(t, "other trust domain's key", wantLookupErr(src, "other", ErrUnknownKID))
	eventually(t, "key of another use", wantLookupErr(src, "x509", ErrUnknownKID))

	// Rotation: the agent pushes the new bundle.
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"), svidKey(t, b, "b"))})
	eventually(t, "rotated bundle", wantKey(src, "b", b))

	// An update without keys for the trust domain revokes at once.
	api.set(map[string][]byte{"spiffe://example.org": []byte(`{"keys":[]}`)})
	eventually(t, "empty bundle revokes", wantLookupErr(src, "a", ErrUnknownKID))
	_, err = src.Keys(t.Context(), "b")
	wantErrContains(t, err, "every key is revoked")

	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, b, "b"))})
	eventually(t, "keys return", wantKey(src, "b", b))
	// So does an update that no longer carries the trust domain at all.
	api.set(map[string][]byte{"spiffe://other.org": jwksJSON(t, jwkOf(t, other, "b", nil))})
	eventually(t, "trust domain gone", wantLookupErr(src, "b", ErrUnknownKID))

	// The agent restarts: the last bundle is served meanwhile, and the
	// new agent's bundle is picked up after reconnecting.
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"))})
	eventually(t, "before restart", wantKey(src, "a", a))
	api.stop()
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, b, "b"))})
	api.start(t)
	eventually(t, "after agent restart", wantKey(src, "b", b))

	// A reload with the same spec shares the watcher: no second stream.
	api.mu.Lock()
	before := api.streams
	api.mu.Unlock()
	again := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	if again.(*spiffeSource).r.Load() != src.(*spiffeSource).r.Load() {
		t.Fatal("a reload with the same spec started a second watcher")
	}
	checkSigns(t, mustKeys(t, again, "b")[0], b, "ES256")
	api.mu.Lock()
	after := api.streams
	api.mu.Unlock()
	if after != before {
		t.Fatalf("streams %d -> %d", before, after)
	}

	// Close ends the stream: Close waits for the watcher goroutine.
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the Workload API watcher")
	}
}

// TestSPIFFEWorkloadAPIStaleAfterAgentGone: with the agent gone, the last
// bundle is served for MaxStale, then the issuer is unavailable.
func TestSPIFFEWorkloadAPIStaleAfterAgentGone(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	p, err := NewPlane(Config{MaxStale: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	a := ecKey()
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, a, "a"))})
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	// Startup's prefetch waits for the first bundle: no Check after it
	// gets 503 for want of one.
	src.(*spiffeSource).prefetch(t.Context())
	checkSigns(t, mustKeys(t, src, "a")[0], a, "ES256")
	api.stop()
	eventually(t, "stale bundle dropped", wantLookupErr(src, "a", ErrUnavailable))
}

func TestSPIFFEOfflineDoesNotConnect(t *testing.T) {
	api := newFakeWorkloadAPI(t)
	api.set(map[string][]byte{"spiffe://example.org": svidBundle(t, 0, svidKey(t, ecKey(), "a"))})
	p, _, _ := testPlane(t, Config{Offline: true})
	src := newSPIFFE(t, p, Spec{Name: "mesh"}, SPIFFESpec{TrustDomain: "example.org", WorkloadAPISocket: api.addr()})
	_, err := src.Keys(t.Context(), "a")
	wantErr(t, err, ErrUnavailable)
	wantErrContains(t, err, "offline")
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.streams != 0 {
		t.Fatal("offline plane opened a Workload API stream")
	}
}
