// Package check is the Envoy ext_authz v3 Authorization server: a
// CheckRequest comes in, a decision goes out. It reads the request as Envoy
// sends it, selects the policy rule, extracts the credential (an RFC 7523
// client assertion from a form body, or an RFC 6750 bearer token, and at
// token endpoints an RFC 7523 §2.1 JWT bearer grant beside it), verifies it
// against the issuer's keys, evaluates the rule, and builds the allow (with
// derived headers and metadata members, every other managed header removed)
// or the deny (with the spec's status, challenge and body).
//
// A deny is a normal response with a stable reason code, never a gRPC
// error: only a bug is an error, so Envoy's failure_mode_allow means what
// operators think it means.
//
// A server is served as extauthz serve serves it:
//
//	gs := grpc.NewServer(check.ServerCodec())
//	check.New(cfg).Register(gs)
//
// Register's handler and the codec decode each CheckRequest straight into
// the view a Check reads and encode the response directly; Server.Check,
// the generated AuthorizationServer method, gives the same decisions from
// the message.
package check
