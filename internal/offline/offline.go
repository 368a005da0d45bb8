package offline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/extauthz/extauthz/internal/check"
	"github.com/extauthz/extauthz/internal/dpop"
	"github.com/extauthz/extauthz/internal/introspect"
	"github.com/extauthz/extauthz/internal/keys"
	"github.com/extauthz/extauthz/internal/policy"
	"github.com/extauthz/extauthz/internal/replay"
	"github.com/extauthz/extauthz/internal/txtoken"
)

// Config says how to build an in-process Check server for a policy.
//
//	srv, err := offline.New(ctx, offline.Config{Policies: paths, Fetch: true})
//	if err != nil { ... }
//	defer srv.Close()
//	resp, steps := srv.Explain(ctx, req)
type Config struct {
	// Policies are policy files or directories, loaded as serve --policy
	// loads them.
	Policies []string
	// Now is the clock of every part: the policy's load time, the key
	// plane and its key files, the replay store, DPoP nonces and every
	// token and proof check. nil is the real clock.
	Now func() time.Time
	// Fetch lets remote key sources (jwks_uri, discovery, spiffe) be
	// fetched, as serve does, and New waits for them (see
	// PrefetchWait). Without it nothing is fetched, and tokens of such
	// issuers get 503 keys_unavailable unless IssuerKeys stands in.
	Fetch bool
	// PrefetchWait bounds the wait for remote keys with Fetch; 0 leaves
	// only ctx to bound it.
	PrefetchWait time.Duration
	// IssuerKeys serves the named issuers from these key sources instead
	// of their own: their own are built and checked as serve would (a
	// missing key file is still an error) but never asked, nor fetched.
	// Name and Issuer of each spec are filled in from the policy. A name
	// the policy does not have, or a spec that does not load, is an
	// *IssuerKeysError.
	IssuerKeys map[string]keys.Spec
	// Keys tunes the key plane, as serve's flags do; Clock and Offline
	// are set from Now and Fetch.
	Keys keys.Config
	// Check configures the server as serve does (limits, audit, logger,
	// metrics). Policy and Now are always set here; Replay nil is a
	// memory store and Nonces nil a random secret, both on Now.
	Check check.Config
}

// Server is an in-process Check server with the policy it serves.
type Server struct {
	*check.Server
	// Snapshot is the policy loaded, as the server serves it.
	Snapshot *policy.Snapshot
	// Nonces are the server's DPoP nonces: on a clock that stands still,
	// Current is the nonce the server sends.
	Nonces *dpop.Nonces
	plane  *keys.Plane
}

// New loads cfg.Policies and returns a server for them. Close it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	kc := cfg.Keys
	kc.Clock = keysClock(now)
	kc.Offline = !cfg.Fetch
	plane, err := keys.NewPlane(kc)
	if err != nil {
		return nil, err
	}
	// Introspection endpoints are called only with --fetch, as key URLs are.
	ip, err := introspect.NewPlane(introspect.Config{Offline: !cfg.Fetch})
	if err != nil {
		plane.Close()
		return nil, err
	}
	snap, err := policy.Load(cfg.Policies, policy.Options{Keys: plane, Introspection: ip, Now: now})
	if err == nil {
		err = overrideKeys(plane, snap, cfg.IssuerKeys)
	}
	if err != nil {
		plane.Close()
		return nil, err
	}
	if cfg.Fetch {
		pctx := ctx
		if cfg.PrefetchWait > 0 {
			var cancel context.CancelFunc
			pctx, cancel = context.WithTimeout(ctx, cfg.PrefetchWait)
			defer cancel()
		}
		plane.Prefetch(pctx, remoteSources(snap, cfg.IssuerKeys))
	}
	cc := cfg.Check
	cc.Policy = policy.NewStore(snap)
	cc.Now = now
	if cc.Replay == nil {
		cc.Replay = replay.NewMemory(replay.MemoryConfig{Clock: now})
	}
	if cc.Tokens == nil {
		cc.Tokens = &txtoken.Minter{}
	}
	if cc.Nonces == nil {
		if cc.Nonces, err = dpop.NewNonces(nil, 0, now); err != nil {
			plane.Close()
			return nil, err
		}
	}
	return &Server{Server: check.New(cc), Snapshot: snap, Nonces: cc.Nonces, plane: plane}, nil
}

// Close stops the key plane's refreshes and fetches.
func (s *Server) Close() error { return s.plane.Close() }

// IssuerKeysError is why Config.IssuerKeys[Issuer] cannot stand in.
type IssuerKeysError struct {
	Issuer string
	Err    error
}

func (e *IssuerKeysError) Error() string {
	return fmt.Sprintf("issuer keys of %q: %v", e.Issuer, e.Err)
}

func (e *IssuerKeysError) Unwrap() error { return e.Err }

// overrideKeys gives the issuers named in specs the key sources they
// describe. It changes snap, which is why it runs before the snapshot is
// published to a store: no Check can see an issuer change.
func overrideKeys(plane *keys.Plane, snap *policy.Snapshot, specs map[string]keys.Spec) error {
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		is := snap.Issuers[name]
		if is == nil {
			return &IssuerKeysError{name, fmt.Errorf("no issuer named %q in the policy (it has %s)", name, strings.Join(slices.Sorted(maps.Keys(snap.Issuers)), ", "))}
		}
		spec := specs[name]
		spec.Name, spec.Issuer = name, is.Iss
		src, err := plane.Source(spec)
		if err != nil {
			return &IssuerKeysError{name, err}
		}
		is.Keys = src
	}
	return nil
}

// remoteSources are the snapshot's remote sources still in use: those of
// issuers that IssuerKeys replaced are not fetched.
func remoteSources(snap *policy.Snapshot, replaced map[string]keys.Spec) []keys.Source {
	if len(replaced) == 0 {
		return snap.RemoteSources()
	}
	inUse := map[keys.Source]bool{}
	for _, is := range snap.Issuers {
		inUse[is.Keys] = true
	}
	var out []keys.Source
	for _, src := range snap.RemoteSources() {
		if inUse[src] {
			out = append(out, src)
		}
	}
	return out
}

// keysClock is a keys.Clock reading now. Its timers run in real time, so a
// clock that stands still (a test file's) still lets the plane's
// background work end.
type keysClock func() time.Time

func (c keysClock) Now() time.Time { return c() }

func (keysClock) AfterFunc(d time.Duration, f func()) keys.Timer { return time.AfterFunc(d, f) }
