// Package offline is the one offline evaluation path of extauthz: it loads
// a policy as serve does and answers CheckRequests with an in-process
// check.Server on an injectable clock, with key sources optionally replaced
// and nothing fetched unless asked. `extauthz check --policy` and `extauthz
// test` (package suite) both decide through it, so a policy test and a
// one-off check cannot disagree with each other, or with serve.
//
// Internal tokens are previewed unless Check.Tokens signs: the header gets
// a placeholder and the explanation shows the claims.
package offline
