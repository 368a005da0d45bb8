// Package suite runs policy test files, `extauthz test`, like `opa test`:
// each test is a request built from the file (tokens signed with the file's
// keys by internal/jws, DPoP proofs, peer certificates, form bodies and
// grants), answered by the offline evaluation path (internal/offline) for
// the file's policy on the file's clock, and compared with its expectations
// (decision, status, reason, headers set and removed, metadata). It reports
// in text, JSON or JUnit XML, with the rules and requires each policy's
// tests covered.
//
// The command's flags stay in cmd/extauthz; everything else is here.
package suite
