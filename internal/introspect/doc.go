// Package introspect validates opaque (reference) access tokens at their
// issuer's OAuth 2.0 token introspection endpoint (RFC 7662).
//
// It owns one client per introspection issuer: the endpoint (configured, or
// found by RFC 8414 discovery), extauthz's own authentication to it
// (client_secret_basic, private_key_jwt with an RFC 7523 assertion we sign,
// or tls_client_auth), strict parsing of the response (plain JSON, or an RFC
// 9701 signed JWT verified with the issuer's key source), and the things that
// keep a slow or failing endpoint from taking the Check server down with it:
// a bounded LRU cache keyed by the SHA-256 of the token (never the token),
// positive entries until the earlier of the response's exp and cache_ttl,
// negative entries for negative_cache_ttl, one request in flight per token,
// a per-issuer limit on requests in flight and a deadline on each.
//
// It does not decide whether a token is good for a rule (audience, scopes,
// binding, CEL: package check does, on the *token.Token built from the
// response), and it knows nothing of policies. The clock is the caller's: every
// lookup takes now, so tests move time by hand.
//
// # Use
//
//	p, _ := introspect.NewPlane(introspect.Config{Logger: log, Registerer: reg})
//	c, err := p.Client(introspect.Spec{Name: "as", Issuer: iss, Endpoint: url,
//		ClientID: "extauthz", Method: introspect.ClientSecretBasic, ClientSecretFile: f})
//	tok, err := c.Introspect(ctx, raw, now)
//	switch {
//	case errors.Is(err, introspect.ErrInactive): // 401 invalid_token
//	case errors.Is(err, introspect.ErrUnavailable): // 503, fail closed
//	}
//	// tok.Claims() holds every member of the response; tok.Audience, tok.Expiry…
//	// are typed as for a JWT.
package introspect
