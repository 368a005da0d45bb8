// Package gcheadroom owns the Go collector's pacing in extauthz's servers:
// a floor under how much the heap may grow between two collections.
//
// A cached Check allocates a few kilobytes, most of them gRPC's, and keeps
// none of them, while what stays live (policy, key sets, caches) is a few
// megabytes. With Go's default GOGC of 100 the collector runs each time the
// process has allocated as much again as is live: hundreds of times a
// second under load, for a third of a cached Check's CPU. With a headroom,
// GOGC is raised after each collection to whatever lets the live heap grow
// by that many bytes before the next, and never set below 100, so a large
// live heap (a full token cache) is collected as often as by default. A
// memory limit (GOMEMLIMIT, or the one serve sets from the container's)
// still applies: near it the collector runs sooner, whatever GOGC says.
//
// The bench's no-op floor server runs with the same headroom as extauthz,
// so the collector's share is not counted as extauthz's overhead.
package gcheadroom
