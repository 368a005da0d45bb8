// Package keys owns the verification keys of every issuer: the key sources
// (JWKS URIs, OIDC discovery, inline and file JWKS, PEM and X.509 files, HMAC
// secrets, SPIFFE bundles), their per-issuer cache, background refresh and the
// hygiene rules a key must pass before it may verify anything.
//
// A Source answers one question, "which keys of this issuer may verify a token
// with this kid?", so the verifier does not care where keys come from:
//
//	plane, err := keys.NewPlane(keys.Config{Registerer: reg, Logger: log})
//	defer plane.Close()
//	src, err := plane.Source(keys.Spec{Name: "login", JWKSURI: "https://idp.example/jwks"})
//	plane.Prefetch(ctx, []keys.Source{src}) // at policy load, so first Checks find keys
//
//	candidates, err := src.Keys(ctx, kid) // on every Check
//	switch {
//	case errors.Is(err, keys.ErrUnavailable): // 503
//	case errors.Is(err, keys.ErrUnknownKID): // 401
//	}
//	for _, k := range candidates {
//		if k.Fits(alg) { ... verify with k.Public ... }
//	}
//
// Remote key sets live in one LRU cache per Plane, keyed by the whole Spec,
// so policy reloads share them. A lookup never holds a lock across the
// network and never waits for it longer than Config.FetchWait; refreshes,
// retries and slow fetches run in the background, scheduled by one refresh
// engine (refresher) that every remote source shares; key files share one
// change detection (fileWatch); the JWS algorithms and the keys they fit
// are one table (alg.go). docs/keys.md describes the behaviour operators see.
//
// keys knows nothing of rules, tokens or gRPC.
package keys
